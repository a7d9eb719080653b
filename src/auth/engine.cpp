// Passdb/userdb chains and shared authentication state.
#include "auth/engine.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <strings.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "auth/dovecot24_fields.hpp"
#include "util/encoding.hpp"
#include "util/var_expand.hpp"
#include "password/scheme.hpp"
#include "protocol/mech/jwt.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"

namespace postern::auth {

using util::domain_part;
using util::expand;
using util::user_part;

namespace {

std::shared_ptr<const mech::MechSettings> make_mech_settings(const config::Config& cfg) {
    auto s = std::make_shared<mech::MechSettings>();
    s->anonymous_user = cfg.anonymous_user;
    s->digest_realms = cfg.realms;
    s->hostname = cfg.hostname;
    s->scram_max_iterations = password::CostLimits{}.max_pbkdf2_rounds;
    s->oauth2 = cfg.oauth2.validator;
    s->oauth2_remote = cfg.oauth2.remote();
    return s;
}

}  // namespace

EngineState::EngineState(std::chrono::steady_clock::duration login_lifetime) : logins(login_lifetime) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
    randombytes_buf(digest_key, sizeof digest_key);
}

Engine::Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool)
    : cfg_(cfg), state_(std::make_shared<EngineState>(cfg.request_timeout)), pool_(pool),
      penalty_(std::make_shared<Penalty>(cfg.penalty)), logins_(state_->logins), rehashing_(state_->rehashing),
      weak_warned_(state_->weak_warned), metrics_(state_->metrics) {
    if (cfg.cache.enabled) cache_ = std::make_shared<AuthCache>(cfg.cache);
    if (cfg.cluster.enabled) cluster_ = std::make_shared<Cluster>(executor, cfg.cluster, cfg.penalty);
    build(std::move(executor), nullptr);
    attach_cluster();
}

Engine::Engine(std::shared_ptr<const config::Config> cfg, asio::any_io_executor executor, BlockingPool& pool,
               const Engine* previous)
    : owned_cfg_(std::move(cfg)), cfg_(*owned_cfg_),
      state_(previous ? previous->state_ : std::make_shared<EngineState>(cfg_.request_timeout)), pool_(pool),
      logins_(state_->logins), rehashing_(state_->rehashing), weak_warned_(state_->weak_warned),
      metrics_(state_->metrics) {
    // The penalty table carries over unless its settings changed (a new
    // prefix length or exempt list would misread the old groups).
    if (previous && previous->cfg_.penalty == cfg_.penalty) penalty_ = previous->penalty_;
    else penalty_ = std::make_shared<Penalty>(cfg_.penalty);
    if (cfg_.cluster.enabled) {
        if (previous && previous->cluster_ && previous->cfg_.cluster == cfg_.cluster &&
            previous->cfg_.penalty == cfg_.penalty)
            cluster_ = previous->cluster_;
        else
            cluster_ = std::make_shared<Cluster>(executor, cfg_.cluster, cfg_.penalty);
    }
    if (cfg_.cache.enabled) {
        if (previous && previous->cache_ && previous->cfg_.cache == cfg_.cache) {
            cache_ = previous->cache_;
            cache_taken_over_ = true;
        } else {
            cache_ = std::make_shared<AuthCache>(cfg_.cache);
        }
    }
    build(std::move(executor), previous);
    if (!previous) attach_cluster();  // else adopt() does, once this generation serves
}

void Engine::attach_cluster() {
    state_->cluster = cluster_;
    if (!cluster_) return;
    // The backends look at their data again at the next lookup (a
    // passwd-file is otherwise re-checked once a second), and the cache
    // drops the users' entries.
    std::vector<std::function<void()>> invalidate;
    for (const auto& p : passdbs_) invalidate.push_back([b = std::weak_ptr<backend::Passdb>(p)] {
        if (auto x = b.lock()) x->invalidate();
    });
    for (const auto& u : userdbs_) invalidate.push_back([b = std::weak_ptr<backend::Userdb>(u)] {
        if (auto x = b.lock()) x->invalidate();
    });
    cluster_->on_flush([cache = std::weak_ptr<AuthCache>(cache_), invalidate = std::move(invalidate)](
                           const std::vector<std::string>& users) {
        for (const auto& f : invalidate) f();
        if (auto c = cache.lock()) c->flush(users);
    });
    cluster_->on_state([st = state_](bool up) { st->metrics.cluster_up(up); });
    cluster_->on_count([st = state_](Cluster::Source s) { st->metrics.cluster_read(static_cast<int>(s)); },
                       [st = state_](bool sent) { st->metrics.cluster_invalidation(sent); });
}

void Engine::adopt(const Engine& previous) {
    attach_cluster();
    if (cache_taken_over_) cache_->flush({});
    // Backends kept from the previous generation look at their data again
    // at the next lookup, as a new one would read it.
    for (auto& invalidate : kept_) invalidate();
    kept_.clear();
    generation_ = previous.generation_ + 1;
    state_->generation = generation_;
}

namespace {

// The backend of `before` (built from `configured`) that a reload keeps for
// `d`: same driver, same settings, not taken yet; null when none. Only
// drivers whose settings are all in postern.conf are kept: pam (its worker
// processes were forked as root at start-up) and passwd-file (its table
// keeps serving while a re-read is blocked); the others may read files of
// their own (sql's args), so a reload builds them anew.
template <class Backend>
std::shared_ptr<Backend> kept_backend(const config::Driver& d, const std::vector<config::Driver>& configured,
                                      const std::vector<std::shared_ptr<Backend>>& before,
                                      const std::vector<std::shared_ptr<Backend>>& mine) {
    if (d.driver != "pam" && d.driver != "passwd-file") return nullptr;
    for (std::size_t i = 0; i < configured.size() && i < before.size(); ++i) {
        if (configured[i].driver != d.driver || !configured[i].settings.same_settings(d.settings)) continue;
        if (std::find(mine.begin(), mine.end(), before[i]) == mine.end()) return before[i];
    }
    return nullptr;
}

}  // namespace

template <class Backend, class Make>
void Engine::add_backend(std::vector<std::shared_ptr<Backend>>& chain, const config::Driver& d,
                         const std::vector<config::Driver>* configured,
                         const std::vector<std::shared_ptr<Backend>>* before, Make make) {
    if (before) {
        if (auto b = kept_backend(d, *configured, *before, chain)) {
            chain.push_back(std::move(b));
            kept_.push_back([b = chain.back().get()] { b->invalidate(); });
            return;
        }
        if (d.driver == "pam")
            throw config::ConfigError(cfg_.file, d.settings.line(), d.settings.path() + ".driver",
                                      "a pam passdb cannot be added or changed by a reload (its worker processes "
                                      "are started as root at start-up): restart posternd");
    }
    chain.push_back(make(d));
}

asio::awaitable<backend::oauth2::TokenAnswer> Engine::verify_token(Secret token) {
    if (!token_check_) {
        backend::oauth2::TokenAnswer none;
        none.why = "no [oauth2] network check configured";
        co_return none;
    }
    // The check lives as long as this generation; a request holds its generation.
    auto check = token_check_;
    backend::oauth2::TokenAnswer a = co_await check->check(std::move(token));
    co_return a;
}

void Engine::build(asio::any_io_executor executor, const Engine* previous) {
    const config::Config& cfg = cfg_;
    BlockingPool& pool = pool_;
    services_.executor = executor;
    services_.pool = &pool;
    // Not a coroutine itself: it hands back the member coroutine's awaitable.
    services_.passdb_lookup = [this](RequestPtr request) { return lookup_pass(std::move(request)); };
    // Through the state, which outlives this generation: a backend kept by
    // a reload tells the cluster of the generation serving then.
    if (cfg_.cluster.enabled)
        services_.data_changed = [st = std::weak_ptr<EngineState>(state_)](const std::vector<std::string>& users) {
            if (auto s = st.lock())
                if (auto c = s->cluster.lock()) c->publish_flush(users);
        };
    auto make_passdb = [this](const config::Driver& d) {
        return std::shared_ptr<backend::Passdb>(backend::make_passdb(d.driver, d.settings, services_));
    };
    const config::Config* before = previous ? &previous->cfg_ : nullptr;
    for (const auto& d : cfg.passdbs)
        add_backend(passdbs_, d, before ? &before->passdbs : nullptr, previous ? &previous->passdbs_ : nullptr,
                    make_passdb);
    for (const auto& d : cfg.master_passdbs)
        add_backend(master_passdbs_, d, before ? &before->master_passdbs : nullptr,
                    previous ? &previous->master_passdbs_ : nullptr, make_passdb);
    mech_settings_ = make_mech_settings(cfg);
    if (cfg.oauth2.remote()) token_check_ = std::make_shared<TokenCheck>(cfg.oauth2, executor);
    if (!master_passdbs_.empty() && !can_lookup_users())
        log::warning("master passdb: master-user logins will be refused: no [[passdb]] can look up a target user "
                     "without a password (pam cannot)");
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
    auto make_userdb = [this](const config::Driver& d) {
        return std::shared_ptr<backend::Userdb>(backend::make_userdb(d.driver, d.settings, services_));
    };
    for (const auto& d : cfg.userdbs)
        add_backend(userdbs_, d, before ? &before->userdbs : nullptr, previous ? &previous->userdbs_ : nullptr,
                    make_userdb);
    untranslated_warned_.resize(userdbs_.size());
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
    // The two formats nearly every configuration has, without the expander's
    // copies: one string per login.
    if (cfg_.username_format == "%u") return std::string(raw);
    if (cfg_.username_format == "%Lu") return lowercase(raw);
    auto r = expand(cfg_.username_format, [raw](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return std::string(raw);
        if (n == "username") return user_part(raw);
        if (n == "domain") return domain_part(raw);
        return std::string();
    });
    if (!r || r->empty() || r->size() > cfg_.max_username_length) return std::nullopt;
    return *r;
}

static_assert(sizeof(EngineState::digest_key) == crypto_shorthash_siphashx24_KEYBYTES);

std::string Engine::password_digest(std::string_view password) const {
    // SipHash (a keyed PRF, 128-bit output): computed for every password
    // tried, so it must cost next to nothing beside a PLAIN login.
    unsigned char out[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(out, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                                state_->digest_key);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

namespace {

// Cache key and data generation of a backend chain: every backend's inputs
// and generations, since any of them may be the one that answers.
template <class Backends>
asio::awaitable<Engine::CacheState> chain_state(Backends& backends, RequestPtr request) {
    Engine::CacheState st;
    for (auto& b : backends) {
        const std::uint64_t g = co_await b->generation();
        st.generation = st.generation * 1000003u + g;
        st.key += b->cache_key(*request);
    }
    co_return st;
}

}  // namespace

asio::awaitable<Engine::CacheState> Engine::passdb_cache_state(RequestPtr request) {
    CacheState st = co_await chain_state(passdbs_, request);
    co_return st;
}

asio::awaitable<Engine::CacheState> Engine::userdb_cache_state(RequestPtr request) {
    CacheState st = co_await chain_state(userdbs_, request);
    // Userdb answers also depend on the passdb's prefetched fields, and on
    // the passdbs themselves (static userdbs ask them whether a user exists).
    CacheKey extra;
    extra.add(request->passdb_checked ? "checked" : "-");
    for (const auto& [k, v] : request->prefetch) extra.add(k).add(v);
    st.key += extra.str();
    CacheState pass = co_await chain_state(passdbs_, request);
    st.generation = st.generation * 1000003u + pass.generation;
    co_return st;
}

std::size_t Engine::flush_cache(const std::vector<std::string>& users) {
    if (cluster_) cluster_->publish_flush(users);
    return cache_ ? cache_->flush(users) : 0;
}

asio::awaitable<Cluster::Verdict> Engine::penalty_check(std::string group, Cluster::Keys keys) {
    if (cluster_) {
        // The cluster lives as long as this call (a reload may drop it meanwhile).
        auto cluster = cluster_;
        std::optional<Cluster::Verdict> shared = co_await cluster->check(std::move(keys));
        if (shared) co_return std::move(*shared);
    }
    co_return local_penalty(group);
}

Cluster::Verdict Engine::local_penalty(const std::string& group) const {
    Cluster::Verdict v;
    v.delay = penalty_->delay(group);
    if (v.delay > Cluster::Duration::zero()) v.rule = "address";
    return v;
}

void Engine::penalty_failure(const std::string& group, const Cluster::Keys& keys, std::string_view password_digest,
                             std::string_view shared_digest) {
    penalty_->failure(group, password_digest);
    if (cluster_) cluster_->failure(keys, shared_digest);
}

void Engine::penalty_success(const std::string& group, const Cluster::Keys& keys) {
    penalty_->success(group);
    if (cluster_) cluster_->success(keys);
}

namespace {

// What one backend's answer means to its chain.
enum class Link {
    Answer,    // this is the chain's answer
    TempFail,  // remember that the chain could not be sure; ask the next
    Keep,      // the best "no" so far: keep it as the answer if nobody says more
    Next,      // no opinion; ask the next
};

void set_temp_fail(backend::PassResult& r) { r.status = backend::PassStatus::TempFail; }
void set_temp_fail(backend::CredResult& r) { r.status = backend::PassStatus::TempFail; }
void set_temp_fail(backend::UserResult& r) { r.status = backend::UserStatus::TempFail; }

// The one way a chain of passdbs or userdbs is asked: in order, until one
// answers. A backend that failed temporarily makes the chain's answer a
// temporary failure unless a later one answers, never a "no": a user it
// might know must not look unknown. `applies(b)` filters the backends that
// can take the question, `ask(b, i)` starts it, `link(r)` classifies the
// answer; `none` is the answer when nobody has one.
std::string_view result_label(const backend::PassResult& r) { return backend::to_string(r.status); }
std::string_view result_label(const backend::CredResult& r) { return backend::to_string(r.status); }
std::string_view result_label(const backend::UserResult& r) {
    switch (r.status) {
        case backend::UserStatus::Found: return "found";
        case backend::UserStatus::NotFound: return "not_found";
        case backend::UserStatus::TempFail: return "temp_fail";
    }
    return "?";
}

template <class Result, class Ptr, class Applies, class Ask, class Classify>
asio::awaitable<Result> ask_chain(std::vector<Ptr>& chain, const char* kind, Applies applies,
                                  Ask ask, Classify link, Result none, Metrics* metrics, const char* op) {
    Result kept = std::move(none);
    bool temp = false;
    std::string temp_detail;
    for (std::size_t i = 0; i < chain.size(); ++i) {
        auto& b = *chain[i];
        if (!applies(b)) continue;
        const auto asked = std::chrono::steady_clock::now();
        Result r = co_await ask(b, i);
        // Counted before link() may rewrite the status for the chain.
        metrics->lookup(kind, b.driver(), op, result_label(r), std::chrono::steady_clock::now() - asked);
        switch (link(r, b)) {
            case Link::Answer:
                co_return r;
            case Link::TempFail:
                temp = true;
                temp_detail = r.detail;
                log::warning("{} {}: temporary failure: {}", kind, b.driver(), log::safe(r.detail, 256));
                break;
            case Link::Keep:
                kept = std::move(r);
                break;
            case Link::Next:
                break;
        }
    }
    if (!temp) co_return kept;
    Result r;
    set_temp_fail(r);
    r.detail = std::move(temp_detail);
    co_return r;
}

bool every_backend(const auto&) { return true; }

}  // namespace

asio::awaitable<backend::PassResult> Engine::verify_plain(RequestPtr request, Secret password) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
    using backend::PassStatus;
    CacheState cs;
    if (cache_) {
        cs = co_await passdb_cache_state(request);
        if (auto hit = cache_->find_verified(cs.key, cs.generation, password.view(), false)) {
            log::debug("auth: cache hit: verified password of user \"{}\"", log::safe(request->user));
            co_return std::move(*hit);
        }
    }
    backend::PassResult r = co_await verify_chain(&passdbs_, request, password.clone(), &metrics_);
    // The stored value (compare-and-set for a rehash) is never cached.
    std::string verified = std::move(r.stored);
    r.stored.clear();
    if (r.status == PassStatus::Ok && r.weak && !weak_scheme_allowed(*request, r)) {
        r.status = PassStatus::Mismatch;
        r.detail = "weak password scheme refused";
        wipe(verified);
        co_return r;
    }
    if (cache_) {
        if (r.status == PassStatus::Ok) {
            cache_->store_verified(cs.key, cs.generation, password.view(), r, request->user);
        } else if (r.status == PassStatus::TempFail && cache_->settings().serve_stale) {
            if (auto stale = cache_->find_verified(cs.key, cs.generation, password.view(), true)) {
                log::warning("auth: passdb unavailable; answering user \"{}\" from a stale cache entry",
                             log::safe(request->user));
                co_return std::move(*stale);
            }
        }
    }
    if (r.status == PassStatus::Ok) maybe_rehash(request, r, password.view(), std::move(verified));
    co_return r;
}

bool Engine::rehash_possible(const backend::PassResult& result) const {
    return !cfg_.rehash_scheme.empty() && result.source >= 0 &&
           passdbs_[static_cast<std::size_t>(result.source)]->can_update_password();
}

bool Engine::weak_scheme_allowed(const RequestInfo& request, const backend::PassResult& result) {
    using WS = config::Config::WeakSchemes;
    const std::string scheme = result.scheme.empty() ? std::string("?") : result.scheme;
    switch (cfg_.weak_schemes) {
        case WS::Allow:
            return true;
        case WS::Warn: {
            // Once per user per hour: a busy account does not flood the log.
            const auto now = std::chrono::steady_clock::now();
            if (weak_warned_.size() > kMaxWeakWarned) {
                for (auto it = weak_warned_.begin(); it != weak_warned_.end();)
                    it = now - it->second >= std::chrono::hours(1) ? weak_warned_.erase(it) : std::next(it);
                if (weak_warned_.size() > kMaxWeakWarned) weak_warned_.clear();
            }
            auto [it, fresh] = weak_warned_.try_emplace(request.user, now);
            if (fresh || now - it->second >= std::chrono::hours(1)) {
                it->second = now;
                log::warning("auth: user \"{}\" logged in with a weak password scheme ({}){}", log::safe(request.user),
                             scheme, rehash_possible(result) ? "; it is rehashed now" : "");
            }
            return true;
        }
        case WS::Refuse:
            if (rehash_possible(result)) {
                log::info("auth: user \"{}\": weak password scheme {} accepted once to be rehashed to {}",
                          log::safe(request.user), scheme, cfg_.rehash_scheme);
                return true;
            }
            log::warning("auth: user \"{}\": weak password scheme {} refused (weak_schemes = \"refuse\")",
                         log::safe(request.user), scheme);
            return false;
    }
    return true;
}

// Master logins are not cached: they are rare, and their answers belong to
// a different chain.
asio::awaitable<backend::PassResult> Engine::verify_master(RequestPtr request, Secret password) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
    backend::PassResult r = co_await verify_chain(&master_passdbs_, std::move(request), std::move(password), &metrics_);
    r.source = -1;  // never rehashed through the normal chain
    wipe(r.stored);
    co_return r;
}

asio::awaitable<backend::PassResult> Engine::verify_chain(std::vector<std::shared_ptr<backend::Passdb>>* chain,
                                                          RequestPtr request, Secret password, Metrics* metrics) {
    using backend::PassStatus;
    auto ask = [&request, &password](backend::Passdb& p, std::size_t) { return p.verify_plain(request, password.clone()); };
    std::size_t index = 0;
    auto link = [&index](backend::PassResult& r, backend::Passdb&) {
        r.source = static_cast<int>(index++);
        switch (r.status) {
            case PassStatus::Ok:
            case PassStatus::Disabled:
            case PassStatus::Expired: return Link::Answer;
            case PassStatus::TempFail: return Link::TempFail;
            case PassStatus::Mismatch: return Link::Keep;
            case PassStatus::UnknownUser:
            case PassStatus::SchemeUnavailable: return Link::Next;
        }
        return Link::Next;
    };
    auto none = backend::PassResult::unknown_user();
    backend::PassResult r = co_await ask_chain(*chain, "passdb", every_backend<backend::Passdb>, ask, link, std::move(none),
                                                  metrics, "verify");
    co_return r;
}

asio::awaitable<backend::CredResult> Engine::lookup_credentials(RequestPtr request, std::string scheme) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
    if (!cache_) {
        backend::CredResult direct = co_await lookup_credentials_chain(request, std::move(scheme));
        co_return direct;
    }
    CacheState cs = co_await passdb_cache_state(request);
    CacheKey key;
    key.add(scheme).add(cs.key);
    if (auto hit = cache_->find_credentials(key.str(), cs.generation)) {
        log::debug("auth: cache hit: {} credentials of user \"{}\"", scheme, log::safe(request->user));
        co_return std::move(*hit);
    }
    backend::CredResult r = co_await lookup_credentials_chain(request, scheme);
    cache_->store_credentials(key.str(), cs.generation, r, request->user);
    co_return r;
}

asio::awaitable<backend::CredResult> Engine::lookup_credentials_chain(RequestPtr request, std::string scheme) {
    using backend::PassStatus;
    auto applies = [](const backend::Passdb& p) { return p.can_lookup_credentials(); };
    auto ask = [&request, &scheme](backend::Passdb& p, std::size_t) { return p.lookup_credentials(request, scheme); };
    auto link = [&request, &scheme](backend::CredResult& r, backend::Passdb& p) {
        switch (r.status) {
            case PassStatus::Ok:
            case PassStatus::Disabled:
            case PassStatus::Expired: return Link::Answer;
            case PassStatus::TempFail: return Link::TempFail;
            case PassStatus::SchemeUnavailable:
                log::warning("passdb {}: cannot serve {} credentials for user \"{}\": {}", p.driver(), scheme,
                             log::safe(request->user), log::safe(r.detail));
                return Link::Keep;
            case PassStatus::UnknownUser:
            case PassStatus::Mismatch: return Link::Next;
        }
        return Link::Next;
    };
    auto none = backend::CredResult::of(PassStatus::UnknownUser);
    backend::CredResult r = co_await ask_chain(passdbs_, "passdb", applies, ask, link, std::move(none), &metrics_,
                                                  "credentials");
    co_return r;
}

asio::awaitable<backend::UserResult> Engine::lookup_user(RequestPtr request) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
    if (!cache_) {
        backend::UserResult direct = co_await lookup_user_chain(request);
        co_return direct;
    }
    CacheState cs = co_await userdb_cache_state(request);
    if (auto hit = cache_->find_user(cs.key, cs.generation)) {
        log::debug("auth: cache hit: userdb fields of user \"{}\"", log::safe(request->user));
        co_return std::move(*hit);
    }
    backend::UserResult r = co_await lookup_user_chain(request);
    cache_->store_user(cs.key, cs.generation, r, request->user);
    co_return r;
}

asio::awaitable<backend::UserResult> Engine::lookup_user_chain(RequestPtr request) {
    std::size_t asked = 0;  // the userdb whose answer link() sees
    auto ask = [&request, &asked](backend::Userdb& u, std::size_t i) {
        asked = i;
        return u.lookup_user(request);
    };
    auto link = [this, &request, &asked](backend::UserResult& r, backend::Userdb&) {
        switch (r.status) {
            case backend::UserStatus::Found:
                // As in Dovecot, the passdb's userdb_* fields are the defaults a
                // userdb's own answer overrides.
                for (const auto& [k, v] : request->prefetch)
                    if (!has_field(r.fields, k)) r.fields.emplace_back(k, v);
                if (cfg_.userdbs[asked].field_names == config::Driver::FieldNames::Dovecot24)
                    translate_for_24(r, asked);
                return Link::Answer;
            case backend::UserStatus::TempFail: return Link::TempFail;
            case backend::UserStatus::NotFound: return Link::Next;
        }
        return Link::Next;
    };
    auto none = backend::UserResult::not_found();
    backend::UserResult r = co_await ask_chain(userdbs_, "userdb", every_backend<backend::Userdb>, ask, link,
                                                  std::move(none), &metrics_, "user");
    co_return r;
}

void Engine::translate_for_24(backend::UserResult& r, std::size_t userdb) {
    Translated24 t = translate_fields_24(r.fields);
    r.fields = std::move(t.fields);
    auto& warned = untranslated_warned_[userdb];
    for (const auto& s : t.skipped) {
        // Once per userdb and field name (names come from the data: bounded).
        if (warned.size() >= kMaxUntranslatedWarned || !warned.insert(s.name).second) continue;
        log::warning("userdb {} (userdb[{}]): field \"{}\" has no Dovecot 2.4 name, passed on unchanged: {}",
                     userdbs_[userdb]->driver(), userdb, log::safe(s.name, 64), s.reason);
    }
}

namespace {

// Appends one line to a file (created 0640 if missing); "" or the error.
std::string append_line(const std::string& path, const std::string& line) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return std::strerror(errno);
    const ssize_t n = ::write(fd, line.data(), line.size());
    const int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size())) return n < 0 ? std::strerror(err) : "short write";
    return {};
}

}  // namespace

void Engine::maybe_rehash(RequestPtr request, const backend::PassResult& result, std::string_view password,
                          std::string verified) {
    // A weak stored scheme is always worth a rehash; otherwise only one that
    // ranks below the target.
    if (!rehash_possible(result) || result.scheme.empty()) return wipe(verified);
    if (!result.weak && password::strength(result.scheme) >= password::strength(cfg_.rehash_scheme)) return wipe(verified);
    if (!rehashing_.insert(request->user).second) return wipe(verified);  // one at a time per user
    asio::co_spawn(services_.executor,
                   rehash(request, result.scheme, Secret(std::string(password)), result.source, Secret(std::move(verified))),
                   [this, self = weak_from_this().lock(), user = request->user](std::exception_ptr e) {
                       rehashing_.erase(user);
                       if (e) log::error("auth: rehash of user \"{}\" failed unexpectedly", log::safe(user));
                   });
}

asio::awaitable<void> Engine::rehash(RequestPtr request, std::string old_scheme, Secret password, int source,
                                     Secret verified) {
    auto job = [scheme = cfg_.rehash_scheme, pw = std::move(password)]() {
        return password::generate(scheme, pw.view());
    };
    auto made = co_await run_blocking(pool_, std::move(job));
    if (!made || !*made) {
        log::warning("auth: rehash of user \"{}\" skipped: hashing unavailable", log::safe(request->user));
        co_return;
    }
    std::string stored = std::move(**made);
    const bool ok = co_await passdbs_[static_cast<std::size_t>(source)]->update_password(
        request, std::move(stored), std::string(verified.view()));
    if (!ok) {
        log::warning("auth: rehash of user \"{}\" from {} to {} not written; the old hash stays (tried again at "
                     "the next login)", log::safe(request->user), old_scheme, cfg_.rehash_scheme);
        co_return;
    }
    log::info("auth: rehashed user \"{}\" from {} to {}", log::safe(request->user), old_scheme, cfg_.rehash_scheme);
    // Other instances' caches may hold the old hash's credentials.
    if (cluster_) cluster_->publish_flush({request->user});
    if (cfg_.rehash_log.empty()) co_return;
    // One line per upgrade for `postern user audit --since` (user names
    // never hold tabs or control bytes: valid_name). File I/O: on the pool.
    auto append = [path = cfg_.rehash_log,
                   line = std::to_string(std::time(nullptr)) + "\t" + request->user + "\t" + old_scheme + "\t" +
                          cfg_.rehash_scheme + "\n"]() { return append_line(path, line); };
    auto written = co_await run_blocking(pool_, std::move(append));
    if (!written || !written->empty())
        log::warning("auth: rehash_log {}: {}", log::safe(cfg_.rehash_log),
                     written ? log::safe(*written) : std::string("hashing pool queue full"));
}

asio::awaitable<backend::PassResult> Engine::lookup_pass(RequestPtr request) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
    using backend::PassStatus;
    auto ask = [&request](backend::Passdb& p, std::size_t) { return p.lookup(request); };
    auto link = [](backend::PassResult& r, backend::Passdb&) {
        switch (r.status) {
            case PassStatus::Ok:
            case PassStatus::Disabled:
            case PassStatus::Expired: return Link::Answer;
            case PassStatus::TempFail: return Link::TempFail;
            case PassStatus::UnknownUser:
            case PassStatus::Mismatch:
                r.status = PassStatus::UnknownUser;
                r.detail.clear();
                return Link::Keep;
            case PassStatus::SchemeUnavailable: return Link::Next;
        }
        return Link::Next;
    };
    auto none = backend::PassResult::unavailable("no passdb can look up a user without a password");
    backend::PassResult r = co_await ask_chain(passdbs_, "passdb", every_backend<backend::Passdb>, ask, link,
                                                  std::move(none), &metrics_, "lookup");
    co_return r;
}

asio::awaitable<backend::IterStatus> Engine::iterate_users(backend::Userdb::IterSink each) {
    // A reload may retire this generation meanwhile: it lives until this call is over.
    const auto self = weak_from_this().lock();
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

void Engine::invalidate_backends() {
    for (auto& p : passdbs_) p->invalidate();
    for (auto& u : userdbs_) u->invalidate();
}

}  // namespace postern::auth
