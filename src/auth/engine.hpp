// Engine: the daemon-wide authentication state shared by every connection —
// the configured mechanisms, the passdb and userdb chains, the hashing pool,
// the cache and penalty, and the login-socket logins awaiting a master REQUEST.
// Lives on the event loop thread; no locking.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "auth/cache.hpp"
#include "auth/metrics.hpp"
#include "auth/pending_logins.hpp"
#include "auth/penalty.hpp"
#include "auth/request_info.hpp"
#include "backends/backend.hpp"
#include "config/config.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/blocking_pool.hpp"

namespace postern::auth {

class Engine {
public:
    // Builds the backends; throws config::ConfigError on bad driver settings.
    Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool);

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
    std::string penalty_group(std::string_view ip) const { return penalty_.group_of(ip); }
    std::chrono::steady_clock::duration penalty_delay(const std::string& group) { return penalty_.delay(group); }
    void penalty_failure(const std::string& group, std::string_view password_digest) {
        penalty_.failure(group, password_digest);
    }
    void penalty_success(const std::string& group) { penalty_.success(group); }
    // Addresses (networks) the penalty remembers now.
    std::size_t penalty_tracked() const { return penalty_.size(); }
    // Counters and histograms of the [metrics] endpoint (kept also without it).
    Metrics& metrics() { return metrics_; }
    // A keyed hash of a password (random key per process, never stored),
    // for recognising a repeated wrong password without keeping it.
    std::string password_digest(std::string_view password) const;

    unsigned long next_cuid() { return ++cuid_; }

private:
    asio::awaitable<CacheState> passdb_cache_state(RequestPtr request);
    asio::awaitable<backend::CredResult> lookup_credentials_chain(RequestPtr request, std::string scheme);
    asio::awaitable<backend::UserResult> lookup_user_chain(RequestPtr request);
    asio::awaitable<CacheState> userdb_cache_state(RequestPtr request);
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
    std::map<std::string, std::chrono::steady_clock::time_point> weak_warned_;
    static asio::awaitable<backend::PassResult> verify_chain(std::vector<std::unique_ptr<backend::Passdb>>* chain,
                                                             RequestPtr request, Secret password, Metrics* metrics);
    const config::Config& cfg_;
    BlockingPool& pool_;
    backend::Services services_;
    std::vector<const mech::MechInfo*> mechs_;
    std::vector<protocol::MechAdvert> adverts_;
    std::vector<std::unique_ptr<backend::Passdb>> passdbs_;
    std::vector<std::unique_ptr<backend::Passdb>> master_passdbs_;
    std::shared_ptr<const mech::MechSettings> mech_settings_;
    std::vector<std::unique_ptr<backend::Userdb>> userdbs_;
    PendingLogins logins_;
    unsigned long cuid_ = 0;
    std::unique_ptr<AuthCache> cache_;
    Penalty penalty_;
    unsigned char digest_key_[32];
    std::set<std::string> rehashing_;
    Metrics metrics_;
};

}  // namespace postern::auth
