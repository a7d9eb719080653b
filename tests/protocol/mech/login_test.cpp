// SASL LOGIN (draft-murchison-sasl-login) state machine, fed bytes.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "protocol/mech/mechanism.hpp"

using namespace postern::mech;
using namespace std::string_literals;

namespace {

std::unique_ptr<Mechanism> make_login() {
    const MechInfo* info = find("login");
    REQUIRE(info != nullptr);
    auto m = info->make({});
    REQUIRE(m != nullptr);
    return m;
}

}  // namespace

TEST_CASE("LOGIN: Username: then Password: then verify") {
    auto m = make_login();
    auto c1 = m->start(std::nullopt);
    REQUIRE(c1.kind == Step::Kind::Challenge);
    CHECK(c1.data == "Username:");
    auto c2 = m->on_response("alice@example.com");
    REQUIRE(c2.kind == Step::Kind::Challenge);
    CHECK(c2.data == "Password:");
    auto v = m->on_response("secret");
    REQUIRE(v.kind == Step::Kind::VerifyPlain);
    CHECK(v.user == "alice@example.com");
    CHECK(v.authzid.empty());
    CHECK(v.password.view() == "secret");

    auto ok = m->on_passdb(PassdbAnswer{true, "alice@example.com", {}});
    CHECK(ok.kind == Step::Kind::Success);
    CHECK(ok.user == "alice@example.com");
}

TEST_CASE("LOGIN: initial response") {
    SUBCASE("non-empty initial response is the user name and skips to Password:") {
        auto m = make_login();
        auto c = m->start("bob"s);
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data == "Password:");
        auto v = m->on_response("pw");
        REQUIRE(v.kind == Step::Kind::VerifyPlain);
        CHECK(v.user == "bob");
        CHECK(v.password.view() == "pw");
    }
    SUBCASE("empty initial response is treated as none") {
        auto m = make_login();
        auto c = m->start(std::string());
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data == "Username:");
    }
}

TEST_CASE("LOGIN: failures") {
    SUBCASE("empty user name") {
        auto m = make_login();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        auto f = m->on_response("");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Malformed);
    }
    SUBCASE("empty password") {
        auto m = make_login();
        REQUIRE(m->start("alice"s).kind == Step::Kind::Challenge);
        auto f = m->on_response("");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::EmptyPassword);
        CHECK(f.password.empty());
    }
    SUBCASE("extra response after the password") {
        auto m = make_login();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("alice").kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("secret").kind == Step::Kind::VerifyPlain);
        auto f = m->on_response("more");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::OutOfOrder);
        auto g = m->on_response("");
        CHECK(g.kind == Step::Kind::Fail);
        CHECK(g.reason == FailReason::OutOfOrder);
    }
    SUBCASE("extra response after an empty password") {
        auto m = make_login();
        REQUIRE(m->start("alice"s).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("").kind == Step::Kind::Fail);
        auto f = m->on_response("secret");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::OutOfOrder);
    }
    SUBCASE("a response after a failed (empty) user name") {
        auto m = make_login();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("").kind == Step::Kind::Fail);
        auto f = m->on_response("alice");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::OutOfOrder);
        CHECK(f.kind != Step::Kind::VerifyPlain);
    }
    SUBCASE("on_response before start") {
        auto m = make_login();
        auto f = m->on_response("alice");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::OutOfOrder);
        CHECK(f.kind != Step::Kind::VerifyPlain);
    }
    SUBCASE("passdb says no") {
        auto m = make_login();
        REQUIRE(m->start("alice"s).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("wrong").kind == Step::Kind::VerifyPlain);
        auto f = m->on_passdb(PassdbAnswer{false, "", {}});
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Credentials);
    }
}

TEST_CASE("LOGIN: odd but valid bytes are passed through") {
    struct Case {
        const char* label;
        std::string user, password;
    };
    const Case cases[] = {
        {"SQL metacharacters", "o'brien'; --", "' OR '1'='1"},
        {"TAB in both", "a\tb", "c\td"},
        {"spaces", " alice ", " pw "},
        {"UTF-8", "j\xc3\xb6rg", "p\xc3\xa4ss"},
        {"huge", std::string(1 << 20, 'u'), std::string(1 << 20, 'p')},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make_login();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response(c.user).kind == Step::Kind::Challenge);
        auto v = m->on_response(c.password);
        REQUIRE(v.kind == Step::Kind::VerifyPlain);
        CHECK(v.user == c.user);
        CHECK(v.password.view() == c.password);
    }
}

TEST_CASE("LOGIN: registry row") {
    const MechInfo* a = find("LOGIN");
    REQUIRE(a != nullptr);
    CHECK(find("login") == a);
    CHECK(find("Login") == a);
    CHECK(a->flags == std::vector<std::string_view>{"plaintext"});
    CHECK(a->credentials_scheme.empty());
}
