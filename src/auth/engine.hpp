// Engine: the authentication state built from one configuration (one
// generation) — the configured mechanisms, the passdb and userdb chains, the
// cache and penalty settings — plus the EngineState every generation shares:
// the login-socket logins awaiting a master REQUEST, connection ids, the
// metrics, the password-digest key. A reload (SIGHUP) builds a new Engine
// from the previous one and puts it in the CurrentEngine; requests already
// running keep theirs (each holds a shared_ptr), so an old generation lives
// until its last request is over. Lives on the event loop thread; no locking.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "auth/cache.hpp"
#include "auth/cluster.hpp"
#include "auth/metrics.hpp"
#include "auth/pending_logins.hpp"
#include "auth/penalty.hpp"
#include "auth/request_info.hpp"
#include "auth/token_check.hpp"
#include "backends/backend.hpp"
#include "config/config.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/blocking_pool.hpp"

namespace postern::auth {

// What every generation of the engine shares: runtime state that a reload
// keeps.
struct EngineState {
    explicit EngineState(std::chrono::steady_clock::duration login_lifetime);
    PendingLogins logins;
    unsigned long cuid = 0;
    unsigned char digest_key[16];  // a SipHash key
    // The cluster of the generation serving now (none without [cluster]).
    std::weak_ptr<Cluster> cluster;
    std::map<std::string, std::chrono::steady_clock::time_point> weak_warned;
    std::set<std::string> rehashing;
    Metrics metrics;
    std::uint64_t generation = 1;  // 1 at start, +1 per successful reload
};

class Engine : public std::enable_shared_from_this<Engine> {
public:
    // Builds the backends; throws config::ConfigError on bad driver settings.
    // cfg must outlive the engine.
    Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool);
    // A generation that owns its configuration. With `previous`, the shared
    // state is taken over, and so are the penalty table and the cache
    // object when their settings did not change (the cache is emptied by
    // adopt(): its entries are answers of the previous backends).
    Engine(std::shared_ptr<const config::Config> cfg, asio::any_io_executor executor, BlockingPool& pool,
           const Engine* previous = nullptr);
    // Called once this generation replaces `previous` (nothing can fail any
    // more): empties a cache taken over, counts the generation.
    void adopt(const Engine& previous);
    std::uint64_t generation() const { return generation_; }

    const config::Config& config() const { return cfg_; }
    const std::vector<protocol::MechAdvert>& adverts() const { return adverts_; }
    // The enabled mechanism with this name (case-insensitive), or nullptr.
    const mech::MechInfo* enabled_mech(std::string_view name) const;
    BlockingPool& pool() { return pool_; }

    // Normalises a client-supplied login name (username_format) after
    // validating it; nullopt if the name can never be a valid user (control
    // characters, too long, empty). The caller answers such names exactly like
    // an unknown user.
    std::optional<std::string> normalize_user(std::string_view raw) const;
    // The validation half of normalize_user: non-empty, within the length
    // limit, no control bytes.
    bool valid_name(std::string_view raw) const;

    asio::awaitable<backend::PassResult> verify_plain(RequestPtr request, Secret password);
    // Master users: `request->user` is the master's name, checked against the
    // [[master_passdb]] chain only. The caller then logs in as the target.
    asio::awaitable<backend::PassResult> verify_master(RequestPtr request, Secret password);
    bool has_master_passdb() const { return !master_passdbs_.empty(); }
    // Whether some passdb can look a user up without a password (lookup_pass).
    bool can_lookup_users() const {
        for (const auto& p : passdbs_)
            if (p->can_lookup()) return true;
        return false;
    }
    // Settings handed to every mechanism (built once from the configuration).
    const std::shared_ptr<const mech::MechSettings>& mech_settings() const { return mech_settings_; }
    asio::awaitable<backend::CredResult> lookup_credentials(RequestPtr request, std::string scheme);
    // OAUTHBEARER / XOAUTH2 with [oauth2] network checks: what the provider
    // says about a bearer token (TempFail when no network check is set up).
    asio::awaitable<backend::oauth2::TokenAnswer> verify_token(Secret token);
    // Userdb chain: the first userdb that finds the user answers; the
    // request's prefetched passdb userdb_* fields fill in what it leaves out.
    asio::awaitable<backend::UserResult> lookup_user(RequestPtr request);
    // Passdb chain without a password (auth-master PASS): Ok, UnknownUser,
    // Disabled, Expired, TempFail, or SchemeUnavailable when no passdb can
    // answer such lookups.
    asio::awaitable<backend::PassResult> lookup_pass(RequestPtr request);
    // Every userdb that can iterate, in order (auth-master LIST): Done,
    // Stopped (the sink said stop), TempFail, or Unsupported when none can.
    asio::awaitable<backend::IterStatus> iterate_users(backend::Userdb::IterSink each);

    // Login-socket logins awaiting their REQUEST, and live login pids.
    PendingLogins& logins() { return logins_; }

    void invalidate_backends();

    struct CacheState {
        std::string key;
        std::uint64_t generation = 0;
    };
    // The authentication cache (null when [cache] is off).
    AuthCache* cache() { return cache_.get(); }
    // Drops the cached entries of these users (all when empty); returns how many.
    std::size_t flush_cache(const std::vector<std::string>& users);

    // Per-IP penalty: `group` from penalty_group(); empty means none applies.
    std::string penalty_group(std::string_view ip) const { return penalty_->group_of(ip); }
    // The local per-address rule alone (no [cluster], or Redis away).
    Cluster::Verdict local_penalty(const std::string& group) const;
    // The wait of a request from address group `group` (`keys`: its
    // cluster()->keys_of(), with the normalized account name, "" unknown):
    // shared through [cluster] while Redis answers, else the local
    // per-address rule. rule: "address", "network", "account" or "" (no wait).
    asio::awaitable<Cluster::Verdict> penalty_check(std::string group, Cluster::Keys keys);
    // A failure or success counted locally and, with [cluster], shared
    // (`keys` unused without it). shared_digest: shared_password_digest() of
    // the password ("" unknown).
    void penalty_failure(const std::string& group, const Cluster::Keys& keys, std::string_view password_digest,
                         std::string_view shared_digest);
    void penalty_success(const std::string& group, const Cluster::Keys& keys);
    // The password digest of the shared same-password rule ("" without [cluster]).
    std::string shared_password_digest(std::string_view password) const {
        return cluster_ ? cluster_->digest(password) : std::string();
    }
    Cluster* cluster() { return cluster_.get(); }
    // Addresses (networks) the penalty remembers now.
    std::size_t penalty_tracked() const { return penalty_->size(); }
    // Counters and histograms of the [metrics] endpoint (kept also without it).
    Metrics& metrics() { return metrics_; }
    // A keyed hash of a password (random key per process, never stored),
    // for recognising a repeated wrong password without keeping it.
    std::string password_digest(std::string_view password) const;

    unsigned long next_cuid() { return ++state_->cuid; }

private:
    asio::awaitable<CacheState> passdb_cache_state(RequestPtr request);
    asio::awaitable<backend::CredResult> lookup_credentials_chain(RequestPtr request, std::string scheme);
    asio::awaitable<backend::UserResult> lookup_user_chain(RequestPtr request);
    asio::awaitable<CacheState> userdb_cache_state(RequestPtr request);
    // [[userdb]] translate_fields = "dovecot24": the found user's fields
    // under Dovecot 2.4's names; what has no 2.4 name is logged once per
    // userdb and field name.
    void translate_for_24(backend::UserResult& r, std::size_t userdb);
    std::vector<std::set<std::string>> untranslated_warned_;  // per userdb
    static constexpr std::size_t kMaxUntranslatedWarned = 64;
    void maybe_rehash(RequestPtr request, const backend::PassResult& result, std::string_view password,
                      std::string verified);
    asio::awaitable<void> rehash(RequestPtr request, std::string old_scheme, Secret password, int source,
                                 Secret verified);
    // Whether the passdb that answered can take a rehash to rehash_scheme.
    bool rehash_possible(const backend::PassResult& result) const;
    // The [auth] weak_schemes policy for a successful login with a weak
    // stored scheme: true lets it in (logging as configured).
    bool weak_scheme_allowed(const RequestInfo& request, const backend::PassResult& result);
    static constexpr std::size_t kMaxWeakWarned = 100000;
    static asio::awaitable<backend::PassResult> verify_chain(std::vector<std::shared_ptr<backend::Passdb>>* chain,
                                                             RequestPtr request, Secret password, Metrics* metrics);
    void build(asio::any_io_executor executor, const Engine* previous);
    // Appends d's backend to chain: the previous generation's when a reload
    // may keep it (kept_backend in engine.cpp), else make(d).
    template <class Backend, class Make>
    void add_backend(std::vector<std::shared_ptr<Backend>>& chain, const config::Driver& d,
                     const std::vector<config::Driver>* configured,
                     const std::vector<std::shared_ptr<Backend>>* before, Make make);
    std::vector<std::function<void()>> kept_;  // invalidate() of the backends taken over (adopt())
    std::shared_ptr<const config::Config> owned_cfg_;  // null when the caller owns it
    const config::Config& cfg_;
    std::shared_ptr<EngineState> state_;
    BlockingPool& pool_;
    backend::Services services_;
    std::vector<const mech::MechInfo*> mechs_;
    std::vector<protocol::MechAdvert> adverts_;
    std::vector<std::shared_ptr<backend::Passdb>> passdbs_;
    std::vector<std::shared_ptr<backend::Passdb>> master_passdbs_;
    std::shared_ptr<const mech::MechSettings> mech_settings_;
    std::shared_ptr<TokenCheck> token_check_;  // null without [oauth2] network checks
    std::vector<std::shared_ptr<backend::Userdb>> userdbs_;
    std::shared_ptr<AuthCache> cache_;
    std::shared_ptr<Penalty> penalty_;
    std::shared_ptr<Cluster> cluster_;  // null without [cluster]
    void attach_cluster();              // the cluster's invalidations go to this generation's cache
    std::uint64_t generation_ = 1;
    bool cache_taken_over_ = false;
    // Shorthands for the shared state.
    PendingLogins& logins_;
    std::set<std::string>& rehashing_;
    std::map<std::string, std::chrono::steady_clock::time_point>& weak_warned_;
    Metrics& metrics_;
};

// The engine new requests and connections use now: a reload replaces it.
// Loop thread only.
class CurrentEngine {
public:
    explicit CurrentEngine(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
    Engine* operator->() const { return engine_.get(); }
    Engine& operator*() const { return *engine_; }
    const std::shared_ptr<Engine>& get() const { return engine_; }
    void replace(std::shared_ptr<Engine> engine) { engine_ = std::move(engine); }

private:
    std::shared_ptr<Engine> engine_;
};

}  // namespace postern::auth
