// Private interface between the scheme registry (registry.cpp) and the
// per-family implementation files. Not installed, not used outside src/password.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "password/scheme.hpp"
#include "util/result.hpp"

namespace postern::password::detail {

// What a verifier sees besides the decoded stored data and the typed password.
struct VerifyEnv {
    const StoredContext& ctx;
    const CostLimits& limits;
};

// Verifies decoded stored data. Never throws on malformed data.
using VerifyFn = VerifyOutcome (*)(std::string_view raw, std::string_view password, const VerifyEnv& env);
// Produces the raw (not yet encoded) stored data for a password, or an error.
using GenerateFn = Result<std::string> (*)(std::string_view password, const GenerateOptions& opts);

inline VerifyOutcome match_if(bool equal) { return {equal ? Verdict::Match : Verdict::Mismatch, {}}; }
inline VerifyOutcome invalid(std::string detail) { return {Verdict::Invalid, std::move(detail)}; }
inline VerifyOutcome mismatch(std::string detail = {}) { return {Verdict::Mismatch, std::move(detail)}; }

// True when a limit is set (non-zero) and value exceeds it.
inline bool over_limit(unsigned long long value, unsigned long long limit) { return limit != 0 && value > limit; }

// Passes over memory a stored argon2, scrypt or yescrypt string may ask for
// (no CostLimits field covers time; far above any sane setting).
constexpr unsigned long long kMaxMemoryHardPasses = 1024;

// Parses a decimal number made of digits only; false on overflow, empty or any other char.
bool parse_decimal(std::string_view text, unsigned long long& out);

// `n` random bytes from OpenSSL's CSPRNG; an error when it is not seeded.
Result<std::string> random_bytes(std::size_t n);
// `n` random characters from the crypt(3) alphabet ./0-9A-Za-z.
Result<std::string> random_crypt_salt(std::size_t n);

// ---- digests (sha.cpp) ----
enum class Hash { Md4, Md5, Sha1, Sha256, Sha512 };
std::size_t hash_size(Hash h);
std::string hash_bytes(Hash h, std::string_view data);
std::string hmac(Hash h, std::string_view key, std::string_view data);
// OpenSSL's digest for `h`; nullptr for MD4 (computed by hand, see sha.cpp).
const EVP_MD* evp_for(Hash h);

// MD5 chaining state after compressing exactly one 64-byte block from the
// standard initial state (A, B, C, D). Used by the CRAM-MD5 stored form.
struct Md5State {
    std::uint32_t a, b, c, d;
};
Md5State md5_compress_block(const unsigned char block[64]);

VerifyOutcome verify_plain(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_plain_trunc(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_plain(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_plain_trunc(std::string_view password, const GenerateOptions& opts);

Result<std::string> generate_sha1(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_sha256(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_sha512(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_md5(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_md4(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_cram_md5(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_digest_md5(std::string_view password, const GenerateOptions& opts);

VerifyOutcome verify_ssha(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_ssha256(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_ssha512(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_smd5(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_ssha(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_ssha256(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_ssha512(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_smd5(std::string_view password, const GenerateOptions& opts);

// ---- OTP, RFC 2289 (otp.cpp) ----
VerifyOutcome verify_otp(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_otp(std::string_view password, const GenerateOptions& opts);

// ---- crypt(3) family (crypt.cpp) ----
VerifyOutcome verify_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_blf_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_md5_crypt(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_bcrypt(std::string_view password, const GenerateOptions& opts);
// yescrypt ($y$, libxcrypt; Debian's /etc/shadow default); rounds = cost 1..11, default 5.
Result<std::string> generate_yescrypt(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_des_crypt(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_md5_crypt(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_sha256_crypt(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_sha512_crypt(std::string_view password, const GenerateOptions& opts);

// ---- PBKDF2 (pbkdf2.cpp) ----
// PBKDF2-HMAC with the given hash; false when OpenSSL refuses.
bool pbkdf2(Hash h, std::string_view password, std::string_view salt, unsigned long iterations, std::size_t out_len,
            std::string& out);
VerifyOutcome verify_pbkdf2(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_pbkdf2(std::string_view password, const GenerateOptions& opts);

// ---- SCRAM (scram.cpp) ----
VerifyOutcome verify_scram_sha1(std::string_view raw, std::string_view password, const VerifyEnv& env);
VerifyOutcome verify_scram_sha256(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_scram_sha1(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_scram_sha256(std::string_view password, const GenerateOptions& opts);

// ---- Argon2 (argon2.cpp) ----
VerifyOutcome verify_argon2(std::string_view raw, std::string_view password, const VerifyEnv& env);
Result<std::string> generate_argon2i(std::string_view password, const GenerateOptions& opts);
Result<std::string> generate_argon2id(std::string_view password, const GenerateOptions& opts);

}  // namespace postern::password::detail
