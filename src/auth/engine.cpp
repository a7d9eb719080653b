// Passdb/userdb chains and shared authentication state.
#include "auth/engine.hpp"

#include <strings.h>

#include "auth/var_expand.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"

namespace postern::auth {

// Bound on kept login requests, so a login client cannot grow memory without
// limit by never redeeming.
constexpr std::size_t kMaxPendingLogins = 100000;

Engine::Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool)
    : cfg_(cfg), pool_(pool) {
    services_.executor = executor;
    services_.pool = &pool;
    // Not a coroutine itself: it hands back the member coroutine's awaitable.
    services_.passdb_lookup = [this](RequestPtr request) { return lookup_pass(std::move(request)); };
    for (const auto& name : cfg.mechanisms) {
        const auto* m = mech::find(name);
        mechs_.push_back(m);
        protocol::MechAdvert a;
        a.name = std::string(m->name);
        for (auto f : m->flags) a.flags.emplace_back(f);
        adverts_.push_back(std::move(a));
    }
    for (const auto& d : cfg.passdbs) passdbs_.push_back(backend::make_passdb(d.driver, d.settings, services_));
    for (const auto& d : cfg.userdbs) userdbs_.push_back(backend::make_userdb(d.driver, d.settings, services_));
}

const mech::MechInfo* Engine::enabled_mech(std::string_view name) const {
    for (const auto* m : mechs_)
        if (m->name.size() == name.size() && ::strncasecmp(m->name.data(), name.data(), name.size()) == 0) return m;
    return nullptr;
}

bool Engine::valid_name(std::string_view raw) const {
    if (raw.empty() || raw.size() > cfg_.max_username_length) return false;
    for (char c : raw) {
        const auto u = static_cast<unsigned char>(c);
        // Control bytes can never round-trip through Postfix or the log.
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

std::optional<std::string> Engine::normalize_user(std::string_view raw) const {
    if (!valid_name(raw)) return std::nullopt;
    if (cfg_.username_format == "%u") return std::string(raw);
    auto r = expand(cfg_.username_format, [raw](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return std::string(raw);
        if (n == "username") return user_part(raw);
        if (n == "domain") return domain_part(raw);
        return std::string();
    });
    if (!r || r->empty() || r->size() > cfg_.max_username_length) return std::nullopt;
    return *r;
}

asio::awaitable<backend::PassResult> Engine::verify_plain(RequestPtr request, Secret password) {
    using backend::PassStatus;
    backend::PassResult worst;
    worst.status = PassStatus::UnknownUser;
    bool temp = false;
    std::string temp_detail;
    for (auto& p : passdbs_) {
        backend::PassResult r = co_await p->verify_plain(request, password.clone());
        switch (r.status) {
            case PassStatus::Ok:
            case PassStatus::Disabled:
            case PassStatus::Expired:
                co_return r;
            case PassStatus::TempFail:
                temp = true;
                temp_detail = r.detail;
                log::warning("passdb {}: temporary failure: {}", p->driver(), log::safe(r.detail, 256));
                break;
            case PassStatus::Mismatch:
                worst = std::move(r);
                break;
            case PassStatus::UnknownUser:
            case PassStatus::SchemeUnavailable:
                break;
        }
    }
    if (temp) {
        backend::PassResult r;
        r.status = PassStatus::TempFail;
        r.detail = temp_detail;
        co_return r;
    }
    co_return worst;
}

asio::awaitable<backend::CredResult> Engine::lookup_credentials(RequestPtr request, std::string scheme) {
    using backend::PassStatus;
    backend::CredResult last;
    last.status = PassStatus::UnknownUser;
    bool temp = false;
    for (auto& p : passdbs_) {
        if (!p->can_lookup_credentials()) continue;
        backend::CredResult r = co_await p->lookup_credentials(request, scheme);
        if (r.status == PassStatus::Ok || r.status == PassStatus::Disabled || r.status == PassStatus::Expired)
            co_return r;
        if (r.status == PassStatus::TempFail) temp = true;
        else if (r.status == PassStatus::SchemeUnavailable) {
            log::warning("passdb {}: cannot serve {} credentials for user \"{}\": {}", p->driver(), scheme,
                         log::safe(request->user), log::safe(r.detail));
            last = std::move(r);
        }
    }
    if (temp) {
        backend::CredResult r;
        r.status = PassStatus::TempFail;
        co_return r;
    }
    co_return last;
}

asio::awaitable<backend::UserResult> Engine::lookup_user(RequestPtr request) {
    backend::UserResult last;
    last.status = backend::UserStatus::NotFound;
    bool temp = false;
    for (auto& u : userdbs_) {
        backend::UserResult r = co_await u->lookup_user(request);
        if (r.status == backend::UserStatus::Found) {
            // As in Dovecot, the passdb's userdb_* fields are the defaults a
            // userdb's own answer overrides.
            for (const auto& [k, v] : request->prefetch)
                if (!protocol::has_field(r.fields, k)) r.fields.emplace_back(k, v);
            co_return r;
        }
        if (r.status == backend::UserStatus::TempFail) {
            temp = true;
            log::warning("userdb {}: temporary failure: {}", u->driver(), log::safe(r.detail, 256));
        }
    }
    if (temp) last.status = backend::UserStatus::TempFail;
    co_return last;
}

asio::awaitable<backend::PassResult> Engine::lookup_pass(RequestPtr request) {
    using backend::PassStatus;
    backend::PassResult last;
    last.status = PassStatus::SchemeUnavailable;
    last.detail = "no passdb can look up a user without a password";
    bool temp = false;
    for (auto& p : passdbs_) {
        backend::PassResult r = co_await p->lookup(request);
        switch (r.status) {
            case PassStatus::Ok:
            case PassStatus::Disabled:
            case PassStatus::Expired:
                co_return r;
            case PassStatus::TempFail:
                temp = true;
                log::warning("passdb {}: temporary failure: {}", p->driver(), log::safe(r.detail, 256));
                break;
            case PassStatus::UnknownUser:
            case PassStatus::Mismatch:
                last.status = PassStatus::UnknownUser;
                last.detail.clear();
                break;
            case PassStatus::SchemeUnavailable:
                break;
        }
    }
    if (temp) {
        backend::PassResult r;
        r.status = PassStatus::TempFail;
        co_return r;
    }
    co_return last;
}

asio::awaitable<backend::IterStatus> Engine::iterate_users(backend::Userdb::IterSink each) {
    bool any = false;
    for (auto& u : userdbs_) {
        backend::IterStatus st = co_await u->iterate(each);
        if (st == backend::IterStatus::Unsupported) continue;
        any = true;
        if (st == backend::IterStatus::TempFail)
            log::warning("userdb {}: iteration failed", u->driver());
        if (st != backend::IterStatus::Done) co_return st;
    }
    co_return any ? backend::IterStatus::Done : backend::IterStatus::Unsupported;
}

void Engine::expire_logins() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = logins_.begin(); it != logins_.end();) {
        if (it->second.expires <= now) it = logins_.erase(it);
        else ++it;
    }
}

void Engine::remember_login(unsigned long cpid, std::uint32_t id, PendingLogin login) {
    if (logins_.size() >= kMaxPendingLogins) expire_logins();
    if (logins_.size() >= kMaxPendingLogins) return;
    // A successful login waits for its REQUEST as long as any request may
    // live (auth.request_timeout; Dovecot's MASTER_AUTH_SERVER_TIMEOUT_SECS
    // is the same 150 s default).
    login.expires = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(cfg_.request_timeout));
    logins_[{cpid, id}] = std::move(login);
}

std::optional<PendingLogin> Engine::redeem_login(unsigned long cpid, std::uint32_t id, std::string_view cookie) {
    auto it = logins_.find({cpid, id});
    if (it == logins_.end()) return std::nullopt;
    if (it->second.expires <= std::chrono::steady_clock::now()) {
        logins_.erase(it);
        return std::nullopt;
    }
    if (!ct_equal(it->second.cookie, cookie)) return std::nullopt;
    PendingLogin p = std::move(it->second);
    logins_.erase(it);
    return p;
}

void Engine::invalidate_backends() {
    for (auto& p : passdbs_) p->invalidate();
    for (auto& u : userdbs_) u->invalidate();
}

}  // namespace postern::auth
