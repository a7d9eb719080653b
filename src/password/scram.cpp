// SCRAM-SHA-1 / SCRAM-SHA-256 stored keys (RFC 5802 section 3, RFC 7677):
// "<iter>,<b64 salt>,<b64 StoredKey>,<b64 ServerKey>". No SASLprep, like Dovecot.
#include <climits>

#include "password/detail.hpp"
#include "util/encoding.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

constexpr unsigned long kMinScramIterations = 4096;  // RFC 5802's minimum; Dovecot rejects less
constexpr std::size_t kScramSaltBytes = 16;

struct ScramKeys {
    std::string stored_key;
    std::string server_key;
};

bool derive(Hash h, std::string_view password, std::string_view salt, unsigned long iter, ScramKeys& keys) {
    std::string salted;
    if (!pbkdf2(h, password, salt, iter, hash_size(h), salted)) return false;
    std::string client_key = hmac(h, salted, "Client Key");
    keys.stored_key = hash_bytes(h, client_key);
    keys.server_key = hmac(h, salted, "Server Key");
    wipe(client_key);
    wipe(salted);
    return true;
}

VerifyOutcome verify_scram(Hash h, const char* name, std::string_view raw, std::string_view password,
                           const VerifyEnv& env) {
    std::string_view f[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const auto comma = raw.find(',', pos);
        if ((comma == std::string_view::npos) != (i == 3))
            return invalid(std::string("Invalid ") + name + " passdb entry format");
        f[i] = raw.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        pos = comma + 1;
    }
    unsigned long long iter = 0;
    if (!parse_decimal(f[0], iter) || iter < kMinScramIterations || iter > INT_MAX)
        return invalid(std::string("Invalid ") + name + " iteration count in passdb");
    if (over_limit(iter, env.limits.max_pbkdf2_rounds))
        return invalid(std::string(name) + " iteration count exceeds the limit");
    const auto salt = base64_decode(f[1]);
    if (!salt) return invalid(std::string("Invalid ") + name + " salt in passdb");
    const auto stored = base64_decode(f[2]);
    if (!stored || stored->size() != hash_size(h)) return invalid(std::string("Invalid ") + name + " StoredKey in passdb");
    const auto server = base64_decode(f[3]);
    if (!server || server->size() != hash_size(h)) return invalid(std::string("Invalid ") + name + " ServerKey in passdb");
    ScramKeys keys;
    if (!derive(h, password, *salt, static_cast<unsigned long>(iter), keys))
        return invalid(std::string(name) + " computation failed");
    return match_if(ct_equal(keys.stored_key, *stored));
}

Result<std::string> generate_scram(Hash h, std::string_view password, const GenerateOptions& opts) {
    const unsigned long iter = opts.rounds.value_or(kMinScramIterations);
    if (iter < kMinScramIterations || iter > INT_MAX) return fail("SCRAM iterations must be within 4096..2147483647");
    auto salt = random_bytes(kScramSaltBytes);
    if (!salt) return salt;
    ScramKeys keys;
    if (!derive(h, password, *salt, iter, keys)) return fail("SCRAM key derivation failed");
    return std::to_string(iter) + "," + base64_encode(*salt) + "," + base64_encode(keys.stored_key) + "," +
           base64_encode(keys.server_key);
}

}  // namespace

VerifyOutcome verify_scram_sha1(std::string_view raw, std::string_view pw, const VerifyEnv& env) {
    return verify_scram(Hash::Sha1, "SCRAM-SHA-1", raw, pw, env);
}
VerifyOutcome verify_scram_sha256(std::string_view raw, std::string_view pw, const VerifyEnv& env) {
    return verify_scram(Hash::Sha256, "SCRAM-SHA-256", raw, pw, env);
}
Result<std::string> generate_scram_sha1(std::string_view pw, const GenerateOptions& opts) {
    return generate_scram(Hash::Sha1, pw, opts);
}
Result<std::string> generate_scram_sha256(std::string_view pw, const GenerateOptions& opts) {
    return generate_scram(Hash::Sha256, pw, opts);
}

}  // namespace postern::password::detail
