// oauth2 passdb: the password is an OAuth2 access token, checked by the
// provider's RFC 7662 token introspection endpoint (as Dovecot's passdb
// oauth2 does for clients that send a token where a password goes).
//
// postern.conf:
//   [[passdb]]
//   driver = "oauth2"
//   introspection_url = "https://idp.example/realms/mail/protocol/openid-connect/token/introspect"
//   client_id = "postern"                         # client credentials (HTTP Basic, RFC 7662 §2.1)
//   client_secret_file = "/etc/postern/oauth2.secret"
//   username_claim = "username"                   # must equal the login name
//   cache_ttl = "60s"                             # an answer is kept until the token's exp, at most this
//   timeout = "5s"
//   ca_file = "/etc/ssl/idp-ca.pem"
//   max_connections = 8
//
// "active": true with the claim naming the user (and exp not past) is Ok;
// "active": false, another user or an expired token is a mismatch; a non-200
// status, a timeout or an unreadable answer is a temporary failure. Answers
// are cached under the SHA-256 of the token (never the token itself).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backends/backend.hpp"

namespace postern::backend {

namespace oauth2 {

// One introspection answer (RFC 7662 §2.2), read by parse_introspection.
struct Introspection {
    bool active = false;
    std::string user;                // the username_claim's value ("" when absent)
    std::optional<std::int64_t> exp; // seconds since the epoch
};

// The answer in `body`, or why it cannot be read (then: temporary failure).
Result<Introspection> parse_introspection(std::string_view body, const std::string& username_claim);

// application/x-www-form-urlencoded value (RFC 6749 Appendix B).
std::string form_encode(std::string_view value);

}  // namespace oauth2

std::unique_ptr<Passdb> make_oauth2_passdb(const config::Section& s, Services& services);

}  // namespace postern::backend
