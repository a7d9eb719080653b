// Network token checks for OAUTHBEARER / XOAUTH2 (see token_check.hpp).
#include "auth/token_check.hpp"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <charconv>
#include <ctime>

#include "util/json.hpp"
#include "util/log.hpp"
#include "util/encoding.hpp"

namespace postern::auth {

using backend::oauth2::TokenAnswer;

namespace {

// A provider's key set is a few KiB; parse_jwks refuses more than 256 KiB.
constexpr std::size_t kMaxJwksBody = 256 * 1024;
constexpr std::size_t kMaxDiscoveryBody = 64 * 1024;
constexpr std::size_t kMaxLoggedText = 300;

}  // namespace

std::optional<long> TokenCheck::max_age(std::string_view cc) {
    // Directives are comma-separated, case-insensitive (RFC 9111 §5.2).
    while (!cc.empty()) {
        auto comma = cc.find(',');
        std::string_view d = cc.substr(0, comma);
        cc = comma == std::string_view::npos ? std::string_view() : cc.substr(comma + 1);
        while (!d.empty() && d.front() == ' ') d.remove_prefix(1);
        while (!d.empty() && d.back() == ' ') d.remove_suffix(1);
        const std::string lower = lowercase(d);
        if (lower == "no-store" || lower == "no-cache") return 0L;
        if (!lower.starts_with("max-age=")) continue;
        long v = 0;
        const char* b = lower.data() + 8;
        const char* e = lower.data() + lower.size();
        auto [p, ec] = std::from_chars(b, e, v);
        if (ec != std::errc() || p != e || v < 0) return std::nullopt;
        return v;
    }
    return std::nullopt;
}

TokenCheck::TokenCheck(const config::OAuth2& cfg, asio::any_io_executor ex)
    : ex_(ex), jwks_url_(cfg.jwks_url), discovery_url_(cfg.discovery_url), ttl_(cfg.jwks_ttl),
      min_refresh_(cfg.jwks_min_refresh),
      timeout_(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout)), ca_file_(cfg.ca_file),
      verify_cert_(cfg.verify_cert) {
    if (!cfg.introspection_url.empty() || !cfg.userinfo_url.empty()) {
        backend::oauth2::CheckerSettings s;
        s.method = cfg.introspection_url.empty() ? backend::oauth2::Method::Userinfo
                                                 : backend::oauth2::Method::Introspection;
        s.url = cfg.introspection_url.empty() ? cfg.userinfo_url : cfg.introspection_url;
        s.client_id = cfg.client_id;
        s.client_secret = cfg.client_secret;
        s.username_claim = cfg.username_claim;
        s.ttl = std::chrono::duration_cast<std::chrono::seconds>(cfg.cache_ttl);
        s.timeout = timeout_;
        s.ca_file = cfg.ca_file;
        s.verify_cert = cfg.verify_cert;
        checker_ = std::make_unique<backend::oauth2::TokenChecker>(std::move(s), ex);
        return;
    }
    if (cfg.validator) base_ = *cfg.validator;  // claim checks and any configured keys
    base_.issuer = cfg.issuer;
    base_.audience = cfg.audience;
    base_.username_claim = cfg.username_claim;
    base_.leeway = std::chrono::duration_cast<std::chrono::seconds>(cfg.leeway).count();
    client_ = http::HttpClient::shared(ex);
}

asio::awaitable<TokenAnswer> TokenCheck::check(Secret token) {
    if (checker_) {
        TokenAnswer a = co_await checker_->check(std::move(token));
        co_return a;
    }
    TokenAnswer out;
    if (!current_ || Clock::now() >= expires_) co_await refresh(false);
    // A readable header naming a key the set lacks: perhaps a rotation.
    const std::optional<bool> known = current_ ? current_->has_key_for(token.view()) : std::nullopt;
    if (known && !*known) {
        const Fetch f = co_await refresh(true);
        // Not fetched now, or skipped right after a failed fetch: the key
        // may be new, so this is no proof against the token.
        if (f == Fetch::Failed || last_fetch_ == Fetch::Failed) {
            out.why = "token names a key not in the key set, and the key set cannot be fetched: " + last_error_;
            co_return out;
        }
    }
    if (!current_) {
        out.why = "no key set from the provider yet: " + last_error_;
        co_return out;
    }
    auto user = current_->validate(token.view(), static_cast<std::int64_t>(std::time(nullptr)));
    if (!user) {
        out.status = TokenAnswer::Status::Invalid;
        out.why = user.error().message;
        co_return out;
    }
    out.status = TokenAnswer::Status::Valid;
    out.user = std::move(*user);
    co_return out;
}

asio::awaitable<TokenCheck::Fetch> TokenCheck::refresh(bool unknown_kid) {
    if (in_flight_) {
        // Someone fetches already: wait for that fetch and take its outcome.
        auto t = in_flight_;
        asio::error_code ec;
        co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_return last_fetch_;
    }
    const auto now = Clock::now();
    // One attempt per min_refresh: an unknown-kid flood, a provider that is
    // down, or a max-age of 0 do not turn every login into a fetch.
    if (attempted_ && now - last_attempt_ < min_refresh_) {
        if (unknown_kid || current_) co_return Fetch::Skipped;
        co_return Fetch::Failed;  // no set at all, and the last try failed just now
    }
    attempted_ = true;
    last_attempt_ = now;
    auto waiters = std::make_shared<asio::steady_timer>(ex_, Clock::time_point::max());
    in_flight_ = waiters;
    Fetch outcome = Fetch::Failed;
    auto where = co_await jwks_location();
    if (!where) {
        last_error_ = where.error().message;
    } else {
        std::string cache_control;
        std::string url = *where;
        auto op = get(std::move(url), kMaxJwksBody, &cache_control);
        auto body = co_await std::move(op);
        if (!body) {
            last_error_ = body.error().message;
            discovered_.clear();  // the discovery document may name another URL now
        } else if (auto keys = mech::parse_jwks(*body); !keys) {
            last_error_ = *where + ": " + keys.error().message;
        } else {
            auto v = std::make_shared<mech::JwtValidator>(base_);
            const std::size_t n = keys->size();
            for (auto& k : *keys) v->keys.push_back(std::move(k));
            current_ = std::move(v);
            Clock::duration life = ttl_;
            if (auto age = max_age(cache_control)) life = std::min<Clock::duration>(life, std::chrono::seconds(*age));
            life = std::max(life, min_refresh_);
            expires_ = Clock::now() + life;
            log::info("oauth2: key set from {}: {} signing keys, kept for {} s", *where, n,
                      std::chrono::duration_cast<std::chrono::seconds>(life).count());
            outcome = Fetch::Fetched;
        }
    }
    if (outcome == Fetch::Failed) {
        // The last good set stays; it is tried again after min_refresh.
        if (current_) expires_ = Clock::now() + min_refresh_;
        note(true, last_error_);
    } else {
        note(false, {});
    }
    last_fetch_ = outcome;
    in_flight_.reset();
    waiters->cancel();
    co_return outcome;
}

asio::awaitable<Result<std::string>> TokenCheck::jwks_location() {
    if (!jwks_url_.empty()) co_return jwks_url_;
    if (!discovered_.empty()) co_return discovered_;
    std::string url = discovery_url_;
    auto op = get(std::move(url), kMaxDiscoveryBody, nullptr);
    auto body = co_await std::move(op);
    if (!body) co_return fail(body.error().message);
    auto doc = json::parse_object(*body);
    if (!doc) co_return fail(discovery_url_ + ": " + doc.error().message);
    const std::string* uri = json::string_member(*doc, "jwks_uri");
    if (!uri || !(uri->starts_with("https://") || uri->starts_with("http://")))
        co_return fail(discovery_url_ + ": no http(s) \"jwks_uri\" in the discovery document");
    discovered_ = *uri;
    co_return discovered_;
}

asio::awaitable<Result<std::string>> TokenCheck::get(std::string url, std::size_t max_body,
                                                     std::string* cache_control) {
    http::Request r;
    r.url = url;
    r.method = "GET";
    r.headers = {"Accept: application/json"};
    r.ca_file = ca_file_;
    r.verify_peer = verify_cert_;
    r.timeout = timeout_;
    r.connect_timeout = timeout_;
    r.max_body = max_body;
    auto op = client_->perform(std::move(r));
    http::Response resp = co_await std::move(op);
    if (resp.outcome != http::Outcome::Ok)
        co_return fail(url + ": " + std::string(http::to_string(resp.outcome)) + ": " + resp.error);
    if (resp.status != 200) co_return fail(url + ": HTTP status " + std::to_string(resp.status));
    if (cache_control) *cache_control = std::move(resp.cache_control);
    co_return std::move(resp.body);
}

void TokenCheck::note(bool down, const std::string& why) {
    if (down == down_) return;
    down_ = down;
    if (down)
        log::error("oauth2: key set unavailable (the last good set stays in use): {}", log::safe(why, kMaxLoggedText));
    else
        log::info("oauth2: key set fetched again");
}

}  // namespace postern::auth
