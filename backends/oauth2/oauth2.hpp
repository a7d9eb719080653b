// oauth2 passdb: the password is an OAuth2 access token, checked by the
// provider's RFC 7662 token introspection endpoint (as Dovecot's passdb
// oauth2 does for clients that send a token where a password goes), or by
// its OpenID Connect userinfo endpoint (userinfo_url instead). The same
// TokenChecker serves OAUTHBEARER / XOAUTH2 through [oauth2] (auth/token_check).
//
// postern.conf:
//   [[passdb]]
//   driver = "oauth2"
//   introspection_url = "https://idp.example/realms/mail/protocol/openid-connect/token/introspect"
//   # or: userinfo_url = "https://idp.example/realms/mail/protocol/openid-connect/userinfo"
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

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "backends/backend.hpp"
#include "backends/gate.hpp"
#include "util/http_client.hpp"

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

// An OpenID Connect userinfo answer (OIDC Core §5.3.2) read the same way: a
// JSON object is an active token, its username_claim names the user.
Result<Introspection> parse_userinfo(std::string_view body, const std::string& username_claim);

// application/x-www-form-urlencoded value (RFC 6749 Appendix B).
std::string form_encode(std::string_view value);

// How a token is asked about.
enum class Method {
    Introspection,  // POST token=... to the RFC 7662 endpoint, client credentials as HTTP Basic
    Userinfo,       // GET the OIDC userinfo endpoint with "Authorization: Bearer <token>"
};

struct CheckerSettings {
    Method method = Method::Introspection;
    std::string url;
    std::string client_id;
    std::string client_secret;  // never logged
    std::string username_claim = "username";
    std::chrono::seconds ttl{60};  // an answer is kept until the token's exp, at most this
    std::chrono::milliseconds timeout{5000};
    std::string ca_file;
    bool verify_cert = true;
    unsigned max_connections = 8;  // requests in flight at once; more wait within the timeout
};

// What the provider said about one token.
struct TokenAnswer {
    enum class Status { Valid, Invalid, TempFail };
    Status status = Status::TempFail;
    std::string user;  // Valid: the username_claim's value
    std::string why;   // Invalid / TempFail: operator text, never the token
};

// Asks the provider about bearer tokens and caches its answers under the
// SHA-256 of the token (never the token itself): until the token's exp and
// at most `ttl`; temporary failures are not cached. Valid: active (HTTP 200
// with a JSON object for userinfo) with a non-empty username claim and exp
// not past. Invalid: "active": false, an expired token, a missing claim, or
// a userinfo 401/403. TempFail: connect failure, timeout, another status,
// an unreadable body. Loop thread only; shared by the requests of one engine.
class TokenChecker {
public:
    TokenChecker(CheckerSettings settings, asio::any_io_executor ex);
    asio::awaitable<TokenAnswer> check(Secret token);
    void invalidate() { cache_.clear(); }
    const CheckerSettings& settings() const { return st_; }

private:
    struct Cached {
        Introspection answer;
        std::int64_t until = 0;
    };
    asio::awaitable<Result<Introspection>> ask(Secret token);
    void remember(const std::string& id, const Introspection& answer, std::int64_t now);

    CheckerSettings st_;
    std::shared_ptr<http::HttpClient> client_;
    std::unordered_map<std::string, Cached> cache_;
    Gate gate_;
    OutageLog outage_;
};

}  // namespace oauth2

std::unique_ptr<Passdb> make_oauth2_passdb(const config::Section& s, Services& services);

}  // namespace postern::backend
