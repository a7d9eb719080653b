// CRAM-MD5 (RFC 2195) state machine and the stored-context HMAC.
#include "mech_test_util.hpp"

#include <set>

#include "password/scheme.hpp"

using namespace mech_test;
using namespace std::string_literals;

namespace {

std::string context_for(std::string_view password) {
    postern::password::StoredContext ctx;
    auto c = postern::password::credentials("{PLAIN}" + std::string(password), "CRAM-MD5", ctx);
    REQUIRE(c.has_value());
    return *c;
}

std::string respond(const std::string& challenge, std::string_view user, std::string_view password) {
    return std::string(user) + " " + postern::hex_encode(hmac_md5(password, challenge));
}

}  // namespace

TEST_CASE("CRAM-MD5: RFC 2195 example from the stored HMAC-MD5 context") {
    const std::string ctx = context_for("tanstaaftanstaaf");
    const std::string digest = postern::password::cram_md5_digest(ctx, "<1896.697170952@postoffice.reston.mci.net>");
    CHECK(postern::hex_encode(digest) == "b913a602c7eda7a495b4e6e7334d3890");
    // A message longer than one MD5 block and one needing two padding blocks.
    for (std::size_t n : {0u, 55u, 56u, 63u, 64u, 119u, 200u}) {
        CAPTURE(n);
        const std::string msg(n, 'm');
        CHECK(postern::password::cram_md5_digest(ctx, msg) == hmac_md5("tanstaaftanstaaf", msg));
    }
    CHECK(postern::password::cram_md5_digest("short", "x").empty());
}

TEST_CASE("CRAM-MD5: a full exchange") {
    auto settings = std::make_shared<MechSettings>();
    settings->hostname = "mail.example.com";
    auto m = make("CRAM-MD5", settings);
    auto c = m->start(std::nullopt);
    REQUIRE(c.kind == Step::Kind::Challenge);
    CHECK(c.data.front() == '<');
    CHECK(c.data.back() == '>');
    CHECK(c.data.find("@mail.example.com>") != std::string::npos);
    auto l = m->on_response(respond(c.data, "tim", "tanstaaftanstaaf"));
    REQUIRE(l.kind == Step::Kind::LookupCredentials);
    CHECK(l.user == "tim");
    CHECK(l.scheme == "CRAM-MD5");
    auto ok = m->on_passdb(answer(true, "tim", context_for("tanstaaftanstaaf")));
    CHECK(ok.kind == Step::Kind::Success);
    CHECK(ok.user == "tim");
    // A second response after the end.
    auto again = m->on_response(respond(c.data, "tim", "tanstaaftanstaaf"));
    CHECK(again.kind == Step::Kind::Fail);
    CHECK(again.reason == FailReason::OutOfOrder);
}

TEST_CASE("CRAM-MD5: challenges are unique and unpredictable") {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) seen.insert(make("CRAM-MD5")->start(std::nullopt).data);
    CHECK(seen.size() == 200);
    // The random part is 16 bytes (32 hex digits) from the CSPRNG.
    const std::string one = *seen.begin();
    CHECK(one.find('.') == 33);
}

TEST_CASE("CRAM-MD5: wrong password and unknown user fail the same way") {
    for (bool known : {true, false}) {
        CAPTURE(known);
        auto m = make("CRAM-MD5");
        auto c = m->start(std::nullopt);
        REQUIRE(m->on_response(respond(c.data, "tim", "wrong")).kind == Step::Kind::LookupCredentials);
        // An unknown user gets a fake context and the same comparison.
        auto f = m->on_passdb(answer(known, "tim", known ? context_for("tanstaaftanstaaf") : ""));
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Credentials);
    }
    SUBCASE("even the right digest of an unknown user fails") {
        auto m = make("CRAM-MD5");
        auto c = m->start(std::nullopt);
        REQUIRE(m->on_response(respond(c.data, "ghost", "pw")).kind == Step::Kind::LookupCredentials);
        CHECK(m->on_passdb(answer(false, "ghost")).kind == Step::Kind::Fail);
    }
    SUBCASE("a stored value of the wrong length never matches") {
        auto m = make("CRAM-MD5");
        auto c = m->start(std::nullopt);
        REQUIRE(m->on_response(respond(c.data, "tim", "tanstaaftanstaaf")).kind == Step::Kind::LookupCredentials);
        CHECK(m->on_passdb(answer(true, "tim", "tanstaaftanstaaf")).kind == Step::Kind::Fail);
    }
}

TEST_CASE("CRAM-MD5: malformed and out-of-order messages") {
    struct Case {
        const char* label;
        std::string msg;
    };
    const std::string hex32(32, 'a');
    const Case cases[] = {
        {"empty", ""},
        {"no space", "tim" + hex32},
        {"no user", " " + hex32},
        {"truncated digest", "tim " + hex32.substr(0, 31)},
        {"digest too long", "tim " + hex32 + "aa"},
        {"digest not hex", "tim " + std::string(32, 'g')},
        {"no digest", "tim "},
        {"oversized user", std::string(2000, 'u') + " " + hex32},
        {"invalid UTF-8 user", "\xff\xfe " + hex32},
        {"overlong UTF-8 user", "\xc0\xaf " + hex32},
        {"base64 of the response", "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make("CRAM-MD5");
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        auto s = m->on_response(c.msg);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Malformed);
    }
    SUBCASE("a response before the challenge (as an initial response)") {
        auto s = make("CRAM-MD5")->start("tim " + hex32);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("a response without AUTH first") {
        auto s = make("CRAM-MD5")->on_response("tim " + hex32);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("a passdb answer nobody asked for") {
        auto m = make("CRAM-MD5");
        m->start(std::nullopt);
        CHECK(m->on_passdb(answer(true, "tim", context_for("x"))).kind == Step::Kind::Fail);
    }
    SUBCASE("user names with spaces keep everything before the last space") {
        auto m = make("CRAM-MD5");
        auto c = m->start(std::nullopt);
        auto l = m->on_response("john smith " + hex32);
        REQUIRE(l.kind == Step::Kind::LookupCredentials);
        CHECK(l.user == "john smith");
    }
}
