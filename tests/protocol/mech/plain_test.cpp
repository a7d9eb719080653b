// SASL PLAIN (RFC 4616) state machine, fed bytes; plus the mechanism registry.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "protocol/mech/mechanism.hpp"

using namespace postern::mech;
using namespace std::string_literals;

namespace {

std::unique_ptr<Mechanism> make_plain() {
    const MechInfo* info = find("plain");
    REQUIRE(info != nullptr);
    auto m = info->make({});
    REQUIRE(m != nullptr);
    return m;
}

}  // namespace

TEST_CASE("PLAIN: malformed messages fail") {
    struct Case {
        const char* label;
        std::string msg;
        FailReason reason;
    };
    const Case cases[] = {
        // truncated
        {"empty", ""s, FailReason::Malformed},
        {"no NUL", "alicesecret"s, FailReason::Malformed},
        {"one NUL", "alice\0secret"s, FailReason::Malformed},
        {"one leading NUL", "\0alicesecret"s, FailReason::Malformed},
        {"only one NUL", "\0"s, FailReason::Malformed},
        // overlong
        {"three NULs", "\0alice\0secret\0"s, FailReason::Malformed},
        {"four NULs", "a\0b\0c\0d"s, FailReason::Malformed},
        {"NUL inside the password", "\0alice\0sec\0ret"s, FailReason::Malformed},
        // empty parts
        {"only two NULs", "\0\0"s, FailReason::Malformed},
        {"empty authcid", "\0\0secret"s, FailReason::Malformed},
        {"empty authcid with authzid", "alice\0\0secret"s, FailReason::Malformed},
        {"empty password", "\0alice\0"s, FailReason::EmptyPassword},
        {"empty password, same authzid", "alice\0alice\0"s, FailReason::EmptyPassword},
        {"base64 text instead of bytes", "AGFsaWNlAHNlY3JldA=="s, FailReason::Malformed},
        {"huge without NULs", std::string(1 << 20, 'a'), FailReason::Malformed},
        {"huge all NULs", std::string(1 << 20, '\0'), FailReason::Malformed},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        // as an initial response
        auto m = make_plain();
        auto s = m->start(c.msg);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == c.reason);
        CHECK(s.password.empty());
        // and as the response to the empty challenge
        auto m2 = make_plain();
        REQUIRE(m2->start(std::nullopt).kind == Step::Kind::Challenge);
        auto s2 = m2->on_response(c.msg);
        CHECK(s2.kind == Step::Kind::Fail);
        CHECK(s2.reason == c.reason);
    }
}

TEST_CASE("PLAIN: valid messages ask the passdb to verify") {
    struct Case {
        const char* label;
        std::string msg;
        std::string user, password;
    };
    const Case cases[] = {
        {"no authzid", "\0alice\0secret"s, "alice", "secret"},
        {"authzid equal to authcid", "alice\0alice\0secret"s, "alice", "secret"},
        {"tab and SQL in fields", "\0o'brien\t\0p'; DROP TABLE x; --"s, "o'brien\t", "p'; DROP TABLE x; --"},
        {"UTF-8", "\0j\xc3\xb6rg@example.com\0p\xc3\xa4ss"s, "j\xc3\xb6rg@example.com", "p\xc3\xa4ss"},
        {"password with spaces and 0x01", "\0bob\0 a b \x01"s, "bob", " a b \x01"},
        {"huge password", "\0carol\0"s + std::string(1 << 20, 'p'), "carol", std::string(1 << 20, 'p')},
        {"huge user", "\0"s + std::string(1 << 20, 'u') + "\0pw"s, std::string(1 << 20, 'u'), "pw"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make_plain();
        auto s = m->start(c.msg);
        REQUIRE(s.kind == Step::Kind::VerifyPlain);
        CHECK(s.user == c.user);
        CHECK(s.authzid.empty());
        CHECK(s.password.view() == c.password);
    }
}

TEST_CASE("PLAIN: a different authzid is passed on for the master-user check") {
    // The request refuses it unless a master passdb is configured.
    const std::pair<std::string, std::string> cases[] = {{"admin\0alice\0secret"s, "admin"}, {"Alice\0alice\0secret"s, "Alice"}};
    for (const auto& [msg, authzid] : cases) {
        CAPTURE(authzid);
        auto s = make_plain()->start(msg);
        REQUIRE(s.kind == Step::Kind::VerifyPlain);
        CHECK(s.user == "alice");
        CHECK(s.authzid == authzid);
        CHECK(s.password.view() == "secret");
    }
}

TEST_CASE("PLAIN: no initial response means an empty challenge, then the response") {
    auto m = make_plain();
    auto c = m->start(std::nullopt);
    REQUIRE(c.kind == Step::Kind::Challenge);
    CHECK(c.data.empty());
    auto v = m->on_response("\0alice\0secret"s);
    REQUIRE(v.kind == Step::Kind::VerifyPlain);
    CHECK(v.user == "alice");
    CHECK(v.password.view() == "secret");

    auto ok = m->on_passdb(PassdbAnswer{true, "alice@example.com", {}});
    CHECK(ok.kind == Step::Kind::Success);
    CHECK(ok.user == "alice@example.com");
    CHECK(ok.data.empty());
}

TEST_CASE("PLAIN: passdb rejection fails with Credentials") {
    auto m = make_plain();
    REQUIRE(m->start("\0alice\0wrong"s).kind == Step::Kind::VerifyPlain);
    auto f = m->on_passdb(PassdbAnswer{false, "", {}});
    CHECK(f.kind == Step::Kind::Fail);
    CHECK(f.reason == FailReason::Credentials);
}

TEST_CASE("PLAIN: responses out of order") {
    SUBCASE("on_response before any challenge") {
        auto m = make_plain();
        auto s = m->on_response("\0alice\0secret"s);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("response after an initial response") {
        auto m = make_plain();
        REQUIRE(m->start("\0alice\0secret"s).kind == Step::Kind::VerifyPlain);
        auto s = m->on_response("\0alice\0secret"s);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("second response after the challenge") {
        auto m = make_plain();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("\0alice\0secret"s).kind == Step::Kind::VerifyPlain);
        auto s = m->on_response("\0alice\0secret"s);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("second response after a malformed first one") {
        auto m = make_plain();
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        REQUIRE(m->on_response("garbage").kind == Step::Kind::Fail);
        auto s = m->on_response("\0alice\0secret"s);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("empty initial response is a (malformed) message, not a challenge request") {
        auto m = make_plain();
        auto s = m->start(std::string());
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Malformed);
    }
}

TEST_CASE("mechanism registry") {
    SUBCASE("find is case-insensitive and exact") {
        const MechInfo* plain = find("PLAIN");
        REQUIRE(plain != nullptr);
        CHECK(find("plain") == plain);
        CHECK(find("PlAiN") == plain);
        const MechInfo* login = find("login");
        REQUIRE(login != nullptr);
        CHECK(login != plain);
        CHECK(find("LOGIN") == login);

        const std::string unknown[] = {"", "PLAI", "PLAINX", "PLAIN ", " PLAIN", "PLAIN\0"s, "P\0AIN"s,
                                       "LOGIN\t", "X-UNKNOWN", "'; DROP TABLE --", std::string(100000, 'P')};
        for (const auto& u : unknown) {
            CAPTURE(u);
            CHECK(find(u) == nullptr);
        }
    }
    SUBCASE("rows") {
        for (const auto& m : registry()) {
            CAPTURE(m.name);
            CHECK_FALSE(m.name.empty());
            for (char ch : m.name) CHECK_FALSE((ch >= 'a' && ch <= 'z'));  // wire names are upper case
            CHECK(find(m.name) == &m);
            REQUIRE(static_cast<bool>(m.make));
            CHECK(m.make({}) != nullptr);
        }
        const MechInfo* plain = find("plain");
        const MechInfo* login = find("login");
        REQUIRE(plain);
        REQUIRE(login);
        CHECK(plain->name == "PLAIN");
        CHECK(login->name == "LOGIN");
        // Exactly "plaintext": an "anonymous" flag would make Postfix hide PLAIN.
        CHECK(plain->flags == std::vector<std::string_view>{flag::kPlaintext});
        CHECK(login->flags == std::vector<std::string_view>{flag::kPlaintext});
        CHECK(flag::kPlaintext == "plaintext");
        CHECK(plain->credentials_scheme.empty());
        CHECK(login->credentials_scheme.empty());
        CHECK(plain->allows_nul);
        CHECK_FALSE(login->allows_nul);
    }
    SUBCASE("each make() is a fresh state machine") {
        auto a = find("PLAIN")->make({});
        auto b = find("PLAIN")->make({});
        REQUIRE(a->start(std::nullopt).kind == Step::Kind::Challenge);
        // b has not sent a challenge, so a response is out of order for b only
        CHECK(b->on_response("\0u\0p"s).reason == FailReason::OutOfOrder);
        CHECK(a->on_response("\0u\0p"s).kind == Step::Kind::VerifyPlain);
    }
    SUBCASE("FailReason names") {
        const FailReason all[] = {FailReason::Malformed,   FailReason::Authzid,     FailReason::EmptyPassword,
                                  FailReason::Aborted,     FailReason::Credentials, FailReason::OutOfOrder};
        std::vector<std::string_view> names;
        for (auto r : all) {
            CHECK_FALSE(to_string(r).empty());
            for (auto n : names) CHECK(n != to_string(r));
            names.push_back(to_string(r));
        }
    }
}
