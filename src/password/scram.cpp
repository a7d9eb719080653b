// SCRAM-SHA-1 / SCRAM-SHA-256 stored keys (RFC 5802 section 3, RFC 7677):
// "<iter>,<b64 salt>,<b64 StoredKey>,<b64 ServerKey>". The password goes
// through SASLprep (RFC 4013) as RFC 5802 §2.2 asks, simplified: see saslprep().
#include <climits>
#include <stdexcept>

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

// RFC 4013 SASLprep, simplified: non-ASCII spaces (RFC 3454 C.1.2) become
// U+0020 and the "commonly mapped to nothing" characters (B.1) are removed.
// NFKC normalisation and the prohibited-output checks are not done: a
// password is used as typed apart from those mappings (ASCII passwords,
// the common case, are unchanged), and a string that is not UTF-8 is used
// as bytes. Clients that normalise NFKC-different input differently will
// not match; such passwords are rare and Dovecot does no SASLprep at all.
std::string saslprep(std::string_view in) {
    bool ascii = true;
    for (char c : in) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return std::string(in);
    std::string out;
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        std::size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || i + len > in.size()) return std::string(in);
        std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(in[i + k]);
            if ((cc & 0xc0) != 0x80) return std::string(in);
            cp = (cp << 6) | (cc & 0x3f);
        }
        const bool to_nothing = cp == 0xad || cp == 0x34f || cp == 0x1806 || (cp >= 0x180b && cp <= 0x180d) ||
                                (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || (cp >= 0xfe00 && cp <= 0xfe0f) ||
                                cp == 0xfeff;
        const bool to_space = cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f ||
                              cp == 0x205f || cp == 0x3000;
        if (to_space) out.push_back(' ');
        else if (!to_nothing) out.append(in.substr(i, len));
        i += len;
    }
    return out;
}

// HMAC-SHA-256(process key, user), cut to the salt length.
std::string stable_salt(std::string_view user) {
    static const std::string key = [] {
        auto k = random_bytes(32);
        if (!k) throw std::runtime_error("random bytes unavailable");
        return *k;
    }();
    std::string mac = hmac(Hash::Sha256, key, std::string("SCRAM salt\0", 11) + std::string(user));
    mac.resize(kScramSaltBytes);
    return mac;
}

bool derive(Hash h, std::string_view password_in, std::string_view salt, unsigned long iter, ScramKeys& keys) {
    std::string password = saslprep(password_in);
    std::string salted;
    const bool ok = pbkdf2(h, password, salt, iter, hash_size(h), salted);
    wipe(password);
    if (!ok) return false;
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
    auto salt = opts.stable_salt ? Result<std::string>(stable_salt(opts.user)) : random_bytes(kScramSaltBytes);
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
