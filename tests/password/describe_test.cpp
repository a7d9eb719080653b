// describe_stored / scheme_unsalted (src/password/describe.cpp): cost
// parameters, what {CRYPT} data holds, the identity of equal hashes, and
// malformed data, for postern user audit.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "password/scheme.hpp"

using namespace postern::password;

namespace {

const char* kSha512 =
    "$6$naQVrfolIC4MrT4j$xnRRg66QvA86BeSMuTrFfiNZQ5MSbfsJAnpoT3bST7iUlAzUNJztRlZHSG385g.spXwTutXEh3aNa6MgpVcwC/";
const char* kSha256Rounds = "$5$rounds=10000$ZHnR3wXWGmUjXSn9$ritaf5B8HnOBkdPAp00jeRdSowBJsfI/VKZEEMKCYl5";
const char* kBlf = "$2y$05$xM354Ts7.8Q6/3LKR4jWxuzVS4KZEQMf.katrRqkF2Owcbk/VxWG.";
const char* kArgon2id =
    "$argon2id$v=19$m=65536,t=3,p=1$fteJN3aV4xrmmBwzoL3iWw$Q8SaZp5HwWPfhPXtYmGlYK80yDOZvUnvnmKpdUtIPfY";
const char* kMd5Crypt = "$1$c9809462$fC8eUPU2lq7arWRvxChMu1";
const char* kYescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";

StoredContext passwd_file_ctx(std::string default_scheme = "CRYPT") {
    StoredContext ctx;
    ctx.default_scheme = std::move(default_scheme);
    ctx.passwd_file_rules = true;
    return ctx;
}

std::string S(const char* scheme, const char* data) { return std::string("{") + scheme + "}" + data; }

}  // namespace

TEST_CASE("audit: describe_stored, malformed and unknown first") {
    struct Case {
        std::string label, stored;
        bool known;
        std::string scheme, algorithm, cost;
        bool malformed;
    };
    const std::vector<Case> cases = {
        {"empty", "", false, "", "", "", false},
        {"unknown scheme", "{NOSUCH}abc", false, "", "", "", false},
        {"unknown suffix", "{SHA.rot13}abc", false, "", "", "", false},
        {"unclosed brace, default scheme", "{SHA512-CRYPT", true, "CRYPT", "CRYPT", "", true},
        {"DES one character short", "{CRYPT}Gj81lVjsR1eQ", true, "CRYPT", "CRYPT", "", true},
        {"bad base64", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9", true, "SHA", "SHA", "", true},
        {"digest of the wrong length", "{PLAIN-MD5}abcd", true, "PLAIN-MD5", "PLAIN-MD5", "", true},
        {"bcrypt cost not a number", "{BLF-CRYPT}$2y$x5$abc", true, "BLF-CRYPT", "BLF-CRYPT", "", false},
        {"sha-crypt rounds not a number", "{SHA512-CRYPT}$6$rounds=5e3$salt$hash", true, "SHA512-CRYPT",
         "SHA512-CRYPT", "", false},
        {"sha-crypt rounds overflow", "{SHA512-CRYPT}$6$rounds=99999999999999999999999$s$h", true, "SHA512-CRYPT",
         "SHA512-CRYPT", "", false},
        {"argon2 params missing p", "{ARGON2ID}$argon2id$v=19$m=65536,t=3$salt$hash", true, "ARGON2ID", "ARGON2ID",
         "", false},
        {"argon2 params out of order", "{ARGON2ID}$argon2id$v=19$t=3,m=65536,p=1$s$h", true, "ARGON2ID", "ARGON2ID",
         "", false},
        {"not argon2 data", "{ARGON2I}$6$salt$hash", true, "ARGON2I", "ARGON2I", "", false},
        {"PBKDF2 without $1$", "{PBKDF2}garbage", true, "PBKDF2", "PBKDF2", "", false},
        {"SCRAM iterations not a number", "{SCRAM-SHA-1}x,c2FsdA==,a,b", true, "SCRAM-SHA-1", "SCRAM-SHA-1", "",
         false},
        {"crypt id with control bytes", "{CRYPT}$\x01\n$salt$hash", true, "CRYPT", "crypt $??$", "", false},
        {"crypt id cut short", "{CRYPT}$7verylongidentifier$x", true, "CRYPT", "crypt $7verylon$", "", false},
        {"yescrypt with junk params", "{CRYPT}$y$j9T!$s$h", true, "CRYPT", "YESCRYPT", "", false},
        {"empty crypt data", "{CRYPT}", true, "CRYPT", "CRYPT", "", true},
        // Well-formed values.
        {"sha512-crypt, default rounds", S("SHA512-CRYPT", kSha512), true, "SHA512-CRYPT", "SHA512-CRYPT",
         "rounds=5000", false},
        {"sha256-crypt rounds", S("SHA256-CRYPT", kSha256Rounds), true, "SHA256-CRYPT", "SHA256-CRYPT",
         "rounds=10000", false},
        {"bcrypt cost", S("BLF-CRYPT", kBlf), true, "BLF-CRYPT", "BLF-CRYPT", "cost=5", false},
        {"argon2id", S("ARGON2ID", kArgon2id), true, "ARGON2ID", "ARGON2ID", "m=65536,t=3,p=1", false},
        {"argon2i data under ARGON2ID", "{ARGON2ID}$argon2i$m=4096,t=3,p=1$c2FsdA$aGFzaA", true, "ARGON2ID",
         "ARGON2I", "m=4096,t=3,p=1", false},
        {"PBKDF2 rounds", "{PBKDF2}$1$abcdefgh$5000$0123456789abcdef0123456789abcdef01234567", true, "PBKDF2",
         "PBKDF2", "rounds=5000", false},
        {"SCRAM iterations",
         "{SCRAM-SHA-1}4096,dZMjSSc6O1uA69b9GwACEw==,VuFa4ZsNzGZWCCB2nCCAC0RInvQ=,SAmNEwOFfMRIM+KdPv5otfhQE8o=", true,
         "SCRAM-SHA-1", "SCRAM-SHA-1", "iterations=4096", false},
        {"CRYPT holding sha512-crypt", S("CRYPT", kSha512), true, "CRYPT", "SHA512-CRYPT", "rounds=5000", false},
        {"CRYPT holding DES", "{CRYPT}Gj81lVjsR1eQE", true, "CRYPT", "DES-CRYPT", "", false},
        {"CRYPT holding BSDi DES", "{CRYPT}_J9..CCCCXBrJUJV154M", true, "CRYPT", "DES-CRYPT", "", false},
        {"CRYPT holding md5-crypt", S("CRYPT", kMd5Crypt), true, "CRYPT", "MD5-CRYPT", "", false},
        {"CRYPT holding bcrypt", S("CRYPT", kBlf), true, "CRYPT", "BLF-CRYPT", "cost=5", false},
        {"CRYPT holding yescrypt", S("CRYPT", kYescrypt), true, "CRYPT", "YESCRYPT", "N=4096,r=32", false},
        {"yescrypt, long params", "{CRYPT}$y$jD5.7$s$h", true, "CRYPT", "YESCRYPT", "params=jD5.7", false},
        {"MD5 holding md5-crypt", S("MD5", kMd5Crypt), true, "MD5", "MD5-CRYPT", "", false},
        {"MD5 holding a digest", "{MD5}098f6bcd4621d373cade4e832627b4f6", true, "MD5", "PLAIN-MD5", "", false},
        {"DES-CRYPT", "{DES-CRYPT}Gj81lVjsR1eQE", true, "DES-CRYPT", "DES-CRYPT", "", false},
        {"salted digest", "{SSHA}9DgilxbKtDVpSW86NjCzcnUkuBtzYWx0", true, "SSHA", "SSHA", "", false},
        {"lower-case scheme with suffix", "{sha.hex}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", true, "SHA", "SHA", "",
         false},
        {"PLAIN-TRUNC", "{PLAIN-TRUNC}3-abc", true, "PLAIN-TRUNC", "PLAIN-TRUNC", "", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto d = describe_stored(c.stored, StoredContext{});
        REQUIRE(d.has_value() == c.known);
        if (!d) continue;
        CHECK(d->scheme == c.scheme);
        CHECK(d->algorithm == c.algorithm);
        CHECK(d->cost == c.cost);
        CHECK(d->malformed == c.malformed);
        CHECK(d->identity.size() == 32);
    }
}

TEST_CASE("audit: weak and cleartext flags") {
    struct Case {
        std::string label, stored;
        bool weak;
        bool cleartext;
    };
    const std::vector<Case> cases = {
        {"PLAIN", "{PLAIN}secret", false, true},
        {"CLEARTEXT", "{CLEARTEXT}secret", false, true},
        {"PLAIN-TRUNC", "{PLAIN-TRUNC}3-abc", false, true},
        {"PLAIN-MD5", "{PLAIN-MD5}098f6bcd4621d373cade4e832627b4f6", true, false},
        {"MD5-CRYPT", S("MD5-CRYPT", kMd5Crypt), true, false},
        {"CRYPT holding DES", "{CRYPT}Gj81lVjsR1eQE", true, false},
        {"CRYPT holding md5-crypt", S("CRYPT", kMd5Crypt), true, false},
        {"CRYPT holding sha512-crypt", S("CRYPT", kSha512), false, false},
        {"SSHA", "{SSHA}9DgilxbKtDVpSW86NjCzcnUkuBtzYWx0", false, false},
        {"ARGON2ID", S("ARGON2ID", kArgon2id), false, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto d = describe_stored(c.stored, StoredContext{});
        REQUIRE(d);
        CHECK(d->weak == c.weak);
        CHECK(d->cleartext == c.cleartext);
    }
}

TEST_CASE("audit: passwd-file rules and default schemes") {
    // A bare $1$ is MD5-CRYPT in a passwd-file whatever the default.
    auto md5 = describe_stored(kMd5Crypt, passwd_file_ctx("SHA512-CRYPT"));
    REQUIRE(md5);
    CHECK(md5->scheme == "MD5-CRYPT");
    CHECK(md5->weak);
    // Elsewhere the default scheme decides.
    StoredContext sql;
    sql.default_scheme = "SHA512-CRYPT";
    auto bare = describe_stored(kSha512, sql);
    REQUIRE(bare);
    CHECK(bare->scheme == "SHA512-CRYPT");
    CHECK(bare->cost == "rounds=5000");
    auto crypt = describe_stored(kSha512, passwd_file_ctx());
    REQUIRE(crypt);
    CHECK(crypt->scheme == "CRYPT");
    CHECK(crypt->algorithm == "SHA512-CRYPT");
    // libpam-pwdfile's [13] suffix: DES under CRYPT.
    auto des = describe_stored("Gj81lVjsR1eQE[13]", passwd_file_ctx("SHA512-CRYPT"));
    REQUIRE(des);
    CHECK(des->algorithm == "DES-CRYPT");
    CHECK(des->weak);
}

TEST_CASE("audit: identity is equal for the same salt and hash, whatever the prefix") {
    auto id = [](std::string_view stored, const StoredContext& ctx = {}) {
        auto d = describe_stored(stored, ctx);
        REQUIRE(d);
        return d->identity;
    };
    StoredContext sha512;
    sha512.default_scheme = "SHA512-CRYPT";
    CHECK(id(S("SHA512-CRYPT", kSha512)) == id(kSha512, sha512));
    CHECK(id(S("SHA512-CRYPT", kSha512)) == id(S("CRYPT", kSha512)));
    CHECK(id("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=") == id("{SHA.hex}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"));
    CHECK(id("{PLAIN}a") == id("{CLEAR}a"));
    CHECK(id("{PLAIN-MD5}098f6bcd4621d373cade4e832627b4f6") == id("{LDAP-MD5}CY9rzUYh03PK3k6DJie09g=="));
    CHECK(id("{PLAIN}a") != id("{PLAIN}b"));
    CHECK(id(S("SHA512-CRYPT", kSha512)) != id(S("SHA256-CRYPT", kSha256Rounds)));
    // Malformed data: equal stored values still match.
    CHECK(id("{SHA}!!") == id("{SHA}!!"));
    CHECK(id("{SHA}!!") != id("{SHA}!?"));
}

TEST_CASE("audit: scheme_unsalted") {
    for (std::string s : {"PLAIN", "SHA", "SHA256", "PLAIN-MD5", "LDAP-MD5", "PLAIN-MD4", "CRAM-MD5", "DIGEST-MD5"}) {
        CAPTURE(s);
        CHECK(scheme_unsalted(s));
    }
    for (std::string s : {"SSHA", "SMD5", "MD5-CRYPT", "DES-CRYPT", "SHA512-CRYPT", "BLF-CRYPT", "PBKDF2",
                          "SCRAM-SHA-1", "PLAIN-TRUNC", "crypt $7$", "NOSUCH", ""}) {
        CAPTURE(s);
        CHECK_FALSE(scheme_unsalted(s));
    }
}
