// PBKDF2 scheme: "$1$<salt>$<rounds>$<hex>" with PBKDF2-HMAC-SHA1 (RFC 8018),
// the salt used as literal ASCII (reference password-schemes.md section 3).
#include <openssl/evp.h>

#include <climits>

#include "password/detail.hpp"
#include "util/encoding.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

constexpr unsigned long kDefaultPbkdf2Rounds = 5000;  // doveadm's default
constexpr std::size_t kPbkdf2SaltChars = 16;
constexpr std::size_t kPbkdf2KeyLen = 20;  // SHA-1 output length, as Dovecot stores

}  // namespace

bool pbkdf2(Hash h, std::string_view password, std::string_view salt, unsigned long iterations, std::size_t out_len,
            std::string& out) {
    const EVP_MD* md = evp_for(h);
    if (md == nullptr || iterations == 0 || iterations > INT_MAX || password.size() > INT_MAX ||
        salt.size() > INT_MAX || out_len > INT_MAX)
        return false;
    out.assign(out_len, '\0');
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                             static_cast<int>(iterations), md, static_cast<int>(out_len),
                             reinterpret_cast<unsigned char*>(out.data())) == 1;
}

VerifyOutcome verify_pbkdf2(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    if (!raw.starts_with("$1$")) return invalid("Invalid PBKDF2 passdb entry prefix");
    const std::string_view rest = raw.substr(3);
    const auto d1 = rest.find('$');
    const auto d2 = d1 == std::string_view::npos ? d1 : rest.find('$', d1 + 1);
    if (d2 == std::string_view::npos || rest.find('$', d2 + 1) != std::string_view::npos)
        return invalid("Invalid PBKDF2 passdb entry format");
    const std::string_view salt = rest.substr(0, d1);
    unsigned long long rounds = 0;
    if (!parse_decimal(rest.substr(d1 + 1, d2 - d1 - 1), rounds) || rounds == 0 || rounds > INT_MAX)
        return invalid("Invalid PBKDF2 rounds value");
    if (over_limit(rounds, env.limits.max_pbkdf2_rounds)) return invalid("PBKDF2 rounds exceed the limit");
    const auto stored = hex_decode(rest.substr(d2 + 1));
    if (!stored) return invalid("Cannot decode PBKDF2 hash");
    std::string key;
    if (!pbkdf2(Hash::Sha1, password, salt, static_cast<unsigned long>(rounds), kPbkdf2KeyLen, key))
        return invalid("PBKDF2 computation failed");
    const bool equal = ct_equal(key, *stored);
    wipe(key);
    return match_if(equal);
}

Result<std::string> generate_pbkdf2(std::string_view password, const GenerateOptions& opts) {
    const unsigned long rounds = opts.rounds.value_or(kDefaultPbkdf2Rounds);
    if (rounds == 0 || rounds > INT_MAX) return fail("PBKDF2 rounds must be within 1..2147483647");
    auto salt = random_crypt_salt(kPbkdf2SaltChars);
    if (!salt) return salt;
    std::string key;
    if (!pbkdf2(Hash::Sha1, password, *salt, rounds, kPbkdf2KeyLen, key)) return fail("PBKDF2 computation failed");
    return "$1$" + *salt + "$" + std::to_string(rounds) + "$" + hex_encode(key);
}

}  // namespace postern::password::detail
