// OAUTHBEARER / XOAUTH2 token checks over the network, as [oauth2] sets them
// up: RFC 7662 introspection or OpenID Connect userinfo (the oauth2
// backend's TokenChecker, answers cached by a hash of the token), or JWT
// validation with the provider's JWK Set fetched from jwks_url (or the
// discovery document's jwks_uri, OpenID Connect Discovery §3).
//
// The key set is fetched on first use, again when its lifetime is over
// (Cache-Control max-age, else jwks_ttl; never sooner than jwks_min_refresh)
// and when a token names a kid the set does not hold (at most once per
// jwks_min_refresh, so a flood of made-up kids costs one fetch). A failed
// fetch keeps the last good set. Requests that need the set while a fetch
// is in flight wait for it instead of fetching again.
//
// Outcomes: Valid (the username claim of a good token), Invalid (refused:
// the mechanism sends the RFC 7628 error), TempFail (no key set yet, or a
// token names a kid the set lacks while the last fetch failed: the
// provider down, 5xx, timeout): never a wrong OK. Loop thread only; one
// per engine generation.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "backends/oauth2/oauth2.hpp"
#include "config/config.hpp"
#include "protocol/mech/jwt.hpp"
#include "util/http_client.hpp"
#include "util/secret.hpp"

namespace postern::auth {

class TokenCheck {
public:
    // Never connects here. cfg.remote() must be true.
    TokenCheck(const config::OAuth2& cfg, asio::any_io_executor ex);
    asio::awaitable<backend::oauth2::TokenAnswer> check(Secret token);

    // The Cache-Control max-age in seconds, if the header has one (tests).
    static std::optional<long> max_age(std::string_view cache_control);

private:
    using Clock = std::chrono::steady_clock;
    enum class Fetch { Fetched, Failed, Skipped };
    asio::awaitable<Fetch> refresh(bool unknown_kid);
    asio::awaitable<Result<std::string>> get(std::string url, std::size_t max_body, std::string* cache_control);
    asio::awaitable<Result<std::string>> jwks_location();
    void note(bool down, const std::string& why);

    asio::any_io_executor ex_;
    std::unique_ptr<backend::oauth2::TokenChecker> checker_;  // introspection / userinfo
    // JWKS: the claim checks and configured keys, the URLs and the timing.
    mech::JwtValidator base_;
    std::string jwks_url_, discovery_url_, discovered_;
    Clock::duration ttl_, min_refresh_;
    std::chrono::milliseconds timeout_;
    std::string ca_file_;
    bool verify_cert_ = true;
    std::shared_ptr<http::HttpClient> client_;
    std::shared_ptr<const mech::JwtValidator> current_;  // null until the first good fetch
    Clock::time_point expires_{}, last_attempt_{};
    bool attempted_ = false, down_ = false;
    std::string last_error_;
    // Set while a fetch is in flight: waiters sleep on it, the fetch cancels it.
    std::shared_ptr<asio::steady_timer> in_flight_;
    Fetch last_fetch_ = Fetch::Skipped;  // the outcome of the last fetch tried
};

}  // namespace postern::auth
