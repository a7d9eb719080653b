// Describing stored passwords for audits (postern user audit): the cost
// parameters in a stored value, what a {CRYPT} value really holds, and
// whether a scheme is salted. Formats: reference password-schemes.md §2.
#include <optional>
#include <string>

#include "password/detail.hpp"
#include "password/scheme.hpp"
#include "util/secret.hpp"

namespace postern::password {
namespace {

using detail::parse_decimal;

constexpr std::string_view kItoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// libxcrypt writes yescrypt's flavor, N and r as one character each while
// they are below 48; longer encodings are reported as written.
constexpr std::size_t kYescryptOneChar = 48;
// An unknown crypt(3) id is shown ("crypt $7$"), cut to this many characters.
constexpr std::size_t kMaxShownCryptId = 8;

// The field of `s` up to the next '$' (or the end), and the rest after it.
std::string_view take_field(std::string_view& s) {
    const auto d = s.find('$');
    const std::string_view field = s.substr(0, d);
    s = d == std::string_view::npos ? std::string_view{} : s.substr(d + 1);
    return field;
}

std::string decimal_param(std::string_view name, std::string_view digits) {
    unsigned long long n = 0;
    return parse_decimal(digits, n) ? std::string(name) + "=" + std::to_string(n) : std::string();
}

// "$y$j9T$...": N = 2^(index+1), r = index+1 (libxcrypt's encode64_uint32).
std::string yescrypt_cost(std::string_view params) {
    for (char c : params)
        if (kItoa64.find(c) == std::string_view::npos) return {};
    if (params.size() == 3 && kItoa64.find(params[0]) < kYescryptOneChar &&
        kItoa64.find(params[1]) < kYescryptOneChar && kItoa64.find(params[2]) < kYescryptOneChar)
        return "N=" + std::to_string(1ull << (kItoa64.find(params[1]) + 1)) +
               ",r=" + std::to_string(kItoa64.find(params[2]) + 1);
    return params.empty() ? std::string() : "params=" + std::string(params);
}

// A crypt(3) string: "$id$[params$]salt$hash", or DES (13 characters, or
// BSDi's "_" form) when it does not start with '$'.
void describe_crypt(std::string_view raw, StoredDescription& d) {
    if (raw.empty()) {
        d.malformed = true;  // an empty crypt string matches no password
        return;
    }
    if (raw[0] != '$') {
        // DES: 13 characters, or BSDi's "_" and 19; anything else fails in crypt(3).
        const std::string_view chars = raw[0] == '_' ? raw.substr(1) : raw;
        const bool des = chars.size() == (raw[0] == '_' ? 19u : 13u) &&
                         chars.find_first_not_of(kItoa64) == std::string_view::npos;
        if (des) d.algorithm = "DES-CRYPT";
        else d.malformed = true;
        return;
    }
    std::string_view rest = raw.substr(1);
    const std::string_view id = take_field(rest);
    if (id == "1") {
        d.algorithm = "MD5-CRYPT";
    } else if (id == "5" || id == "6") {
        d.algorithm = id == "5" ? "SHA256-CRYPT" : "SHA512-CRYPT";
        d.cost = "rounds=5000";  // sha-crypt's default when no rounds= is written
        if (rest.starts_with("rounds=")) d.cost = decimal_param("rounds", take_field(rest).substr(7));
    } else if (id.size() == 2 && id[0] == '2') {
        d.algorithm = "BLF-CRYPT";
        d.cost = decimal_param("cost", take_field(rest));
    } else if (id == "y") {
        d.algorithm = "YESCRYPT";
        d.cost = yescrypt_cost(take_field(rest));
    } else {
        std::string shown(id.substr(0, kMaxShownCryptId));
        for (char& c : shown)
            if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) c = '?';
        d.algorithm = "crypt $" + shown + "$";
    }
}

// "$argon2id$v=19$m=65536,t=3,p=1$salt$hash".
void describe_argon2(std::string_view raw, StoredDescription& d) {
    if (raw.starts_with("$argon2id$")) d.algorithm = "ARGON2ID";
    else if (raw.starts_with("$argon2i$")) d.algorithm = "ARGON2I";
    else return;
    std::string_view rest = raw.substr(d.algorithm.size() + 2);
    std::string_view params = take_field(rest);
    if (params.starts_with("v=")) params = take_field(rest);
    std::string out;
    for (std::string_view key : {"m", "t", "p"}) {
        const auto comma = params.find(',');
        const std::string_view field = params.substr(0, comma);
        params = comma == std::string_view::npos ? std::string_view{} : params.substr(comma + 1);
        if (!field.starts_with(key) || field.size() < 2 || field[1] != '=') return;
        const std::string p = decimal_param(key, field.substr(2));
        if (p.empty()) return;
        out += (out.empty() ? "" : ",") + p;
    }
    d.cost = std::move(out);
}

// PBKDF2 "$1$salt$rounds$hash"; SCRAM "iterations,salt,stored key,server key".
void describe_pbkdf2(std::string_view raw, StoredDescription& d) {
    if (!raw.starts_with("$1$")) return;
    std::string_view rest = raw.substr(3);
    take_field(rest);
    d.cost = decimal_param("rounds", take_field(rest));
}

void describe_scram(std::string_view raw, StoredDescription& d) {
    d.cost = decimal_param("iterations", raw.substr(0, raw.find(',')));
}

bool crypt_family(std::string_view scheme) {
    return scheme == "CRYPT" || scheme == "YESCRYPT" || scheme.ends_with("-CRYPT");
}

// Fills algorithm and cost from the decoded data of d.scheme.
void describe_data(std::string_view raw, StoredDescription& d) {
    if (crypt_family(d.scheme) || (d.scheme == "MD5" && raw.starts_with("$1$"))) describe_crypt(raw, d);
    else if (d.scheme == "MD5") d.algorithm = "PLAIN-MD5";
    else if (d.scheme.starts_with("ARGON2")) describe_argon2(raw, d);
    else if (d.scheme == "PBKDF2") describe_pbkdf2(raw, d);
    else if (d.scheme.starts_with("SCRAM-")) describe_scram(raw, d);
}

}  // namespace

std::optional<StoredDescription> describe_stored(std::string_view stored, const StoredContext& ctx) {
    if (stored.empty()) return std::nullopt;
    auto scheme = stored_scheme(stored, ctx);
    if (!scheme) return std::nullopt;
    StoredDescription d;
    d.scheme = *scheme;
    d.algorithm = *scheme;
    d.weak = is_weak(stored, ctx);
    // PLAIN-TRUNC is cleartext too, though credentials() never hands it out.
    auto clear = credentials(stored, "PLAIN", ctx);
    d.cleartext = clear.has_value() || d.scheme == "PLAIN-TRUNC";
    if (clear) wipe(*clear);
    // Within its own scheme credentials() only decodes the data.
    auto raw = credentials(stored, d.scheme, ctx);
    std::string keyed;
    if (!raw) {
        d.malformed = d.scheme != "PLAIN-TRUNC";
        keyed = std::string("stored") + '\0';
        keyed += stored;
    } else {
        describe_data(*raw, d);
        keyed = std::move(*raw);
    }
    d.identity = detail::hash_bytes(detail::Hash::Sha256, keyed);
    wipe(keyed);
    return d;
}

bool scheme_unsalted(std::string_view algorithm) {
    constexpr std::string_view kProbe = "postern-audit-probe";
    // Three equal results: DES's 12-bit salt repeats once in 4096 pairs.
    constexpr int kTries = 3;
    GenerateOptions opts;
    opts.user = "audit@example.invalid";  // DIGEST-MD5 needs a user
    auto first = password::generate(algorithm, kProbe, opts);
    if (!first) return false;
    for (int i = 1; i < kTries; ++i) {
        auto again = password::generate(algorithm, kProbe, opts);
        if (!again || *again != *first) return false;
    }
    return true;
}

}  // namespace postern::password
