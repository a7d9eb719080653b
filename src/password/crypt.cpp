// crypt(3)-family schemes (CRYPT, DES-CRYPT, MD5-CRYPT, SHA256-CRYPT,
// SHA512-CRYPT, BLF-CRYPT; yescrypt via CRYPT) on top of libxcrypt's
// reentrant crypt_rn. Cost parameters in stored strings are capped before
// hashing (reference password-schemes.md sections 2, 3 and 7).
#include <crypt.h>
#include <openssl/crypto.h>

#include <cctype>
#include <memory>
#include <optional>
#include <string>

#include "password/detail.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

// bcrypt: doveadm writes cost 5, which is far too cheap today; new hashes get
// cost 10 (the common modern default) unless GenerateOptions::rounds says otherwise.
constexpr unsigned kDefaultBcryptCost = 10;
constexpr unsigned kMinBcryptCost = 4;
constexpr unsigned kMaxBcryptCost = 31;
constexpr std::size_t kBcryptSaltBytes = 16;
constexpr unsigned long kDefaultShaCryptRounds = 5000;  // written only when different
constexpr unsigned long kMinShaCryptRounds = 1000;
constexpr unsigned long kMaxShaCryptRounds = 999999999;
constexpr std::size_t kShaCryptSaltChars = 16;
constexpr std::size_t kMd5CryptSaltChars = 8;
constexpr std::size_t kDesSaltChars = 2;
constexpr std::size_t kMinBlowfishLength = 30;  // Dovecot's "is this bcrypt" check

// Runs crypt_rn with heap state (struct crypt_data is 32 KiB) and wipes it.
// nullopt when libxcrypt rejects the setting.
std::optional<std::string> run_crypt(std::string_view password, std::string_view setting) {
    std::string phrase(password);
    const std::string set(setting);
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(phrase.c_str(), set.c_str(), data.get(), sizeof(crypt_data));
    std::optional<std::string> result;
    if (out != nullptr && out[0] != '*') result = std::string(out);
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    wipe(phrase);
    return result;
}

int itoa64_index(char c) {
    if (c == '.') return 0;
    if (c == '/') return 1;
    if (c >= '0' && c <= '9') return c - '0' + 2;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 12;
    if (c >= 'a' && c <= 'z') return c - 'a' + 38;
    return -1;
}

// yescrypt's variable-length number: the first character says how many
// follow (0..47 alone, then ranges needing 1, 2, ... more characters).
std::optional<unsigned long long> take_yescrypt_uint(std::string_view& s, unsigned long long min) {
    if (s.empty()) return std::nullopt;
    int c = itoa64_index(s[0]);
    if (c < 0) return std::nullopt;
    s.remove_prefix(1);
    unsigned long long value = min;
    unsigned start = 0, end = 47, chars = 1, bits = 0;
    while (static_cast<unsigned>(c) > end) {
        value += static_cast<unsigned long long>(end + 1 - start) << bits;
        start = end + 1;
        end = start + (62 - end) / 2;
        ++chars;
        bits += 6;
    }
    value += static_cast<unsigned long long>(static_cast<unsigned>(c) - start) << bits;
    while (--chars) {
        if (s.empty() || (c = itoa64_index(s[0])) < 0) return std::nullopt;
        s.remove_prefix(1);
        bits -= 6;
        value += static_cast<unsigned long long>(c) << bits;
    }
    if (value > UINT32_MAX) return std::nullopt;
    return value;
}

// A fixed-width number of `chars` characters, least significant first
// (scrypt's 30-bit r and p: 5; extended DES's 24-bit count: 4).
std::optional<unsigned long long> take_itoa64_le(std::string_view& s, std::size_t chars) {
    if (s.size() < chars) return std::nullopt;
    unsigned long long value = 0;
    for (std::size_t i = 0; i < chars; ++i) {
        const int c = itoa64_index(s[i]);
        if (c < 0) return std::nullopt;
        value |= static_cast<unsigned long long>(c) << (6 * i);
    }
    s.remove_prefix(chars);
    return value;
}

// "ROUNDS$..." at the start of `rest`: refused when malformed, above the
// format's own maximum, or when base + ROUNDS exceeds the sha-crypt cap.
std::optional<std::string> rounds_problem(std::string_view rest, const char* what, unsigned long long format_max,
                                          unsigned long long base, const CostLimits& limits) {
    const auto end = rest.find('$');
    unsigned long long rounds = 0;
    if (end == std::string_view::npos || !parse_decimal(rest.substr(0, end), rounds))
        return std::string("malformed ") + what + " rounds";
    if (rounds > format_max || over_limit(base + rounds, limits.max_sha_crypt_rounds))
        return std::string(what) + " rounds " + std::string(rest.substr(0, end)) + " exceed the limit";
    return std::nullopt;
}

// scrypt ("$7$"), yescrypt ("$y$") and GOST yescrypt ("$gy$") settings: the
// memory (128 * r * N bytes) under the memory cap, and the passes over it
// (p, times t + 1 for yescrypt) under the same cap as argon2's passes. Hash
// upgrades (g) and ROMs, which crypt(3) never writes, are refused outright.
std::optional<std::string> memory_hard_problem(std::string_view s, const CostLimits& limits) {
    unsigned long long n_log2 = 0, r = 0, p = 1, t = 0;
    if (s.starts_with("$7$")) {
        s.remove_prefix(3);
        if (s.empty() || itoa64_index(s[0]) < 1) return "malformed scrypt parameters";
        n_log2 = static_cast<unsigned long long>(itoa64_index(s[0]));
        s.remove_prefix(1);
        const auto rr = take_itoa64_le(s, 5);
        const auto pp = rr ? take_itoa64_le(s, 5) : std::nullopt;
        if (!rr || !pp) return "malformed scrypt parameters";
        r = *rr;
        p = *pp;
    } else {
        s.remove_prefix(s[1] == 'y' ? 3 : 4);
        const auto flavor = take_yescrypt_uint(s, 0);
        const auto n = flavor ? take_yescrypt_uint(s, 1) : std::nullopt;
        const auto rr = n ? take_yescrypt_uint(s, 1) : std::nullopt;
        if (!rr || *n > 63) return "malformed yescrypt parameters";
        n_log2 = *n;
        r = *rr;
        if (!s.empty() && s[0] != '$') {
            const auto have = take_yescrypt_uint(s, 1);
            if (!have) return "malformed yescrypt parameters";
            if ((*have & ~3ull) != 0) return "yescrypt hash upgrades and ROMs are not supported";
            if (*have & 1) {
                const auto pp = take_yescrypt_uint(s, 2);
                if (!pp) return "malformed yescrypt parameters";
                p = *pp;
            }
            if (*have & 2) {
                const auto tt = take_yescrypt_uint(s, 1);
                if (!tt) return "malformed yescrypt parameters";
                t = *tt;
            }
        }
    }
    if (r == 0 || p == 0 || n_log2 == 0) return "memory-hard crypt parameters out of range";
    if (n_log2 > 40) return "memory-hard crypt memory cost exceeds the limit";
    // 128 * r * 2^n bytes, in KiB (rounded up below N = 8), saturating.
    const unsigned long long kib_per_r = n_log2 >= 3 ? 1ull << (n_log2 - 3) : 1;
    const unsigned long long kib = r > ~0ull / kib_per_r ? ~0ull : r * kib_per_r;
    if (over_limit(kib, limits.max_argon2_memory_kib)) return "memory-hard crypt memory cost exceeds the limit";
    if (p > kMaxMemoryHardPasses || (t + 1) > kMaxMemoryHardPasses / p) return "memory-hard crypt time cost exceeds the limit";
    return std::nullopt;
}

// Refuses stored strings whose work factor exceeds the caller's caps.
std::optional<std::string> cost_problem(std::string_view s, const CostLimits& limits) {
    if (s.size() >= 7 && s[0] == '$' && s[1] == '2' && s[3] == '$') {
        unsigned long long cost = 0;
        if (s[6] != '$' || !parse_decimal(s.substr(4, 2), cost)) return "malformed bcrypt cost";
        if (cost > kMaxBcryptCost || over_limit(cost, limits.max_bcrypt_cost))
            return "bcrypt cost " + std::to_string(cost) + " exceeds the limit";
        return std::nullopt;
    }
    if (s.starts_with("$5$rounds=") || s.starts_with("$6$rounds="))
        return rounds_problem(s.substr(10), "sha-crypt", kMaxShaCryptRounds, 0, limits);
    if (s.starts_with("$y$") || s.starts_with("$gy$") || s.starts_with("$7$")) return memory_hard_problem(s, limits);
    // NetBSD's sha1crypt: "$sha1$ROUNDS$salt$hash", one HMAC-SHA1 per round.
    if (s.starts_with("$sha1$")) return rounds_problem(s.substr(6), "sha1crypt", UINT32_MAX, 0, limits);
    // Sun MD5: 4096 rounds plus the stated extra.
    if (s.starts_with("$md5$rounds=") || s.starts_with("$md5,rounds="))
        return rounds_problem(s.substr(12), "Sun MD5", UINT32_MAX, 4096, limits);
    if (s.starts_with("_")) {
        // BSDi extended DES: "_" then a 24-bit count of DES encryptions.
        std::string_view rest = s.substr(1);
        const auto count = take_itoa64_le(rest, 4);
        if (!count) return "malformed extended DES count";
        if (over_limit(*count, limits.max_sha_crypt_rounds))
            return "extended DES count " + std::to_string(*count) + " exceeds the limit";
    }
    return std::nullopt;
}

Result<std::string> crypt_with_setting(std::string_view password, const std::string& setting) {
    if (password.find('\0') != std::string_view::npos) return fail("crypt schemes cannot hash a NUL byte");
    auto out = run_crypt(password, setting);
    if (!out) return fail("crypt() refused the generated setting");
    return *out;
}

Result<std::string> generate_sha_crypt(char id, std::string_view password, const GenerateOptions& opts) {
    const unsigned long rounds = opts.rounds.value_or(kDefaultShaCryptRounds);
    if (rounds < kMinShaCryptRounds || rounds > kMaxShaCryptRounds)
        return fail("sha-crypt rounds must be within 1000..999999999");
    auto salt = random_crypt_salt(kShaCryptSaltChars);
    if (!salt) return salt;
    std::string setting = std::string("$") + id + "$";
    if (rounds != kDefaultShaCryptRounds) setting += "rounds=" + std::to_string(rounds) + "$";
    setting += *salt;
    return crypt_with_setting(password, setting);
}

}  // namespace

VerifyOutcome verify_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    // Empty data must never match: crypt("", "") style comparisons would succeed.
    if (raw.empty()) return mismatch("empty crypt data");
    if (raw.find('\0') != std::string_view::npos) return invalid("crypt data contains a NUL byte");
    // The typed password cannot contain NUL in Dovecot (C strings); never let
    // crypt(3) silently truncate at one.
    if (password.find('\0') != std::string_view::npos) return mismatch();
    if (auto problem = cost_problem(raw, env.limits)) return invalid(*problem);
    auto out = run_crypt(password, raw);
    if (!out) return invalid("crypt() failed: unsupported or malformed crypt data");
    return match_if(ct_equal(*out, raw));
}

VerifyOutcome verify_blf_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    if (raw.empty()) return mismatch("empty crypt data");
    if (raw.size() < kMinBlowfishLength || raw[0] != '$' || raw[1] != '2' ||
        !std::islower(static_cast<unsigned char>(raw[2])) || raw[3] != '$')
        return invalid("Password is not blowfish password");
    return verify_crypt(raw, password, env);
}

VerifyOutcome verify_md5_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    if (raw.empty()) return mismatch("empty crypt data");
    // Dovecot regenerates "$1$salt$hash" from the stored salt and compares
    // strings, so anything else simply does not match.
    if (!raw.starts_with("$1$")) return mismatch("not MD5-CRYPT data");
    return verify_crypt(raw, password, env);
}

Result<std::string> generate_bcrypt(std::string_view password, const GenerateOptions& opts) {
    const unsigned cost = opts.rounds.value_or(kDefaultBcryptCost);
    if (cost < kMinBcryptCost || cost > kMaxBcryptCost) return fail("bcrypt cost must be within 4..31");
    auto rnd = random_bytes(kBcryptSaltBytes);
    if (!rnd) return rnd;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2y$", cost, rnd->data(), static_cast<int>(rnd->size()), setting, sizeof setting) == nullptr)
        return fail("crypt_gensalt failed for bcrypt");
    return crypt_with_setting(password, setting);
}

Result<std::string> generate_yescrypt(std::string_view password, const GenerateOptions& opts) {
    const unsigned cost = opts.rounds.value_or(5);
    if (cost < 1 || cost > 11) return fail("yescrypt cost must be within 1..11");
    auto rnd = random_bytes(16);
    if (!rnd) return rnd;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", cost, rnd->data(), static_cast<int>(rnd->size()), setting, sizeof setting) == nullptr)
        return fail("crypt_gensalt failed for yescrypt");
    return crypt_with_setting(password, setting);
}

Result<std::string> generate_des_crypt(std::string_view password, const GenerateOptions&) {
    auto salt = random_crypt_salt(kDesSaltChars);
    if (!salt) return salt;
    return crypt_with_setting(password, *salt);
}

Result<std::string> generate_md5_crypt(std::string_view password, const GenerateOptions&) {
    auto salt = random_crypt_salt(kMd5CryptSaltChars);
    if (!salt) return salt;
    return crypt_with_setting(password, "$1$" + *salt + "$");
}

Result<std::string> generate_sha256_crypt(std::string_view password, const GenerateOptions& opts) {
    return generate_sha_crypt('5', password, opts);
}

Result<std::string> generate_sha512_crypt(std::string_view password, const GenerateOptions& opts) {
    return generate_sha_crypt('6', password, opts);
}

}  // namespace postern::password::detail
