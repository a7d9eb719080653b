// Scheme registry: the one table of Dovecot 2.3 password schemes, "{SCHEME.ENC}"
// parsing, encodings with hex/base64 guessing, the no-brace rules, verify,
// generate and credential conversion (reference password-schemes.md §1, §2, §4).
#include <array>
#include <cctype>
#include <optional>
#include <string>

#include "password/detail.hpp"
#include "password/scheme.hpp"
#include "util/encoding.hpp"
#include "util/loop_thread.hpp"
#include "util/secret.hpp"

namespace postern::password {
namespace {

using namespace detail;

enum class Encoding { None, Hex, Base64 };
enum class Cost {
    Cheap,
    Costly,
    CostlyIfMd5Crypt,  // the MD5 scheme: $1$ data is MD5-crypt, anything else one MD5
};

struct SchemeRow {
    std::string_view name;  // wire name; each alias is a row of its own, as in Dovecot
    Encoding encoding;      // default encoding of the stored data
    std::size_t raw_len;    // fixed decoded length, 0 = variable
    VerifyFn verify;        // nullptr: regenerate with `generate` and compare
    GenerateFn generate;
    Cost cost;
    bool weak;               // refused by Dovecot 2.4 without auth_allow_weak_schemes
    int strength;            // rank for rehash on login: 0 cleartext ... 5 argon2 (see strength())
    std::string_view group;  // credential alias group: same group = same credential
    // Written under this {SCHEME} prefix when set: YESCRYPT hashes are stored
    // as {CRYPT}$y$..., the form Dovecot (and crypt(3)) verifies.
    std::string_view stored_as = {};
};

VerifyOutcome verify_md5_scheme(std::string_view raw, std::string_view password, const VerifyEnv& env);

constexpr auto E_NONE = Encoding::None;
constexpr auto E_HEX = Encoding::Hex;
constexpr auto E_B64 = Encoding::Base64;
constexpr auto CHEAP = Cost::Cheap;
constexpr auto COSTLY = Cost::Costly;

// clang-format off
const std::array kSchemes = {
    //        name            enc    len verify               generate               cost     weak  rank group
    SchemeRow{"PLAIN",        E_NONE, 0, verify_plain,        generate_plain,        CHEAP,  false, 0, "PLAIN"},
    SchemeRow{"CLEAR",        E_NONE, 0, verify_plain,        generate_plain,        CHEAP,  false, 0, "PLAIN"},
    SchemeRow{"CLEARTEXT",    E_NONE, 0, verify_plain,        generate_plain,        CHEAP,  false, 0, "PLAIN"},
    SchemeRow{"PLAIN-TRUNC",  E_NONE, 0, verify_plain_trunc,  generate_plain_trunc,  CHEAP,  false, 0, "PLAIN"},
    SchemeRow{"CRYPT",        E_NONE, 0, verify_crypt,        generate_bcrypt,       COSTLY, false, 4, "CRYPT"},
    SchemeRow{"BLF-CRYPT",    E_NONE, 0, verify_blf_crypt,    generate_bcrypt,       COSTLY, false, 4, "CRYPT"},
    SchemeRow{"YESCRYPT",     E_NONE, 0, verify_crypt,        generate_yescrypt,     COSTLY, false, 4, "CRYPT", "CRYPT"},
    SchemeRow{"DES-CRYPT",    E_NONE, 0, verify_crypt,        generate_des_crypt,    COSTLY, true,  1, "DES-CRYPT"},
    SchemeRow{"SHA256-CRYPT", E_NONE, 0, verify_crypt,        generate_sha256_crypt, COSTLY, false, 3, "SHA256-CRYPT"},
    SchemeRow{"SHA512-CRYPT", E_NONE, 0, verify_crypt,        generate_sha512_crypt, COSTLY, false, 3, "SHA512-CRYPT"},
    SchemeRow{"MD5",          E_NONE, 0, verify_md5_scheme,   generate_md5_crypt,    Cost::CostlyIfMd5Crypt, true,  1, "MD5"},
    SchemeRow{"MD5-CRYPT",    E_NONE, 0, verify_md5_crypt,    generate_md5_crypt,    COSTLY, true,  1, "MD5"},
    SchemeRow{"SHA",          E_B64, 20, nullptr,             generate_sha1,         CHEAP,  false, 1, "SHA"},
    SchemeRow{"SHA1",         E_B64, 20, nullptr,             generate_sha1,         CHEAP,  false, 1, "SHA"},
    SchemeRow{"SHA256",       E_B64, 32, nullptr,             generate_sha256,       CHEAP,  false, 2, "SHA256"},
    SchemeRow{"SHA512",       E_B64, 64, nullptr,             generate_sha512,       CHEAP,  false, 2, "SHA512"},
    SchemeRow{"SSHA",         E_B64,  0, verify_ssha,         generate_ssha,         CHEAP,  false, 1, "SSHA"},
    SchemeRow{"SSHA256",      E_B64,  0, verify_ssha256,      generate_ssha256,      CHEAP,  false, 2, "SSHA256"},
    SchemeRow{"SSHA512",      E_B64,  0, verify_ssha512,      generate_ssha512,      CHEAP,  false, 2, "SSHA512"},
    SchemeRow{"SMD5",         E_B64,  0, verify_smd5,         generate_smd5,         CHEAP,  true,  1, "SMD5"},
    SchemeRow{"PLAIN-MD5",    E_HEX, 16, nullptr,             generate_md5,          CHEAP,  true,  1, "PLAIN-MD5"},
    SchemeRow{"LDAP-MD5",     E_B64, 16, nullptr,             generate_md5,          CHEAP,  true,  1, "PLAIN-MD5"},
    SchemeRow{"PLAIN-MD4",    E_HEX, 16, nullptr,             generate_md4,          CHEAP,  true,  1, "PLAIN-MD4"},
    SchemeRow{"CRAM-MD5",     E_HEX, 32, nullptr,             generate_cram_md5,     CHEAP,  false, 1, "CRAM-MD5"},
    SchemeRow{"HMAC-MD5",     E_HEX, 32, nullptr,             generate_cram_md5,     CHEAP,  true,  1, "CRAM-MD5"},
    SchemeRow{"DIGEST-MD5",   E_HEX, 16, nullptr,             generate_digest_md5,   CHEAP,  false, 1, "DIGEST-MD5"},
    SchemeRow{"PBKDF2",       E_NONE, 0, verify_pbkdf2,       generate_pbkdf2,       COSTLY, false, 3, "PBKDF2"},
    SchemeRow{"SCRAM-SHA-1",  E_NONE, 0, verify_scram_sha1,   generate_scram_sha1,   COSTLY, false, 3, "SCRAM-SHA-1"},
    SchemeRow{"SCRAM-SHA-256",E_NONE, 0, verify_scram_sha256, generate_scram_sha256, COSTLY, false, 3, "SCRAM-SHA-256"},
    SchemeRow{"OTP",          E_NONE, 0, verify_otp,          generate_otp,          CHEAP,  false, 1, "OTP"},
    SchemeRow{"ARGON2I",      E_NONE, 0, verify_argon2,       generate_argon2i,      COSTLY, false, 5, "ARGON2I"},
    SchemeRow{"ARGON2ID",     E_NONE, 0, verify_argon2,       generate_argon2id,     COSTLY, false, 5, "ARGON2ID"},
};
// clang-format on

constexpr std::size_t kMaxLoggedSchemeName = 40;  // an unknown name is untrusted text

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// Printable, truncated copy of an untrusted scheme name for operator messages.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, kMaxLoggedSchemeName))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > kMaxLoggedSchemeName) out += "...";
    return out;
}

struct Lookup {
    const SchemeRow* row;
    std::optional<Encoding> suffix;  // explicit .hex/.b64/.base64
};

std::optional<Lookup> lookup(std::string_view scheme) {
    std::string_view name = scheme;
    std::optional<Encoding> suffix;
    if (const auto dot = scheme.find('.'); dot != std::string_view::npos) {
        name = scheme.substr(0, dot);
        const std::string_view enc = scheme.substr(dot + 1);
        if (iequals(enc, "b64") || iequals(enc, "base64")) suffix = Encoding::Base64;
        else if (iequals(enc, "hex")) suffix = Encoding::Hex;
        else return std::nullopt;
    }
    for (const auto& row : kSchemes)
        if (iequals(row.name, name)) return Lookup{&row, suffix};
    return std::nullopt;
}

bool all_hex(std::string_view s) {
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// A stored value split into scheme text (possibly with suffix) and data,
// after the brace syntax and the passdb's no-brace rules (§1.2).
struct Split {
    std::string_view scheme;
    std::string_view data;
};

Split split_stored(std::string_view stored, const StoredContext& ctx) {
    if (stored.starts_with('{')) {
        if (const auto close = stored.find('}'); close != std::string_view::npos)
            return {stored.substr(1, close - 1), stored.substr(close + 1)};
    }
    if (ctx.passwd_file_rules) {
        // "$1$<salt>$<hash>[$<ignored>]" is MD5-CRYPT whatever the default.
        if (stored.starts_with("$1$")) {
            if (const auto p = stored.find('$', 3); p != std::string_view::npos) {
                const auto q = stored.find('$', p + 1);
                return {"MD5-CRYPT", stored.substr(0, q)};
            }
        }
        // libpam-pwdfile "hash[NN]" suffixes.
        if (stored.size() > 4 && !stored.starts_with('{') && !stored.starts_with('$')) {
            const std::string_view body = stored.substr(0, stored.size() - 4);
            if (stored.ends_with("[13]")) return {"CRYPT", body};
            if (stored.ends_with("[34]")) return {"PLAIN-MD5", body};
            if (stored.ends_with("[56]") && body.size() == 32 && all_hex(body)) return {"DIGEST-MD5", body};
        }
    }
    return {ctx.default_scheme, stored};
}

// Decodes stored data per §1.1: explicit suffix strictly, else the scheme's
// default encoding with the hex/base64 guess for fixed-length digests.
Result<std::string> decode(const SchemeRow& row, std::optional<Encoding> suffix, std::string_view data) {
    Encoding enc = suffix.value_or(row.encoding);
    bool guessed = false;
    if (!suffix && row.encoding != Encoding::None && row.raw_len != 0) {
        enc = data.size() == 2 * row.raw_len ? Encoding::Hex : Encoding::Base64;
        guessed = true;
    }
    std::string raw;
    switch (enc) {
        case Encoding::None: raw.assign(data); break;
        case Encoding::Hex:
            if (auto h = hex_decode(data)) {
                raw = std::move(*h);
                break;
            }
            if (!guessed) return fail("Input isn't valid HEX encoded data");
            // Some lengths are both valid hex and valid base64: try base64 too.
            [[fallthrough]];
        case Encoding::Base64: {
            auto b = base64_decode(data);
            if (!b) return fail("Input isn't valid base64 encoded data");
            raw = std::move(*b);
            break;
        }
    }
    if (row.raw_len != 0 && raw.size() != row.raw_len)
        return fail("Input length isn't valid (" + std::to_string(raw.size()) + " instead of " +
                    std::to_string(row.raw_len) + ")");
    return raw;
}

std::string encode(std::string_view raw, Encoding enc) {
    switch (enc) {
        case Encoding::Hex: return hex_encode(raw);
        case Encoding::Base64: return base64_encode(raw);
        case Encoding::None: break;
    }
    return std::string(raw);
}

const SchemeRow& row_named(std::string_view name) {
    for (const auto& row : kSchemes)
        if (row.name == name) return row;
    return kSchemes[0];  // unreachable: callers pass names from the table
}

// MD5: "$1$..." is MD5-crypt, otherwise a PLAIN-MD5 digest in hex or base64.
VerifyOutcome verify_md5_scheme(std::string_view raw, std::string_view password, const VerifyEnv& env) {
    if (raw.starts_with("$1$")) return verify_md5_crypt(raw, password, env);
    auto digest = decode(row_named("PLAIN-MD5"), std::nullopt, raw);
    if (!digest) return invalid("Not a valid MD5-CRYPT or PLAIN-MD5 password");
    return match_if(ct_equal(hash_bytes(Hash::Md5, password), *digest));
}

struct Resolved {
    Lookup scheme;
    std::string_view data;
};

Result<Resolved> resolve(std::string_view stored, const StoredContext& ctx) {
    const Split split = split_stored(stored, ctx);
    auto found = lookup(split.scheme);
    if (!found) return fail("Unknown scheme " + printable(split.scheme));
    return Resolved{*found, split.data};
}

}  // namespace

VerifyOutcome verify(std::string_view stored, std::string_view password, const StoredContext& ctx,
                     const CostLimits& limits) {
    if (on_loop_thread() && is_costly(stored, ctx)) expect_off_loop("password verification");
    auto resolved = resolve(stored, ctx);
    if (!resolved) return {Verdict::UnknownScheme, resolved.error().message};
    const SchemeRow& row = *resolved->scheme.row;
    auto raw = decode(row, resolved->scheme.suffix, resolved->data);
    if (!raw) return invalid(std::string(row.name) + ": " + raw.error().message);
    const VerifyEnv env{ctx, limits};
    VerifyOutcome out;
    if (row.verify != nullptr) {
        out = row.verify(*raw, password, env);
    } else {
        GenerateOptions opts;
        opts.user = ctx.user;
        auto expected = row.generate(password, opts);
        if (!expected) {
            out = invalid(expected.error().message);
        } else {
            out = match_if(ct_equal(*expected, *raw));
            wipe(*expected);
        }
    }
    if (out.verdict == Verdict::Invalid && !out.detail.starts_with(row.name))
        out.detail = std::string(row.name) + ": " + out.detail;
    return out;
}

bool is_costly(std::string_view stored, const StoredContext& ctx) {
    auto resolved = resolve(stored, ctx);
    if (!resolved) return false;
    switch (resolved->scheme.row->cost) {
        case Cost::Cheap: return false;
        case Cost::Costly: return true;
        case Cost::CostlyIfMd5Crypt: {
            auto raw = decode(*resolved->scheme.row, resolved->scheme.suffix, resolved->data);
            return raw && raw->starts_with("$1$");
        }
    }
    return false;
}

Result<std::string> generate(std::string_view scheme, std::string_view password, const GenerateOptions& opts) {
    auto found = lookup(scheme);
    if (!found) return fail("Unknown scheme " + printable(scheme));
    if (found->row->cost != Cost::Cheap) expect_off_loop("password hashing");
    auto raw = found->row->generate(password, opts);
    if (!raw) return fail(std::string(found->row->name) + ": " + raw.error().message);
    const std::string prefix = found->row->stored_as.empty() ? upper(scheme) : std::string(found->row->stored_as);
    std::string out = "{" + prefix + "}" + encode(*raw, found->suffix.value_or(found->row->encoding));
    wipe(*raw);
    return out;
}

std::optional<std::string> canonical_name(std::string_view scheme) {
    if (!lookup(scheme)) return std::nullopt;
    return upper(scheme);
}

std::optional<std::string> stored_scheme(std::string_view stored, const StoredContext& ctx) {
    auto resolved = resolve(stored, ctx);
    if (!resolved) return std::nullopt;
    return std::string(resolved->scheme.row->name);
}

Result<std::string> credentials(std::string_view stored, std::string_view wanted_scheme, const StoredContext& ctx) {
    auto wanted = lookup(wanted_scheme);
    if (!wanted) return fail("Unknown wanted scheme " + printable(wanted_scheme));
    auto resolved = resolve(stored, ctx);
    if (!resolved) return fail(resolved.error().message);
    const SchemeRow& have = *resolved->scheme.row;
    const SchemeRow& need = *wanted->row;
    const std::string have_need = "have " + std::string(have.name) + ", need " + std::string(need.name);
    // PLAIN-TRUNC's data may be a truncated password: never hand it out.
    if (have.name == "PLAIN-TRUNC" || need.name == "PLAIN-TRUNC")
        return fail("PLAIN-TRUNC is verify-only (" + have_need + ")");
    const bool same = have.group == need.group;
    if (!same && have.group != "PLAIN") return fail(have_need);
    if (!same && need.cost != Cost::Cheap) expect_off_loop("credential derivation");
    auto raw = decode(have, resolved->scheme.suffix, resolved->data);
    if (!raw) return fail(std::string(have.name) + ": " + raw.error().message);
    if (same) return raw;
    GenerateOptions opts;
    opts.user = ctx.user;
    opts.stable_salt = true;
    auto converted = need.generate(*raw, opts);
    wipe(*raw);
    if (!converted) return fail(std::string(need.name) + ": " + converted.error().message);
    return converted;
}

bool is_weak(std::string_view stored, const StoredContext& ctx) {
    auto resolved = resolve(stored, ctx);
    if (!resolved) return false;
    const SchemeRow& row = *resolved->scheme.row;
    if (row.weak) return true;
    // Schemes checked by crypt(3) take whatever crypt(3) takes: DES and
    // MD5-crypt contents are as weak as their own schemes, whatever the
    // prefix says (Dovecot 2.4 refuses them too).
    if (row.verify != verify_crypt) return false;
    auto raw = decode(row, resolved->scheme.suffix, resolved->data);
    if (!raw || raw->empty()) return false;
    return raw->starts_with("$1$") || (*raw)[0] != '$';
}

bool credentials_costly(std::string_view stored, std::string_view wanted_scheme, const StoredContext& ctx) {
    auto wanted = lookup(wanted_scheme);
    auto resolved = resolve(stored, ctx);
    if (!wanted || !resolved) return false;
    // Same group: the stored data is only decoded. Otherwise only a plaintext
    // can be converted, by the wanted scheme's generator (PBKDF2 for SCRAM).
    if (resolved->scheme.row->group == wanted->row->group) return false;
    return resolved->scheme.row->group == "PLAIN" && wanted->row->cost != Cost::Cheap;
}

int strength(std::string_view scheme) {
    auto found = lookup(scheme);
    return found ? found->row->strength : kUnknownStrength;
}

std::vector<SchemeListing> list_schemes() {
    std::vector<SchemeListing> out;
    out.reserve(kSchemes.size());
    for (const auto& row : kSchemes) out.push_back({std::string(row.name), row.weak, row.cost != Cost::Cheap});
    return out;
}

}  // namespace postern::password
