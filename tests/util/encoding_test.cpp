// Base64 / hex codec tests: RFC 4648 section 10 vectors and malformed input.
#include <doctest/doctest.h>

#include "util/encoding.hpp"
#include "util/secret.hpp"

using namespace postern;

TEST_CASE("base64 rejects malformed input") {
    const char* bad[] = {"A", "AB=", "A===", "AB!=", "AB\tC", "ABC=D", "====", "Zm9v YmFy"};
    for (const char* b : bad) {
        CAPTURE(b);
        CHECK_FALSE(base64_decode(b).has_value());
    }
    CHECK_FALSE(base64_decode(std::string_view("AB\0=", 4)).has_value());
}

TEST_CASE("base64 RFC 4648 vectors round-trip") {
    const std::pair<const char*, const char*> v[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (auto [raw, enc] : v) {
        CHECK(base64_encode(raw) == enc);
        REQUIRE(base64_decode(enc).has_value());
        CHECK(*base64_decode(enc) == raw);
    }
    CHECK(*base64_decode("Zm8", true) == "fo");
    CHECK_FALSE(base64_decode("Zm8").has_value());
    const std::string nul("\0user\0pass", 10);
    CHECK(*base64_decode(base64_encode(nul)) == nul);
}

TEST_CASE("hex codec") {
    CHECK(hex_encode("\x01\xab") == "01ab");
    CHECK(*hex_decode("01AB") == "\x01\xab");
    CHECK_FALSE(hex_decode("0").has_value());
    CHECK_FALSE(hex_decode("zz").has_value());
}

TEST_CASE("ct_equal") {
    CHECK(ct_equal("abc", "abc"));
    CHECK_FALSE(ct_equal("abc", "abd"));
    CHECK_FALSE(ct_equal("abc", "abcd"));
    CHECK(ct_equal("", ""));
}
