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
// yescrypt needs 128 * r * N bytes; libxcrypt writes r = 32. Used to estimate
// memory from the N in a stored $y$ string.
constexpr unsigned long long kYescryptAssumedR = 32;

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

// Refuses stored strings whose work factor exceeds the caller's caps.
std::optional<std::string> cost_problem(std::string_view s, const CostLimits& limits) {
    if (s.size() >= 7 && s[0] == '$' && s[1] == '2' && s[3] == '$') {
        unsigned long long cost = 0;
        if (s[6] != '$' || !parse_decimal(s.substr(4, 2), cost)) return "malformed bcrypt cost";
        if (cost > kMaxBcryptCost || over_limit(cost, limits.max_bcrypt_cost))
            return "bcrypt cost " + std::to_string(cost) + " exceeds the limit";
        return std::nullopt;
    }
    if (s.starts_with("$5$rounds=") || s.starts_with("$6$rounds=")) {
        const std::string_view rest = s.substr(10);
        const auto end = rest.find('$');
        unsigned long long rounds = 0;
        if (end == std::string_view::npos || !parse_decimal(rest.substr(0, end), rounds))
            return "malformed sha-crypt rounds";
        if (rounds > kMaxShaCryptRounds || over_limit(rounds, limits.max_sha_crypt_rounds))
            return "sha-crypt rounds " + std::string(rest.substr(0, end)) + " exceed the limit";
        return std::nullopt;
    }
    if (s.starts_with("$y$") || s.starts_with("$gy$")) {
        const std::string_view params = s.substr(s[1] == 'y' ? 3 : 4);
        if (params.size() < 2) return "malformed yescrypt parameters";
        const int n_log2 = itoa64_index(params[1]) + 1;
        if (n_log2 <= 0 || n_log2 > 40) return "malformed yescrypt parameters";
        const unsigned long long kib = (128ull * kYescryptAssumedR << n_log2) / 1024;
        if (over_limit(kib, limits.max_argon2_memory_kib)) return "yescrypt memory cost exceeds the limit";
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
