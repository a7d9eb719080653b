// Passdb/userdb chains and shared authentication state.
#include "auth/engine.hpp"

#include <strings.h>

#include <fstream>
#include <sstream>

#include "auth/var_expand.hpp"
#include "password/scheme.hpp"
#include "protocol/mech/jwt.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"

namespace postern::auth {

// Bound on kept login requests, so a login client cannot grow memory without
// limit by never redeeming.
constexpr std::size_t kMaxPendingLogins = 100000;
// Dovecot's MASTER_AUTH_SERVER_TIMEOUT_SECS.
constexpr auto kPendingLoginTtl = std::chrono::seconds(150);

namespace {

std::string read_key_file(const config::Config& cfg, const config::OAuth2::Key& k) {
    std::ifstream in(k.file, std::ios::binary);
    if (!in) throw config::ConfigError(cfg.file, k.line, "oauth2.key.file", "cannot read " + k.file);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    // An HS256 secret file usually ends with a newline that is not part of it.
    if (k.alg == "HS256")
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

std::shared_ptr<const mech::MechSettings> make_mech_settings(const config::Config& cfg) {
    auto s = std::make_shared<mech::MechSettings>();
    s->anonymous_user = cfg.anonymous_user;
    s->digest_realms = cfg.realms;
    s->hostname = cfg.hostname;
    s->scram_max_iterations = password::CostLimits{}.max_pbkdf2_rounds;
    if (!cfg.oauth2.keys.empty()) {
        auto v = std::make_shared<mech::JwtValidator>();
        v->issuer = cfg.oauth2.issuer;
        v->audience = cfg.oauth2.audience;
        v->username_claim = cfg.oauth2.username_claim;
        v->leeway = static_cast<std::int64_t>(cfg.oauth2.leeway);
        for (const auto& k : cfg.oauth2.keys) {
            std::string material = read_key_file(cfg, k);
            auto key = mech::make_jwt_key(k.alg, k.kid, material);
            wipe(material);
            if (!key) throw config::ConfigError(cfg.file, k.line, "oauth2.key", k.file + ": " + key.error().message);
            v->keys.push_back(std::move(*key));
        }
        s->oauth2 = std::move(v);
    }
    return s;
}

}  // namespace

Engine::Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool)
    : cfg_(cfg), pool_(pool) {
    services_.executor = executor;
    services_.pool = &pool;
    for (const auto& d : cfg.passdbs) passdbs_.push_back(backend::make_passdb(d.driver, d.settings, services_));
    for (const auto& d : cfg.master_passdbs)
        master_passdbs_.push_back(backend::make_passdb(d.driver, d.settings, services_));
    mech_settings_ = make_mech_settings(cfg);
    bool can_lookup = false;
    for (const auto& p : passdbs_) can_lookup = can_lookup || p->can_lookup_credentials();
    for (const auto& name : cfg.mechanisms) {
        const auto* m = mech::find(name);
        if (!m->credentials_scheme.empty() && !can_lookup) {
            // Challenge-response needs a stored secret; verify-only passdbs
            // (PAM) cannot give one, so the mechanism is not offered at all.
            log::warning("mechanism {} not offered: no passdb can supply {} credentials", m->name,
                         m->credentials_scheme);
            continue;
        }
        mechs_.push_back(m);
        protocol::MechAdvert a;
        a.name = std::string(m->name);
        for (auto f : m->flags) a.flags.emplace_back(f);
        adverts_.push_back(std::move(a));
    }
    if (mechs_.empty()) throw config::ConfigError(cfg.file, 1, "auth.mechanisms", "none of the mechanisms can be offered");
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
    backend::PassResult r = co_await verify_chain(&passdbs_, std::move(request), std::move(password));
    co_return r;
}

asio::awaitable<backend::PassResult> Engine::verify_master(RequestPtr request, Secret password) {
    backend::PassResult r = co_await verify_chain(&master_passdbs_, std::move(request), std::move(password));
    co_return r;
}

asio::awaitable<backend::PassResult> Engine::verify_chain(std::vector<std::unique_ptr<backend::Passdb>>* chain,
                                                          RequestPtr request, Secret password) {
    using backend::PassStatus;
    backend::PassResult worst;
    worst.status = PassStatus::UnknownUser;
    bool temp = false;
    std::string temp_detail;
    for (auto& p : *chain) {
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
        if (r.status == backend::UserStatus::Found) co_return r;
        if (r.status == backend::UserStatus::TempFail) temp = true;
    }
    if (temp) last.status = backend::UserStatus::TempFail;
    co_return last;
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
    login.expires = std::chrono::steady_clock::now() + kPendingLoginTtl;
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
