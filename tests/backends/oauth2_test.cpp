// oauth2 passdb: RFC 7662 introspection answers (which are readable, what
// they say) and the form encoding of the token. Against a server:
// tests/integration/test_http.py (HttpIntrospectionTest).
#include <doctest/doctest.h>

#include "backends/oauth2/oauth2.hpp"

using namespace postern::backend::oauth2;

TEST_CASE("oauth2: introspection answers") {
    struct Bad {
        const char* label;
        const char* body;
    };
    const Bad bad[] = {
        {"empty", ""},
        {"not JSON", "<html>"},
        {"no active", R"({"username":"alice"})"},
        {"active a string", R"({"active":"true","username":"alice"})"},
        {"exp a string", R"({"active":true,"exp":"soon"})"},
        {"exp negative", R"({"active":true,"exp":-1})"},
        {"duplicate active", R"({"active":false,"active":true})"},
    };
    for (const auto& c : bad) {
        CAPTURE(c.label);
        CHECK(!parse_introspection(c.body, "username").has_value());
    }
    auto on = parse_introspection(R"({"active":true,"username":"alice@example.com","exp":1700000600,"scope":"mail"})",
                                  "username");
    REQUIRE(on.has_value());
    CHECK(on->active);
    CHECK(on->user == "alice@example.com");
    CHECK(on->exp == 1700000600);
    auto other = parse_introspection(R"({"active":true,"email":"a@b","username":7})", "email");
    REQUIRE(other.has_value());
    CHECK(other->user == "a@b");
    CHECK(!other->exp);
    auto off = parse_introspection(R"({"active":false})", "username");
    REQUIRE(off.has_value());
    CHECK(!off->active);
    CHECK(off->user.empty());
}

TEST_CASE("oauth2: form encoding") {
    CHECK(form_encode("abc-._~XYZ09") == "abc-._~XYZ09");
    CHECK(form_encode("a b+c&d=e/f") == "a+b%2Bc%26d%3De%2Ff");
    CHECK(form_encode(std::string("\0\xff", 2)) == "%00%FF");
}

TEST_CASE("oauth2: userinfo answers") {
    for (const char* bad : {"", "<html>", "[]", R"({"email":"a@b","exp":"soon"})"}) {
        CAPTURE(bad);
        CHECK(!parse_userinfo(bad, "email").has_value());
    }
    auto u = parse_userinfo(R"({"sub":"f3b0","email":"alice@example.com","email_verified":true})", "email");
    REQUIRE(u.has_value());
    CHECK(u->active);
    CHECK(u->user == "alice@example.com");
    CHECK(!u->exp);
    auto none = parse_userinfo(R"({"sub":"f3b0"})", "email");
    REQUIRE(none.has_value());
    CHECK(none->user.empty());  // no claim: the checker refuses the token
}
