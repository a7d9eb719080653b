// SCRAM key derivation: SASLprep of the password (RFC 4013, simplified as
// documented in src/password/scram.cpp) and the salt of PLAIN-derived keys.
#include <doctest/doctest.h>

#include "password/scheme.hpp"

using namespace postern::password;

TEST_CASE("SCRAM: the password is SASLprep-mapped before key derivation") {
    StoredContext ctx;
    for (const char* scheme : {"SCRAM-SHA-1", "SCRAM-SHA-256"}) {
        CAPTURE(scheme);
        auto stored = postern::password::generate(std::string(scheme), std::string("pass word"));
        REQUIRE(stored.has_value());
        // U+00A0 NO-BREAK SPACE and U+3000 IDEOGRAPHIC SPACE map to a space.
        CHECK(verify(*stored, "pass\xc2\xa0word", ctx).verdict == Verdict::Match);
        CHECK(verify(*stored, "pass\xe3\x80\x80word", ctx).verdict == Verdict::Match);
        // U+00AD SOFT HYPHEN and U+200B ZERO WIDTH SPACE map to nothing.
        CHECK(verify(*stored, "pass \xc2\xad" "word\xe2\x80\x8b", ctx).verdict == Verdict::Match);
        CHECK(verify(*stored, "password", ctx).verdict == Verdict::Mismatch);
        // Bytes that are not UTF-8 are used as they are.
        auto raw = postern::password::generate(std::string(scheme), std::string("p\xff\xfe"));
        REQUIRE(raw.has_value());
        CHECK(verify(*raw, "p\xff\xfe", ctx).verdict == Verdict::Match);
        // ASCII passwords are unchanged (interoperates with stored keys made
        // by other tools without SASLprep).
        auto plain = credentials("{PLAIN}secret", scheme, ctx);
        REQUIRE(plain.has_value());
        CHECK(verify(std::string("{") + scheme + "}" + *plain, "secret", ctx).verdict == Verdict::Match);
    }
}

TEST_CASE("SCRAM: credentials derived from PLAIN keep one salt per user") {
    auto salt_of = [](const std::string& user) {
        StoredContext ctx;
        ctx.user = user;
        auto c = credentials("{PLAIN}secret", "SCRAM-SHA-256", ctx);
        REQUIRE(c.has_value());
        const auto a = c->find(','), b = c->find(',', a + 1);
        return c->substr(a + 1, b - a - 1);
    };
    CHECK(salt_of("alice") == salt_of("alice"));
    CHECK(salt_of("alice") != salt_of("bob"));
    // Hashes made for storage still get fresh random salts.
    auto one = postern::password::generate(std::string("SCRAM-SHA-256"), std::string("secret"));
    auto two = postern::password::generate(std::string("SCRAM-SHA-256"), std::string("secret"));
    REQUIRE(one.has_value());
    REQUIRE(two.has_value());
    CHECK(*one != *two);
}
