// ARGON2I / ARGON2ID schemes: PHC strings "$argon2id$v=19$m=..,t=..,p=..$salt$hash"
// (RFC 9106). Verification takes every parameter from the string: libsodium
// when it can (v=19, p=1, within its limits), libargon2 otherwise, always on
// the calling thread (argon2_verify would start a thread per lane for every
// slice of every pass: 4 * t * p thread starts per login).
#include <argon2.h>
#include <sodium.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>

#include "password/detail.hpp"
#include "util/encoding.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

// No CostLimits field covers lanes; this cap (and kMaxMemoryHardPasses) stops
// a corrupt row from asking for hours of work while staying far above any
// sane setting.
// New hashes: more passes than this only burn CPU at every login.
constexpr unsigned long long kMaxGeneratePasses = 64;
constexpr unsigned long long kMaxArgon2Lanes = 64;

struct Argon2Params {
    bool id = false;
    unsigned long long version = 0x10;  // strings without v= are version 1.0
    unsigned long long m = 0, t = 0, p = 0;
    std::string_view salt, hash;  // unpadded base64, as stored
};

// Splits "key=value" where key matches exactly.
bool take_param(std::string_view field, std::string_view key, unsigned long long& out) {
    if (!field.starts_with(key) || field.size() <= key.size() || field[key.size()] != '=') return false;
    return parse_decimal(field.substr(key.size() + 1), out);
}

bool is_b64_unpadded(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) return false;
    }
    return true;
}

bool parse(std::string_view s, Argon2Params& out) {
    if (s.starts_with("$argon2id$")) {
        out.id = true;
        s.remove_prefix(10);
    } else if (s.starts_with("$argon2i$")) {
        s.remove_prefix(9);
    } else {
        return false;
    }
    auto next = [&s]() -> std::optional<std::string_view> {
        if (s.empty()) return std::nullopt;
        const auto d = s.find('$');
        std::string_view f = s.substr(0, d);
        s = d == std::string_view::npos ? std::string_view{} : s.substr(d + 1);
        return f;
    };
    auto field = next();
    if (field && field->starts_with("v=")) {
        if (!take_param(*field, "v", out.version)) return false;
        field = next();
    }
    if (!field) return false;
    const std::string_view params = *field;
    const auto c1 = params.find(',');
    const auto c2 = c1 == std::string_view::npos ? c1 : params.find(',', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    if (!take_param(params.substr(0, c1), "m", out.m) || !take_param(params.substr(c1 + 1, c2 - c1 - 1), "t", out.t) ||
        !take_param(params.substr(c2 + 1), "p", out.p))
        return false;
    const auto salt = next();
    const auto hash = next();
    if (!salt || !hash || !s.empty() || !is_b64_unpadded(*salt) || !is_b64_unpadded(*hash)) return false;
    out.salt = *salt;
    out.hash = *hash;
    return out.version == 0x10 || out.version == 0x13;
}

bool sodium_ready() {
    static const bool ok = sodium_init() >= 0;
    return ok;
}

Result<std::string> generate(bool id, std::string_view password, unsigned long long ops, std::size_t mem) {
    if (!sodium_ready()) return fail("libsodium initialisation failed");
    char out[crypto_pwhash_STRBYTES];
    const int rc = id ? crypto_pwhash_argon2id_str(out, password.data(), password.size(), ops, mem)
                      : crypto_pwhash_argon2i_str(out, password.data(), password.size(), ops, mem);
    if (rc != 0) return fail("argon2 hashing failed (out of memory?)");
    return std::string(out);
}

}  // namespace

VerifyOutcome verify_argon2(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    Argon2Params p;
    // Dovecot (libsodium) answers a plain mismatch for anything unparsable.
    if (!parse(raw, p)) return mismatch("not an argon2i/argon2id string");
    if (over_limit(p.m, env.limits.max_argon2_memory_kib)) return invalid("argon2 memory cost exceeds the limit");
    if (p.t > kMaxMemoryHardPasses || p.p > kMaxArgon2Lanes || p.m > UINT32_MAX)
        return invalid("argon2 time or lanes cost exceeds the limit");
    if (p.t == 0 || p.p == 0 || p.m < 8 * p.p) return invalid("argon2 parameters out of range");
    const std::string encoded(raw);
    const unsigned long long sodium_min_t = p.id ? crypto_pwhash_argon2id_OPSLIMIT_MIN : crypto_pwhash_argon2i_OPSLIMIT_MIN;
    if (p.version == 0x13 && p.p == 1 && p.t >= sodium_min_t && p.m * 1024 >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
        sodium_ready()) {
        // The string parsed, so -1 here means the password is wrong (or,
        // rarely, allocation failed; both are a non-match for the client).
        const int rc = p.id ? crypto_pwhash_argon2id_str_verify(encoded.c_str(), password.data(), password.size())
                            : crypto_pwhash_argon2i_str_verify(encoded.c_str(), password.data(), password.size());
        return match_if(rc == 0);
    }
    auto salt = base64_decode(p.salt, true);
    auto want = base64_decode(p.hash, true);
    if (!salt || !want) return mismatch("not an argon2i/argon2id string");
    if (password.size() > UINT32_MAX || salt->size() > UINT32_MAX || want->size() > UINT32_MAX)
        return invalid("argon2 input too long");
    std::string got(want->size(), '\0');
    std::string pwd(password);  // argon2_ctx takes a mutable buffer (and may clear it)
    argon2_context c{};
    c.out = reinterpret_cast<std::uint8_t*>(got.data());
    c.outlen = static_cast<std::uint32_t>(got.size());
    c.pwd = reinterpret_cast<std::uint8_t*>(pwd.data());
    c.pwdlen = static_cast<std::uint32_t>(pwd.size());
    c.salt = reinterpret_cast<std::uint8_t*>(salt->data());
    c.saltlen = static_cast<std::uint32_t>(salt->size());
    c.t_cost = static_cast<std::uint32_t>(p.t);
    c.m_cost = static_cast<std::uint32_t>(p.m);
    c.lanes = static_cast<std::uint32_t>(p.p);
    c.threads = 1;  // the hashing pool is the parallelism; lanes are computed in turn
    c.version = static_cast<std::uint32_t>(p.version);
    c.flags = ARGON2_DEFAULT_FLAGS;
    const int rc = argon2_ctx(&c, p.id ? Argon2_id : Argon2_i);
    wipe(pwd);
    if (rc != ARGON2_OK) return invalid(std::string("argon2: ") + argon2_error_message(rc));
    const bool equal = ct_equal(got, *want);
    wipe(got);
    return match_if(equal);
}

Result<std::string> generate_argon2i(std::string_view password, const GenerateOptions& opts) {
    // doveadm: t = rounds (default 4), memory stepping up with the rounds.
    const unsigned long long rounds = opts.rounds.value_or(0);
    if (rounds > kMaxGeneratePasses) return fail("argon2 rounds (passes) out of range: at most " + std::to_string(kMaxGeneratePasses));
    unsigned long long ops = rounds == 0 ? crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE : rounds;
    std::size_t mem = crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE;
    if (ops >= crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE) mem = crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE;
    else if (ops >= crypto_pwhash_argon2i_OPSLIMIT_MODERATE) mem = crypto_pwhash_argon2i_MEMLIMIT_MODERATE;
    if (ops < crypto_pwhash_argon2i_OPSLIMIT_MIN) ops = crypto_pwhash_argon2i_OPSLIMIT_MIN;  // libsodium refuses fewer
    return generate(false, password, ops, mem);
}

Result<std::string> generate_argon2id(std::string_view password, const GenerateOptions& opts) {
    // doveadm picks memory from the requested rounds, then raises t to at least 3.
    const unsigned long long rounds = opts.rounds.value_or(0);
    if (rounds > kMaxGeneratePasses) return fail("argon2 rounds (passes) out of range: at most " + std::to_string(kMaxGeneratePasses));
    std::size_t mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
    if (rounds >= crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE) mem = crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
    else if (rounds >= crypto_pwhash_argon2id_OPSLIMIT_MODERATE) mem = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
    const unsigned long long ops = rounds < 3 ? 3 : rounds;
    return generate(true, password, ops, mem);
}

}  // namespace postern::password::detail
