// Local validation of JWT bearer tokens (RFC 7519, JWS compact form RFC 7515)
// for OAUTHBEARER and XOAUTH2: signature with a configured key (RS256, ES256
// per RFC 7518 §3.3-3.4, HS256 per §3.2), exp/nbf, issuer, audience, and the
// claim that names the user. Keys come from PEM files or a JWK Set file
// (parse_jwks); no network here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"
#include "util/secret.hpp"

namespace postern::mech {

enum class JwtAlg { RS256, ES256, HS256 };

struct JwtKey {
    std::string kid;                  // "" = usable for a token with any (or no) kid
    JwtAlg alg = JwtAlg::HS256;
    std::shared_ptr<void> public_key; // EVP_PKEY for RS256/ES256
    std::shared_ptr<Secret> secret;   // HS256
};

// RS256/ES256: `material` is a PEM public key (or certificate); HS256: the raw secret.
Result<JwtKey> make_jwt_key(std::string_view alg, std::string kid, std::string_view material);

// The signing keys of a JSON Web Key Set (RFC 7517 §5, as an identity
// provider publishes at its jwks_uri): RSA keys as RS256, P-256 EC keys as
// ES256, each with its "kid". Keys for encryption ("use": "enc"), with an
// "alg" other than those two, or of other types are skipped. An error when
// the text is not a key set or holds no usable key.
Result<std::vector<JwtKey>> parse_jwks(std::string_view json);

// The configured keys and claim checks; immutable once built, shared by all
// OAUTHBEARER / XOAUTH2 requests.
struct JwtValidator {
    std::vector<JwtKey> keys;
    std::string issuer;                    // must equal "iss" when set
    std::string audience;                  // must be in "aud" when set
    std::string username_claim = "email";  // claim whose string value is the user
    std::int64_t leeway = 30;              // seconds of clock skew allowed on exp/nbf
    bool require_exp = true;

    // The user name from an acceptable token, or why it is not (operator text,
    // never the token itself).
    Result<std::string> validate(std::string_view token, std::int64_t now) const;
    // Whether some key fits the alg and kid of the token's header; nullopt
    // when the header cannot be read or names no RS256/ES256 key (nothing a
    // key set could add). A key set fetched over the network is fetched
    // again for a token that names a key it does not hold.
    std::optional<bool> has_key_for(std::string_view token) const;
};

}  // namespace postern::mech
