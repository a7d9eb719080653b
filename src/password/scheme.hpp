// Password scheme registry: Dovecot's {SCHEME[.ENC]}data stored passwords —
// parse, verify, generate, and derive credentials for challenge-response
// mechanisms. Facts: shared reference password-schemes.md.
//
// Thread safety: every function here is pure and may run on any thread (the
// daemon runs costly verifications on its blocking pool). Nothing here logs;
// operator-facing detail comes back in the result and never contains the
// password or the stored hash.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::password {

enum class Verdict {
    Match,
    Mismatch,
    Invalid,        // stored data malformed for its scheme (operator error; client sees a mismatch)
    UnknownScheme,  // {NOSUCH} or an unknown .suffix (operator error; client sees a mismatch)
};

struct VerifyOutcome {
    Verdict verdict = Verdict::Mismatch;
    std::string detail;  // for the operator log when Invalid/UnknownScheme; no secrets
};

// How a stored value is interpreted when it carries no {SCHEME} prefix.
struct StoredContext {
    std::string default_scheme = "CRYPT";
    // passwd-file rules: a bare "$1$..." is MD5-CRYPT; libpam-pwdfile [13]/[34]/[56] suffixes.
    bool passwd_file_rules = false;
    // Login name, needed by DIGEST-MD5 (split at the last '@' into user and realm).
    std::string user;
};

// Costs a caller may cap before running a verification (DoS guard against a
// corrupt or hostile stored string). Zero means "no cap".
struct CostLimits {
    unsigned max_bcrypt_cost = 31;
    unsigned long max_sha_crypt_rounds = 999999999;
    unsigned long max_argon2_memory_kib = 4u * 1024 * 1024;
    unsigned long max_pbkdf2_rounds = 10000000;
};

VerifyOutcome verify(std::string_view stored, std::string_view password, const StoredContext& ctx,
                     const CostLimits& limits = {});

// True when verifying this stored value costs real CPU (crypt family, bcrypt,
// argon2, pbkdf2, scram); such work must run off the event loop.
bool is_costly(std::string_view stored, const StoredContext& ctx);

struct GenerateOptions {
    std::optional<unsigned> rounds;  // scheme-specific cost (sha-crypt rounds, bcrypt cost, argon2 t, pbkdf2/scram iterations)
    std::string user;                // DIGEST-MD5 needs it
    // SCRAM only (set by credentials()): the salt is a keyed hash of `user`
    // under a key drawn once per process instead of fresh random bytes, so
    // a password-derived credential shows the same salt on every attempt,
    // like a stored one (and like the stand-in given to unknown users).
    bool stable_salt = false;
};

// Returns "{SCHEME}data" with SCHEME upper-cased as given (suffix included).
Result<std::string> generate(std::string_view scheme, std::string_view password, const GenerateOptions& opts = {});
// Note: call it qualified (password::generate) when passing two std::string
// arguments, or argument-dependent lookup picks std::generate (compile error).

// The canonical upper-case name of a scheme (resolving aliases is NOT done:
// "clear" -> "CLEAR"), or nullopt if unknown. Accepts .ENC suffixes.
std::optional<std::string> canonical_name(std::string_view scheme);

// Name of the scheme a stored value uses, after default/auto-detection rules
// (upper-case table name without any .ENC suffix: "{sha256.b64}..." -> "SHA256").
std::optional<std::string> stored_scheme(std::string_view stored, const StoredContext& ctx);

// For challenge-response mechanisms: the credential in the wanted scheme
// (e.g. "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256", "PLAIN"), as raw decoded
// bytes (the SCRAM form is the "iter,salt,stored,server" text). Possible when
// the stored scheme is an alias of the wanted one or is plaintext; otherwise an
// error that says "have X, need Y".
Result<std::string> credentials(std::string_view stored, std::string_view wanted_scheme, const StoredContext& ctx);

// True when the stored value uses a scheme Dovecot 2.4 calls weak and
// refuses without auth_allow_weak_schemes: MD5, MD5-CRYPT, SMD5, HMAC-MD5,
// PLAIN-MD4, PLAIN-MD5, LDAP-MD5, DES-CRYPT, and {CRYPT} data that is DES or
// MD5-crypt ("$1$"). False for unknown schemes.
bool is_weak(std::string_view stored, const StoredContext& ctx);

// True when credentials(stored, wanted_scheme, ctx) costs real CPU (a
// plaintext turned into SCRAM keys runs PBKDF2): run it off the event loop.
bool credentials_costly(std::string_view stored, std::string_view wanted_scheme, const StoredContext& ctx);

// CRAM-MD5 (RFC 2195) from the stored form: HMAC-MD5 of `message` keyed by a
// CRAM-MD5 credential (the two 16-byte MD5 chaining states, outer then inner,
// as credentials() returns them). 16 raw bytes; empty when `context` is not
// 32 bytes long.
std::string cram_md5_digest(std::string_view context, std::string_view message);

struct SchemeListing {
    std::string name;
    bool weak;       // deprecated by Dovecot 2.4 (MD5, DES, ...)
    bool costly;     // verification is CPU heavy
};
std::vector<SchemeListing> list_schemes();

}  // namespace postern::password

// ---- Describing stored values for audits (describe.cpp, postern user audit) ----
namespace postern::password {

// What a stored value is made of, without its secret parts.
struct StoredDescription {
    std::string scheme;  // as stored_scheme(): "SHA512-CRYPT", "CRYPT", "MD5-CRYPT" ...
    // What the data really is where a scheme takes several formats: the
    // crypt(3) algorithm of crypt-family data ({CRYPT} holding "DES-CRYPT",
    // "MD5-CRYPT", "SHA512-CRYPT", "BLF-CRYPT", "YESCRYPT", or "crypt $7$" for
    // ids postern has no scheme for), "PLAIN-MD5" for {MD5} digests, the
    // variant of argon2 data; else the scheme itself.
    std::string algorithm;
    // Cost parameters as written in the data, normalised: "rounds=5000"
    // (sha-crypt, the default made explicit; PBKDF2), "cost=10" (bcrypt),
    // "m=65536,t=3,p=1" (argon2), "N=4096,r=32" (yescrypt),
    // "iterations=4096" (SCRAM). Empty when the format has none (digests,
    // DES, MD5-crypt) or the data is malformed.
    std::string cost;
    bool weak = false;       // is_weak()
    bool cleartext = false;  // the data is the password itself (PLAIN, CLEAR, CLEARTEXT, PLAIN-TRUNC)
    bool malformed = false;  // the data does not decode for its scheme, or is no crypt(3) string (a login fails)
    // SHA-256 of the decoded data (of the whole value when it does not
    // decode): equal for two stored values with the same salt and hash,
    // whatever their {SCHEME} prefix or encoding. For cleartext and unsalted
    // schemes it is an unsalted hash of the password: keep it in memory,
    // never print or store it.
    std::string identity;
};

// nullopt when the scheme is unknown (or `stored` is empty).
std::optional<StoredDescription> describe_stored(std::string_view stored, const StoredContext& ctx);

// True when `algorithm` (a scheme name, e.g. StoredDescription::algorithm)
// turns one password into the same stored value every time (no random
// salt), so equal stored values mean equal passwords: PLAIN, SHA, PLAIN-MD5
// .... Found by generating twice, which costs what one login costs in
// that scheme: call it once per scheme. False for names it cannot generate.
bool scheme_unsalted(std::string_view algorithm);

}  // namespace postern::password

// ---- Ranking schemes for rehash on login (registry.cpp's strength column) ----
namespace postern::password {

// How strong a scheme is, for deciding whether a stored hash is worth
// upgrading to [auth] rehash_scheme: 0 cleartext; 1 MD4/MD5/SHA-1 digests,
// DES and MD5 crypt, CRAM-MD5, DIGEST-MD5, OTP; 2 SHA-2 digests; 3 SHA-crypt,
// PBKDF2, SCRAM; 4 bcrypt, yescrypt and CRYPT; 5 argon2. `scheme` as
// stored_scheme() or canonical_name() give it (case and .ENC suffix do not
// matter). A name the table does not know ranks kUnknownStrength.
inline constexpr int kUnknownStrength = 4;  // crypt(3) flavours postern has no row for
int strength(std::string_view scheme);

}  // namespace postern::password
