// Scheme registry tests: §8 negative table, truncation semantics, no-brace
// rules, cost limits, generate round trips, credential conversion (§4) and
// malformed input (reference password-schemes.md).
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "password/scheme.hpp"
#include "util/encoding.hpp"

using namespace postern;
using namespace postern::password;

namespace {

Verdict V(std::string_view stored, std::string_view pw, const StoredContext& ctx = {}, const CostLimits& lim = {}) {
    return verify(stored, pw, ctx, lim).verdict;
}

StoredContext with_user(std::string user) {
    StoredContext ctx;
    ctx.user = std::move(user);
    return ctx;
}

const char* kCramTest = "e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6";  // 'test'
const char* kMd5CryptTest123 = "$1$c9809462$fC8eUPU2lq7arWRvxChMu1";
const char* kSha512CryptPassword =
    "{SHA512-CRYPT}$6$naQVrfolIC4MrT4j$xnRRg66QvA86BeSMuTrFfiNZQ5MSbfsJAnpoT3bST7iUlAzUNJztRlZHSG385g.spXwTutXEh3aNa6MgpVcwC/";
const char* kBlfPassword = "{BLF-CRYPT}$2y$05$xM354Ts7.8Q6/3LKR4jWxuzVS4KZEQMf.katrRqkF2Owcbk/VxWG.";
const char* kArgon2idPassword =
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$fteJN3aV4xrmmBwzoL3iWw$Q8SaZp5HwWPfhPXtYmGlYK80yDOZvUnvnmKpdUtIPfY";
const char* kScram1Password =
    "{SCRAM-SHA-1}4096,dZMjSSc6O1uA69b9GwACEw==,VuFa4ZsNzGZWCCB2nCCAC0RInvQ=,SAmNEwOFfMRIM+KdPv5otfhQE8o=";
const char* kSha256RoundsPassword =
    "{SHA256-CRYPT}$5$rounds=10000$ZHnR3wXWGmUjXSn9$ritaf5B8HnOBkdPAp00jeRdSowBJsfI/VKZEEMKCYl5";

}  // namespace

TEST_CASE("negative table of §8") {
    struct Case {
        const char* label;
        std::string stored;
        const char* typed;
        Verdict expected;
        const char* detail;  // substring of the operator detail, or nullptr
    };
    const std::vector<Case> cases = {
        {"plain is case-sensitive", "{PLAIN}test", "Test", Verdict::Mismatch, nullptr},
        {"truncated base64", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9", "test", Verdict::Invalid, "base64"},
        {"hex under .b64", "{SHA.b64}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "test", Verdict::Invalid,
         "(30 instead of 20)"},
        {"SSHA too short", "{SSHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test", Verdict::Invalid, "too short"},
        {"PBKDF2 garbage", "{PBKDF2}garbage", "test", Verdict::Invalid, "Invalid PBKDF2 passdb entry prefix"},
        {"SCRAM low iterations",
         "{SCRAM-SHA-1}1000,dZMjSSc6O1uA69b9GwACEw==,VuFa4ZsNzGZWCCB2nCCAC0RInvQ=,SAmNEwOFfMRIM+KdPv5otfhQE8o=",
         "test", Verdict::Invalid, "iteration count"},
        {"BLF-CRYPT with md5-crypt data", std::string("{BLF-CRYPT}") + kMd5CryptTest123, "test123", Verdict::Invalid,
         "not blowfish"},
        {"empty CRYPT, typed test", "{CRYPT}", "test", Verdict::Mismatch, nullptr},
        {"empty CRYPT, typed empty", "{CRYPT}", "", Verdict::Mismatch, nullptr},
        {"empty SHA512-CRYPT", "{SHA512-CRYPT}", "", Verdict::Mismatch, nullptr},
        {"empty DES-CRYPT", "{DES-CRYPT}", "", Verdict::Mismatch, nullptr},
        {"empty BLF-CRYPT", "{BLF-CRYPT}", "", Verdict::Mismatch, nullptr},
        {"empty MD5-CRYPT", "{MD5-CRYPT}", "", Verdict::Mismatch, nullptr},
        {"MD5 zzz", "{MD5}zzz", "test", Verdict::Invalid, "Not a valid MD5-CRYPT or PLAIN-MD5 password"},
        {"OTP garbage", "{OTP}garbage", "test", Verdict::Invalid, "Invalid OTP data in passdb"},
        {"ARGON2ID garbage", "{ARGON2ID}garbage", "test", Verdict::Mismatch, nullptr},
        {"MD5RAW", "{MD5RAW}cc03e747a6afbbcbf8be7668acfebee5", "test123", Verdict::UnknownScheme, "Unknown scheme"},
        {"NOSUCH", "{NOSUCH}x", "x", Verdict::UnknownScheme, "Unknown scheme NOSUCH"},
        {"unknown suffix", "{SHA.xyz}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test", Verdict::UnknownScheme, nullptr},
        {"PLAIN-TRUNC without N-", "{PLAIN-TRUNC}test", "test", Verdict::Invalid, "PLAIN-TRUNC missing length"},
        {"DIGEST-MD5 without user", "{DIGEST-MD5}c9706fd14542de2ba82140731fa07fad", "password", Verdict::Invalid,
         "user"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        const auto out = verify(c.stored, c.typed, StoredContext{});
        CHECK(out.verdict == c.expected);
        if (c.detail != nullptr) CHECK_MESSAGE(out.detail.find(c.detail) != std::string::npos, out.detail);
        // Operator detail never carries the stored data.
        if (c.stored.size() > 20) CHECK(out.detail.find(c.stored.substr(c.stored.find('}') + 1)) == std::string::npos);
    }
}

TEST_CASE("bcrypt counts 72 bytes, argon2 does not truncate") {
    const std::string a72(72, 'A');
    GenerateOptions fast;
    fast.rounds = 4;
    auto blf = password::generate("BLF-CRYPT", a72 + "tail-beyond-72", fast);
    REQUIRE(blf.has_value());
    CHECK(V(*blf, a72) == Verdict::Match);
    CHECK(V(*blf, std::string(71, 'A')) == Verdict::Mismatch);
    auto argon = password::generate("ARGON2ID", a72 + "tail-beyond-72");
    REQUIRE(argon.has_value());
    CHECK(V(*argon, a72 + "tail-beyond-72") == Verdict::Match);
    CHECK(V(*argon, a72) == Verdict::Mismatch);
}

TEST_CASE("DES-CRYPT counts 8 characters") {
    CHECK(V("{DES-CRYPT}Gj81lVjsR1eQE", "pass word with spaces") == Verdict::Match);
    CHECK(V("{DES-CRYPT}Gj81lVjsR1eQE", "pass wor") == Verdict::Match);
    CHECK(V("{DES-CRYPT}Gj81lVjsR1eQE", "pass wo") == Verdict::Mismatch);
    auto des = password::generate("DES-CRYPT", "longpassword");
    REQUIRE(des.has_value());
    CHECK(des->size() == std::string("{DES-CRYPT}").size() + 13);
    CHECK(V(*des, "longpass") == Verdict::Match);
}

TEST_CASE("PLAIN-TRUNC forms") {
    CHECK(V("{PLAIN-TRUNC}4-test", "test") == Verdict::Match);
    CHECK(V("{PLAIN-TRUNC}4-test", "testing") == Verdict::Match);  // typed longer than the truncated stored one
    CHECK(V("{PLAIN-TRUNC}4-test", "tes") == Verdict::Mismatch);
    CHECK(V("{PLAIN-TRUNC}8-test", "test") == Verdict::Match);  // length differs: exact compare
    CHECK(V("{PLAIN-TRUNC}8-test", "testing") == Verdict::Mismatch);
    CHECK(V("{PLAIN-TRUNC}x-test", "test") == Verdict::Invalid);
    CHECK(V("{PLAIN-TRUNC}99999999999999999999999-test", "test") == Verdict::Invalid);
}

TEST_CASE("encodings: suffixes are case-insensitive and hex/base64 is guessed") {
    const char* sha_hex = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
    const char* sha_b64 = "qUqP5cyxm6YcTAhz05Hph5gvu9M=";
    CHECK(V(std::string("{SHA}") + sha_hex, "test") == Verdict::Match);
    CHECK(V(std::string("{SHA}") + sha_b64, "test") == Verdict::Match);
    CHECK(V(std::string("{sha1.HeX}") + sha_hex, "test") == Verdict::Match);
    CHECK(V(std::string("{Sha.Base64}") + sha_b64, "test") == Verdict::Match);
    CHECK(V(std::string("{SHA.hex}") + sha_b64, "test") == Verdict::Invalid);  // explicit suffix is strict
    CHECK(V("{PLAIN-MD5}CY9rzUYh03PK3k6DJie09g==", "test") == Verdict::Match);
    CHECK(V("{LDAP-MD5}098f6bcd4621d373cade4e832627b4f6", "test") == Verdict::Match);
    CHECK(V("{MD5}098f6bcd4621d373cade4e832627b4f6", "test") == Verdict::Match);
    CHECK(V("{MD5}CY9rzUYh03PK3k6DJie09g==", "test") == Verdict::Match);
    CHECK(V("{PLAIN.HEX}74657374", "test") == Verdict::Match);
    CHECK(V("{PLAIN.b64}dGVzdA==", "test") == Verdict::Match);
    CHECK(V("{PLAIN.b64}dGVzdA=", "test") == Verdict::Invalid);
    CHECK(V(std::string("{CRAM-MD5}") + kCramTest, "test") == Verdict::Match);
    CHECK(V(std::string("{CRAM-MD5}") + std::string(kCramTest).substr(2), "test") == Verdict::Invalid);
}

TEST_CASE("SQL default scheme: braces only when '{' ... '}'") {
    StoredContext sql;
    sql.default_scheme = "MD5";
    CHECK(V(kMd5CryptTest123, "test123", sql) == Verdict::Match);
    CHECK(V("cc03e747a6afbbcbf8be7668acfebee5", "test123", sql) == Verdict::Match);
    CHECK(V("{PLAIN}test123", "test123", sql) == Verdict::Match);
    // Starts with '{' but has no '}': the whole value is MD5 data.
    CHECK(V("{PLAIN", "{PLAIN", sql) == Verdict::Invalid);
    sql.default_scheme = "PLAIN";
    CHECK(V(kMd5CryptTest123, kMd5CryptTest123, sql) == Verdict::Match);
    CHECK(V(kMd5CryptTest123, "test123", sql) == Verdict::Mismatch);  // no auto-detection outside passwd-file
    CHECK(V("{PLAIN", "{PLAIN", sql) == Verdict::Match);
    sql.default_scheme = "sha512-crypt.b64";
    CHECK(V("JDYkMDBpOFJXQ0JwMlFMMDlobCRFMVFWLzJjbENPbEo4OTg0SjJyY1oxeXNTaFJIYVhJeVdFTDdHRGl3aHliYkhQUHBUQjZTM0lFMlYya2"
            "ZXczZWbHY0aDVNa3N0anpud0xuRTBWZVRELw==",
            "test123", sql) == Verdict::Match);
    sql.default_scheme = "NOSUCH";
    CHECK(V("x", "x", sql) == Verdict::UnknownScheme);
}

TEST_CASE("passwd-file rules") {
    StoredContext pf;
    pf.passwd_file_rules = true;
    pf.default_scheme = "PLAIN";
    CHECK(V(kMd5CryptTest123, "test123", pf) == Verdict::Match);
    CHECK(V(std::string(kMd5CryptTest123) + "$ignored", "test123", pf) == Verdict::Match);
    CHECK(stored_scheme(kMd5CryptTest123, pf) == "MD5-CRYPT");
    CHECK(stored_scheme("$1$nodollar", pf) == "PLAIN");
    CHECK(V("cc03e747a6afbbcbf8be7668acfebee5[34]", "test123", pf) == Verdict::Match);
    CHECK(stored_scheme("cc03e747a6afbbcbf8be7668acfebee5[34]", pf) == "PLAIN-MD5");
    CHECK(V("VXAXutUnpVYg6[13]", "test123", pf) == Verdict::Match);
    pf.user = "alice@example.com";
    CHECK(V("c9706fd14542de2ba82140731fa07fad[56]", "password", pf) == Verdict::Match);
    CHECK(stored_scheme("nothex[56]", pf) == "PLAIN");
    CHECK(V("nothex[56]", "nothex[56]", pf) == Verdict::Match);
    pf.default_scheme = "CRYPT";
    CHECK(V("VXAXutUnpVYg6", "test123", pf) == Verdict::Match);
    CHECK(V("", "", pf) == Verdict::Mismatch);
}

TEST_CASE("stored_scheme and canonical_name") {
    StoredContext ctx;
    CHECK(stored_scheme("{sha256.b64}x", ctx) == "SHA256");
    CHECK(stored_scheme("{clear}x", ctx) == "CLEAR");
    CHECK(stored_scheme("abc", ctx) == "CRYPT");
    CHECK_FALSE(stored_scheme("{NOSUCH}x", ctx).has_value());
    CHECK(canonical_name("clear") == "CLEAR");
    CHECK(canonical_name("sha256.b64") == "SHA256.B64");
    CHECK(canonical_name("Scram-Sha-256") == "SCRAM-SHA-256");
    CHECK_FALSE(canonical_name("MD5RAW").has_value());
    CHECK_FALSE(canonical_name("SHA.xyz").has_value());
    CHECK_FALSE(canonical_name("").has_value());
}

TEST_CASE("list_schemes covers doveadm pw -l with weak flags") {
    const char* doveadm[] = {"SHA1", "SSHA512", "SCRAM-SHA-256", "BLF-CRYPT", "PLAIN", "HMAC-MD5", "OTP", "SHA512",
                             "SHA", "DES-CRYPT", "CRYPT", "SSHA", "MD5-CRYPT", "PLAIN-MD4", "PLAIN-MD5", "SCRAM-SHA-1",
                             "SHA512-CRYPT", "CLEAR", "CLEARTEXT", "ARGON2I", "ARGON2ID", "SSHA256", "MD5", "PBKDF2",
                             "SHA256", "CRAM-MD5", "PLAIN-TRUNC", "SHA256-CRYPT", "SMD5", "DIGEST-MD5", "LDAP-MD5"};
    const auto list = list_schemes();
    // Every doveadm scheme, plus YESCRYPT (written as {CRYPT}$y$...).
    CHECK(list.size() == std::size(doveadm) + 1);
    for (const char* name : doveadm) {
        CAPTURE(name);
        bool found = false;
        for (const auto& s : list) found = found || s.name == name;
        CHECK(found);
    }
    const char* weak[] = {"MD5", "MD5-CRYPT", "SMD5", "HMAC-MD5", "PLAIN-MD4", "PLAIN-MD5", "LDAP-MD5", "DES-CRYPT"};
    for (const auto& s : list) {
        CAPTURE(s.name);
        bool expect_weak = false;
        for (const char* w : weak) expect_weak = expect_weak || s.name == w;
        CHECK(s.weak == expect_weak);
    }
}

TEST_CASE("is_costly") {
    StoredContext ctx;
    CHECK_FALSE(is_costly("{PLAIN}x", ctx));
    CHECK_FALSE(is_costly("{SHA256}x", ctx));
    CHECK_FALSE(is_costly(std::string("{CRAM-MD5}") + kCramTest, ctx));
    CHECK_FALSE(is_costly("{MD5}098f6bcd4621d373cade4e832627b4f6", ctx));
    CHECK_FALSE(is_costly("{NOSUCH}x", ctx));
    CHECK(is_costly(std::string("{MD5}") + kMd5CryptTest123, ctx));
    CHECK(is_costly(kSha512CryptPassword, ctx));
    CHECK(is_costly(kBlfPassword, ctx));
    CHECK(is_costly(kArgon2idPassword, ctx));
    CHECK(is_costly(kScram1Password, ctx));
    CHECK(is_costly("{PBKDF2}$1$a$5000$00", ctx));
    CHECK(is_costly("$y$j9T$salt$hash", ctx));  // default CRYPT: yescrypt
    CHECK(is_costly("VXAXutUnpVYg6", ctx));
}

TEST_CASE("cost limits refuse expensive stored strings") {
    CostLimits lim;
    lim.max_bcrypt_cost = 4;
    CHECK(V(kBlfPassword, "password", {}, lim) == Verdict::Invalid);
    CHECK(verify(kBlfPassword, "password", {}, lim).detail.find("bcrypt cost") != std::string::npos);
    lim = {};
    lim.max_sha_crypt_rounds = 5000;
    CHECK(V(kSha256RoundsPassword, "password", {}, lim) == Verdict::Invalid);
    CHECK(V(kSha512CryptPassword, "password", {}, lim) == Verdict::Match);  // implicit 5000
    lim = {};
    lim.max_argon2_memory_kib = 1024;
    CHECK(V(kArgon2idPassword, "password", {}, lim) == Verdict::Invalid);
    CHECK(verify(kArgon2idPassword, "password", {}, lim).detail.find("memory") != std::string::npos);
    lim = {};
    lim.max_pbkdf2_rounds = 4095;
    CHECK(V("{PBKDF2}$1$kPPEHJV5LtpNDsMx$5000$c1d45a90ed133258665b69fb37d9062882c8aa59", "password", {}, lim) ==
          Verdict::Invalid);
    CHECK(V(kScram1Password, "password", {}, lim) == Verdict::Invalid);
    // Zero means "no cap".
    lim = {0, 0, 0, 0};
    CHECK(V(kSha256RoundsPassword, "password", {}, lim) == Verdict::Match);
    CHECK(V(kBlfPassword, "password", {}, lim) == Verdict::Match);
}

TEST_CASE("every crypt(3) format's work factor is read and capped") {
    // Made with libxcrypt's crypt(); each row: stored, the cap that still
    // admits it, which cap.
    enum Cap { Rounds, MemoryKib };
    struct Row {
        const char* stored;
        unsigned long long fits;
        Cap cap;
    };
    const Row rows[] = {
        {"{CRYPT}$sha1$5000$abcdefgh$ixpkRjwacG7WVuV2C0xFdEKx1PjF", 5000, Rounds},
        {"{CRYPT}$md5,rounds=1000$abcdefgh$$WO4f/Dvxfhq.W0hJeRFJq0", 5096, Rounds},  // 4096 + 1000
        {"{CRYPT}$md5$rounds=1000$abcdefgh$$uZuFRL4Nhf9tcF6bTzB9..", 5096, Rounds},
        {"{CRYPT}_J9..abcdIPPmXD22F8s", 725, Rounds},
        // 128 * r * N bytes: N = 2^14, r = 8 -> 16 MiB.
        {"{CRYPT}$7$C6..../....SodiumChloride$6OIeehEnzbyu949sLkdyNyp6EorTTZ52ToM3ucR5RK7", 16384, MemoryKib},
        // N = 2^12, r = 32 -> 16 MiB; N = 2^15 -> 128 MiB.
        {"{CRYPT}$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.", 16384, MemoryKib},
        {"{CRYPT}$y$jCT$abcdefghijklmnop$LNB8HEUht56dBsdxm7gXqOI1IkwUNCi0emOyZSzsh1C", 131072, MemoryKib},
        {"{CRYPT}$gy$j9T$abcdefghijklmnop$oW7qUwrflOfLjQTs4u5j/CooIGb7njfg6ZrarX34ag5", 16384, MemoryKib},
        // yescrypt with p = 2 and t = 2, with p = 3, with t = 1.
        {"{CRYPT}$y$j9T0./$abcdefghijklmnop$r.jkRQ01Yr7XUYfuOvN.p/4tFtXrMC4EkxL61JaPyY8", 16384, MemoryKib},
        {"{CRYPT}$y$j9T./$abcdefghijklmnop$V8exP1sY41QDhCcvlZOBdJOrfQKMUxMuTnguPPOhVy7", 16384, MemoryKib},
        {"{CRYPT}$y$j9T/.$abcdefghijklmnop$5Sw59kopmnO.smUHaZQQZEwLDXpRVIgFsiGlrocoe/7", 16384, MemoryKib},
    };
    for (const auto& r : rows) {
        CAPTURE(r.stored);
        CHECK(V(r.stored, "password") == Verdict::Match);
        CHECK(V(r.stored, "passwort") == Verdict::Mismatch);
        CHECK(is_costly(r.stored, {}));
        CostLimits lim;
        (r.cap == Rounds ? lim.max_sha_crypt_rounds : lim.max_argon2_memory_kib) = r.fits;
        CHECK(V(r.stored, "password", {}, lim) == Verdict::Match);
        (r.cap == Rounds ? lim.max_sha_crypt_rounds : lim.max_argon2_memory_kib) = r.fits - 1;
        CHECK(V(r.stored, "password", {}, lim) == Verdict::Invalid);
        CHECK(verify(r.stored, "password", {}, lim).detail.find("exceed") != std::string::npos);
    }
}

TEST_CASE("argon2 with many lanes is right and runs on the calling thread") {
    // Made with libargon2's argon2_hash, which runs the lanes on threads.
    CHECK(V("{ARGON2ID}$argon2id$v=19$m=256,t=2,p=32$c2FsdHNhbHRzYWx0MTIzNA$8gjxQqa5f1S1R/GobUxSCxqmEbSGqOOxNBArN2Ko8Jk",
            "password") == Verdict::Match);
    CHECK(V("{ARGON2I}$argon2i$v=16$m=512,t=3,p=8$c2FsdHNhbHRzYWx0MTIzNA$bdq02QkP4WOWGSRX66E2vzAdHX8SQy245u/VL3Q0Zhc",
            "password") == Verdict::Match);
    CHECK(V("{ARGON2I}$argon2i$v=16$m=512,t=3,p=8$c2FsdHNhbHRzYWx0MTIzNA$bdq02QkP4WOWGSRX66E2vzAdHX8SQy245u/VL3Q0Zhc",
            "Password") == Verdict::Mismatch);
    // libargon2's argon2_verify would start a thread per lane for each slice
    // of each pass: 4 * 64 * 32 = 8,192 threads here. Thread ids are handed
    // out in sequence, so a thread started after the hash gets an id at least
    // that much above one started before it if the hash started threads.
    auto new_thread_id = [] {
        pid_t id = 0;
        std::thread([&id] { id = gettid(); }).join();
        return id;
    };
    const pid_t before = new_thread_id();
    CHECK(V("{ARGON2ID}$argon2id$v=19$m=256,t=64,p=32$c2FsdHNhbHRzYWx0MTIzNA$8gjxQqa5f1S1R/GobUxSCxqmEbSGqOOxNBArN2Ko8Jk",
            "password") == Verdict::Mismatch);
    const pid_t after = new_thread_id();
    CHECK(after - before < 4096);
}

TEST_CASE("huge or malformed work factors are refused, not run") {
    const char* cases[] = {
        "{SHA512-CRYPT}$6$rounds=99999999999$saltsalt$hash",
        "{SHA512-CRYPT}$6$rounds=99999999999999999999999999$saltsalt$hash",
        "{SHA256-CRYPT}$5$rounds=$saltsalt$hash",
        "{BLF-CRYPT}$2y$99$abcdefghijklmnopqrstuuWG29KuyeAicPCJODk1zjyGvyQUU2awu",
        "{BLF-CRYPT}$2y$3x$abcdefghijklmnopqrstuuWG29KuyeAicPCJODk1zjyGvyQUU2awu",
        "{CRYPT}$2b$32$abcdefghijklmnopqrstuuWG29KuyeAicPCJODk1zjyGvyQUU2awu",
        "{CRYPT}$y$jzT$abcdefghijklmnop$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
        "{ARGON2ID}$argon2id$v=19$m=99999999999,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "{ARGON2I}$argon2i$v=19$m=65536,t=4000000000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=100000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "{PBKDF2}$1$salt$99999999999$c1d45a90ed133258665b69fb37d9062882c8aa59",
        "{PBKDF2}$1$salt$0$c1d45a90ed133258665b69fb37d9062882c8aa59",
        "{SCRAM-SHA-256}99999999999,c2FsdA==,AAAA,AAAA",
        "{OTP}sha1 99999999999 abcdef 0123456789abcdef",
        // libxcrypt's other variable-cost formats.
        "{CRYPT}$sha1$4294967295$abcdefgh$ixpkRjwacG7WVuV2C0xFdEKx1PjF",
        "{CRYPT}$sha1$-1$abcdefgh$ixpkRjwacG7WVuV2C0xFdEKx1PjF",
        "{CRYPT}$sha1$ 5000$abcdefgh$ixpkRjwacG7WVuV2C0xFdEKx1PjF",
        "{CRYPT}$md5,rounds=4294967295$abcdefgh$$WO4f/Dvxfhq.W0hJeRFJq0",
        "{CRYPT}$md5$rounds=+1000$abcdefgh$$uZuFRL4Nhf9tcF6bTzB9..",
        "{CRYPT}$7$C6..../zzzzzSodiumChloride$6OIeehEnzbyu949sLkdyNyp6EorTTZ52ToM3ucR5RK7",
        "{CRYPT}$7$Czzzzz/....SodiumChloride$6OIeehEnzbyu949sLkdyNyp6EorTTZ52ToM3ucR5RK7",
        "{CRYPT}$7$z6..../....SodiumChloride$6OIeehEnzbyu949sLkdyNyp6EorTTZ52ToM3ucR5RK7",
        "{CRYPT}$y$j9T.zzzz$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.",
        "{CRYPT}$y$j9T/zzzz$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.",
        "{CRYPT}$y$j9zzzzz$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.",
        "{CRYPT}$y$j9T2..$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.",
        "{CRYPT}$gy$j9T/zzzz$abcdefghijklmnop$oW7qUwrflOfLjQTs4u5j/CooIGb7njfg6ZrarX34ag5",
        "{ARGON2ID}$argon2id$v=19$m=1024,t=1025,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    };
    for (const char* c : cases) {
        CAPTURE(c);
        CHECK(V(c, "password") == Verdict::Invalid);
    }
}

TEST_CASE("generate -> verify round trip for every generatable scheme") {
    const std::string passwords[] = {"", "pässwörd 日本語", "Secret123!"};
    for (const auto& s : list_schemes()) {
        if (s.name == "PLAIN-TRUNC") continue;
        for (const auto& pw : passwords) {
            CAPTURE(s.name);
            CAPTURE(pw);
            GenerateOptions opts;
            opts.user = "carol@example.com@REALM.TEST";
            if (s.name == "BLF-CRYPT" || s.name == "CRYPT") opts.rounds = 4;
            auto stored = password::generate(s.name, pw, opts);
            REQUIRE_MESSAGE(stored.has_value(), stored.error().message);
            // YESCRYPT is written the way Dovecot reads it: {CRYPT}$y$...
            const std::string written = s.name == "YESCRYPT" ? std::string("CRYPT") : s.name;
            CHECK(stored->starts_with("{" + written + "}"));
            if (s.name == "YESCRYPT") CHECK(stored->starts_with("{CRYPT}$y$"));
            CHECK(V(*stored, pw, with_user(opts.user)) == Verdict::Match);
            CHECK(V(*stored, "x" + pw, with_user(opts.user)) == Verdict::Mismatch);
            CHECK(stored_scheme(*stored, {}) == written);
        }
    }
}

TEST_CASE("generate with encoding suffixes and names as given") {
    const char* schemes[] = {"sha256.b64", "SHA.HEX", "PLAIN.hex", "CRAM-MD5.B64", "SHA512-CRYPT.B64", "PBKDF2.base64",
                             "ssha512.hex", "DIGEST-MD5.b64"};
    for (const char* scheme : schemes) {
        CAPTURE(scheme);
        GenerateOptions opts;
        opts.user = "bob";
        auto stored = password::generate(scheme, "pässwörd", opts);
        REQUIRE(stored.has_value());
        CHECK(stored->starts_with("{" + *canonical_name(scheme) + "}"));
        CHECK(V(*stored, "pässwörd", with_user("bob")) == Verdict::Match);
    }
    CHECK(*password::generate("plain.hex", "test") == "{PLAIN.HEX}74657374");
    CHECK(*password::generate("CRAM-MD5", "test") == std::string("{CRAM-MD5}") + kCramTest);
    CHECK(*password::generate("sha", "test") == "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
    CHECK(*password::generate("PLAIN-MD4", "password") == "{PLAIN-MD4}8a9d093f14f8701df17732b2bb182c74");
}

TEST_CASE("generate: defaults, options and refusals") {
    CHECK_FALSE(password::generate("PLAIN-TRUNC", "test").has_value());
    CHECK_FALSE(password::generate("DIGEST-MD5", "test").has_value());
    CHECK_FALSE(password::generate("NOSUCH", "test").has_value());
    CHECK_FALSE(password::generate("SHA.xyz", "test").has_value());

    auto sha = password::generate("SHA512-CRYPT", "x");
    REQUIRE(sha.has_value());
    CHECK(sha->starts_with("{SHA512-CRYPT}$6$"));
    CHECK(sha->find("rounds=") == std::string::npos);
    CHECK(sha->size() == std::string("{SHA512-CRYPT}$6$").size() + 16 + 1 + 86);
    GenerateOptions o;
    o.rounds = 5000;
    CHECK(password::generate("SHA256-CRYPT", "x", o)->find("rounds=") == std::string::npos);
    o.rounds = 1000;
    auto r1000 = password::generate("SHA256-CRYPT", "x", o);
    REQUIRE(r1000.has_value());
    CHECK(r1000->starts_with("{SHA256-CRYPT}$5$rounds=1000$"));
    CHECK(V(*r1000, "x") == Verdict::Match);
    o.rounds = 999;
    CHECK_FALSE(password::generate("SHA256-CRYPT", "x", o).has_value());

    auto blf = password::generate("BLF-CRYPT", "x");
    REQUIRE(blf.has_value());
    CHECK(blf->starts_with("{BLF-CRYPT}$2y$10$"));
    o.rounds = 3;
    CHECK_FALSE(password::generate("BLF-CRYPT", "x", o).has_value());
    o.rounds = 32;
    CHECK_FALSE(password::generate("BLF-CRYPT", "x", o).has_value());
    CHECK(password::generate("CRYPT", "x", {4, ""})->starts_with("{CRYPT}$2y$04$"));

    auto md5 = password::generate("MD5", "x");
    REQUIRE(md5.has_value());
    CHECK(md5->starts_with("{MD5}$1$"));
    CHECK(password::generate("MD5-CRYPT", "x")->size() == std::string("{MD5-CRYPT}$1$").size() + 8 + 1 + 22);

    auto pbkdf2 = password::generate("PBKDF2", "x");
    REQUIRE(pbkdf2.has_value());
    CHECK(pbkdf2->starts_with("{PBKDF2}$1$"));
    CHECK(pbkdf2->find("$5000$") == std::string("{PBKDF2}$1$").size() + 16);
    o.rounds = 1000;
    CHECK(password::generate("PBKDF2", "x", o)->find("$1000$") != std::string::npos);

    auto scram = password::generate("SCRAM-SHA-256", "x");
    REQUIRE(scram.has_value());
    CHECK(scram->starts_with("{SCRAM-SHA-256}4096,"));
    const std::string salt_b64 = scram->substr(scram->find(',') + 1, scram->find(',', scram->find(',') + 1) - scram->find(',') - 1);
    CHECK(base64_decode(salt_b64)->size() == 16);
    o.rounds = 4095;
    CHECK_FALSE(password::generate("SCRAM-SHA-1", "x", o).has_value());

    CHECK(password::generate("ARGON2ID", "x")->find("$m=65536,t=3,p=1$") != std::string::npos);
    CHECK(password::generate("ARGON2I", "x")->find("$m=32768,t=4,p=1$") != std::string::npos);
    o.rounds = 1;
    CHECK(password::generate("ARGON2ID", "x", o)->find("$m=65536,t=3,p=1$") != std::string::npos);

    auto otp = password::generate("OTP", "x");
    REQUIRE(otp.has_value());
    CHECK(otp->starts_with("{OTP}sha1 1024 "));
    CHECK(otp->size() == std::string("{OTP}sha1 1024 ").size() + 16 + 1 + 16);

    auto ssha = password::generate("SSHA", "x");
    REQUIRE(ssha.has_value());
    CHECK(base64_decode(ssha->substr(6))->size() == 24);  // 20-byte digest + 4-byte salt
    // Fresh salts: two hashes of the same password differ.
    CHECK(*password::generate("SSHA256", "x") != *password::generate("SSHA256", "x"));
}

TEST_CASE("credentials(): §4 conversions") {
    StoredContext ctx;
    const std::string cram = *hex_decode(kCramTest);
    CHECK(*credentials("{PLAIN}test", "CRAM-MD5", ctx) == cram);
    CHECK(*credentials("{CLEARTEXT}test", "cram-md5", ctx) == cram);
    CHECK(*credentials(std::string("{CRAM-MD5}") + kCramTest, "CRAM-MD5", ctx) == cram);
    CHECK(*credentials(std::string("{HMAC-MD5}") + kCramTest, "CRAM-MD5", ctx) == cram);
    CHECK(*credentials(std::string("{CRAM-MD5.B64}") + base64_encode(cram), "CRAM-MD5", ctx) == cram);

    auto refused = credentials(kSha512CryptPassword, "CRAM-MD5", ctx);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message.find("have SHA512-CRYPT, need CRAM-MD5") != std::string::npos);
    CHECK_FALSE(credentials("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "PLAIN", ctx).has_value());
    CHECK_FALSE(credentials("{PLAIN-TRUNC}4-test", "PLAIN", ctx).has_value());
    CHECK_FALSE(credentials("{PLAIN-TRUNC}4-test", "CRAM-MD5", ctx).has_value());
    CHECK_FALSE(credentials("{PLAIN}test", "PLAIN-TRUNC", ctx).has_value());
    CHECK_FALSE(credentials("{PLAIN}test", "NOSUCH", ctx).has_value());
    CHECK_FALSE(credentials("{NOSUCH}test", "PLAIN", ctx).has_value());
    CHECK(*credentials("{CLEAR}test", "PLAIN", ctx) == "test");
    CHECK(*credentials("{PLAIN.HEX}74657374", "PLAIN", ctx) == "test");
    CHECK(*credentials("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "SHA1", ctx) == *base64_decode("qUqP5cyxm6YcTAhz05Hph5gvu9M="));

    // DIGEST-MD5: same-scheme data, or plaintext hashed with the login name.
    auto alice = with_user("alice@example.com");
    const std::string dmd5 = *hex_decode("c9706fd14542de2ba82140731fa07fad");
    CHECK(*credentials("{DIGEST-MD5}c9706fd14542de2ba82140731fa07fad", "DIGEST-MD5", alice) == dmd5);
    CHECK(*credentials("{PLAIN}password", "DIGEST-MD5", alice) == dmd5);
    CHECK_FALSE(credentials("{PLAIN}password", "DIGEST-MD5", ctx).has_value());  // no user
    CHECK_FALSE(credentials(std::string("{CRAM-MD5}") + kCramTest, "DIGEST-MD5", ctx).has_value());

    // SCRAM: same scheme as text; from plaintext with a salt fixed per user
    // for the life of the process (see GenerateOptions::stable_salt).
    const std::string scram_text = std::string(kScram1Password).substr(std::string("{SCRAM-SHA-1}").size());
    CHECK(*credentials(kScram1Password, "SCRAM-SHA-1", ctx) == scram_text);
    CHECK_FALSE(credentials(kScram1Password, "SCRAM-SHA-256", ctx).has_value());
    auto fresh1 = credentials("{PLAIN}password", "SCRAM-SHA-256", ctx);
    auto fresh2 = credentials("{PLAIN}password", "SCRAM-SHA-256", ctx);
    REQUIRE(fresh1.has_value());
    REQUIRE(fresh2.has_value());
    CHECK(*fresh1 == *fresh2);
    CHECK(*fresh1 != *credentials("{PLAIN}password", "SCRAM-SHA-256", alice));
    CHECK(fresh1->starts_with("4096,"));
    CHECK(V("{SCRAM-SHA-256}" + *fresh1, "password") == Verdict::Match);

    // The SQL default scheme applies to bare values.
    StoredContext sql;
    sql.default_scheme = "PLAIN";
    CHECK(*credentials("test", "CRAM-MD5", sql) == cram);
}

TEST_CASE("malformed stored values never crash") {
    // Every prefix of a sample of valid values, under each scheme label.
    const std::string samples[] = {
        kSha512CryptPassword, kBlfPassword, kScram1Password, kSha256RoundsPassword,
        "{PBKDF2}$1$kPPEHJV5LtpNDsMx$5000$c1d45a90ed133258665b69fb37d9062882c8aa59",
        "{OTP}sha1 1024 22cd4b6a33ad0124 a326a03a74e944e8",
        std::string("{CRAM-MD5}") + kCramTest,
        std::string("{MD5}") + kMd5CryptTest123,
        "{SSHA}i1qkBiT0v2aTxtMciegacxQBXlIJqTK7",
        "{DES-CRYPT}Gj81lVjsR1eQE",
        "{PLAIN-TRUNC}4-test",
        "{CRYPT}$y$j9T$abcdefghijklmnop$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
    };
    int count = 0;
    for (const auto& s : samples)
        for (std::size_t n = 0; n < s.size(); ++n) {
            const auto out = verify(s.substr(0, n), "password", with_user("u"));
            CAPTURE(s.substr(0, n));
            CHECK(out.verdict != Verdict::Match);
            (void)is_costly(s.substr(0, n), {});
            (void)credentials(s.substr(0, n), "CRAM-MD5", {});
            ++count;
        }
    CHECK(count > 500);
    // Argon2 strings cut at a few points (each hashing attempt costs 64 MiB).
    const std::string argon = kArgon2idPassword;
    for (std::size_t n : {std::size_t{10}, std::size_t{20}, std::size_t{35}, std::size_t{40}, std::size_t{50},
                          argon.size() - 44, argon.size() - 1})
        CHECK(V(argon.substr(0, n), "password") != Verdict::Match);

    // Garbage data under every scheme label and encoding.
    const std::string garbage[] = {"", "$", "$$$$", "{}", "}", "\t\n", std::string("a\0b", 3), "$2y$", "$6$rounds=",
                                   "$argon2id$v=19$m=,t=,p=$$", "1,2,3,4", "sha1 1 x y", "$1$$", std::string(5000, 'A'),
                                   "\xff\xfe\x80"};
    for (const auto& s : list_schemes())
        for (const char* suffix : {"", ".HEX", ".B64"})
            for (const auto& g : garbage) {
                const std::string stored = "{" + s.name + suffix + "}" + g;
                CHECK(verify(stored, "password", with_user("u")).verdict != Verdict::Match);
            }
    // A NUL in the typed password never reaches crypt(3) truncated.
    auto blf = password::generate("BLF-CRYPT", "ab", {4, ""});
    REQUIRE(blf.has_value());
    CHECK(V(*blf, std::string("ab\0cd", 5)) == Verdict::Mismatch);
    CHECK_FALSE(password::generate("SHA512-CRYPT", std::string("ab\0cd", 5)).has_value());
    CHECK(V("{PLAIN}ab", std::string("ab\0", 3)) == Verdict::Mismatch);
}

TEST_CASE("yescrypt and other libxcrypt formats through CRYPT") {
    // $y$ strings made by libxcrypt itself are verified via crypt_rn.
    CHECK(V("{CRYPT}$5$rounds=2000$abc$", "x") != Verdict::Match);
    CHECK(V("{SHA512-CRYPT}$1$c9809462$fC8eUPU2lq7arWRvxChMu1", "test123") == Verdict::Match);  // label need not match
    CHECK(V("{MD5-CRYPT}$5$VhqhhsXJtPFeBX9e$kz3/CMIEu80bKdtDAcISIrDfdwtc.ilR68Vb3hNhu/7", "hello") == Verdict::Mismatch);
    CHECK(V("{CRYPT}$5$VhqhhsXJtPFeBX9e$kz3/CMIEu80bKdtDAcISIrDfdwtc.ilR68Vb3hNhu/7", "hello") == Verdict::Match);
}

TEST_CASE("argon2 strings outside libsodium's range go through libargon2") {
    // Made with libargon2's argon2_hash (p=2; argon2i t=1 below libsodium's
    // minimum of 3; version 1.0 with and without the v= field).
    const char* ok[] = {
        "{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=2$c2FsdHNhbHRzYWx0MTIzNA$1JKhv1eEg2wdAsb9bzI2ZlAa4yxRiUQIA+AUaCkElYI",
        "{ARGON2I}$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$2uErAZ7ZIQEl4GvOgOcxyMRmAHJ6NBd2jMRefXksSQ4",
        "{ARGON2I}$argon2i$v=16$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0MTIzNA$mX3O4MmkCRTt2wRpKolMJ5cAmo/RohyRpvVceSZl7JI",
        "{ARGON2I}$argon2i$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0MTIzNA$mX3O4MmkCRTt2wRpKolMJ5cAmo/RohyRpvVceSZl7JI",
        // The ARGON2I label verifies an argon2id string too (libsodium's str_verify does).
        "{ARGON2I}$argon2id$v=19$m=1024,t=1,p=2$c2FsdHNhbHRzYWx0MTIzNA$1JKhv1eEg2wdAsb9bzI2ZlAa4yxRiUQIA+AUaCkElYI",
    };
    for (const char* s : ok) {
        CAPTURE(s);
        CHECK(V(s, "password") == Verdict::Match);
        CHECK(V(s, "Password") == Verdict::Mismatch);
    }
    CHECK(V("{ARGON2ID}$argon2d$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$2uErAZ7ZIQEl4GvOgOcxyMRmAHJ6NBd2jMRefXksSQ4",
            "password") == Verdict::Mismatch);
}

TEST_CASE("weak schemes: Dovecot 2.4's list, and crypt(3) data by what it holds") {
    password::StoredContext ctx;
    for (const char* weak : {"{MD5-CRYPT}$1$abcdefgh$0123456789012345678901", "{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99",
                             "{SMD5}c2FsdHNhbHRzYWx0c2FsdA==", "{DES-CRYPT}abJnggxhB/yWI", "{CRYPT}abJnggxhB/yWI",
                             "{CRYPT}$1$abcdefgh$0123456789012345678901", "{SHA512-CRYPT}$1$abcdefgh$0123456789012345678901",
                             "{LDAP-MD5}X03MO1qnZdYdgyfeuILPmQ==", "{PLAIN-MD4}8a9d093f14f8701df17732b2bb182c74"}) {
        CAPTURE(weak);
        CHECK(password::is_weak(weak, ctx));
    }
    for (const char* strong : {"{PLAIN}x", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "{SSHA512}aaaa",
                               "{SHA512-CRYPT}$6$salt$abc", "{CRYPT}$2y$05$abcdefghijklmnopqrstuv", "{CRYPT}$y$j9T$a$b",
                               "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", "{NOSUCH}x", ""}) {
        CAPTURE(strong);
        CHECK_FALSE(password::is_weak(strong, ctx));
    }
    // A bare value read with a default scheme: MD5-crypt data is weak there too.
    password::StoredContext sha;
    sha.default_scheme = "SHA512-CRYPT";
    CHECK(password::is_weak("$1$abcdefgh$0123456789012345678901", sha));
    CHECK_FALSE(password::is_weak("$6$salt$abc", sha));
}

TEST_CASE("strength: the rank column of the scheme table") {
    // The ranks rehash on login compares: a stored hash below rehash_scheme's rank is upgraded.
    const std::pair<const char*, int> ranks[] = {
        {"PLAIN", 0}, {"CLEAR", 0}, {"CLEARTEXT", 0}, {"PLAIN-TRUNC", 0},
        {"PLAIN-MD4", 1}, {"PLAIN-MD5", 1}, {"LDAP-MD5", 1}, {"SMD5", 1}, {"SHA", 1}, {"SHA1", 1}, {"SSHA", 1},
        {"DES-CRYPT", 1}, {"MD5", 1}, {"MD5-CRYPT", 1}, {"CRAM-MD5", 1}, {"HMAC-MD5", 1}, {"DIGEST-MD5", 1},
        {"OTP", 1}, {"SHA256", 2}, {"SHA512", 2}, {"SSHA256", 2}, {"SSHA512", 2},
        {"SHA256-CRYPT", 3}, {"SHA512-CRYPT", 3}, {"PBKDF2", 3}, {"SCRAM-SHA-1", 3}, {"SCRAM-SHA-256", 3},
        {"CRYPT", 4}, {"BLF-CRYPT", 4}, {"YESCRYPT", 4}, {"ARGON2I", 5}, {"ARGON2ID", 5},
    };
    CHECK(std::size(ranks) == list_schemes().size());  // every row has its rank here
    for (const auto& [name, rank] : ranks) {
        CAPTURE(name);
        CHECK(strength(name) == rank);
    }
    // Names as canonical_name() gives them, in any case, with an encoding suffix.
    CHECK(strength("sha512-crypt") == 3);
    CHECK(strength("SSHA256.B64") == 2);
    CHECK(strength("PLAIN-MD5.hex") == 1);
    // Unknown names rank as an unknown crypt(3) flavour.
    for (const char* unknown : {"", "NOSUCH", "SHA.xyz", "{SHA}"}) {
        CAPTURE(unknown);
        CHECK(strength(unknown) == kUnknownStrength);
    }
}
