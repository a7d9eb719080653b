// [cluster]: brute-force state and cache invalidation shared by several
// posternd instances through Redis (util/redis: one connection for commands,
// one for the invalidation channel).
//
// Penalty: failure counts per address group (as the local penalty groups
// them), per network (IPv4 /24, IPv6 /56 by default) and per account, each a
// Redis hash updated by a server-side script (atomic, with expiry; one
// failure forgiven per [penalty] decay, as locally), and per account the set
// of address groups that logged into it (sorted by time, kept
// known_address_ttl). A request reads all four in one round trip (check());
// failures and successes are sent without waiting for the answer.
//   address rule: the local rule on the shared count;
//   network rule: past network_threshold failures of its network, an address
//                 waits as if it had (failures - threshold + 1) of its own;
//   account rule: past account_threshold failures on the account, from all
//                 addresses, an address that never logged into it waits the
//                 same way; the owner's known addresses never do (no lockout).
// Each failure is announced on a second channel (by the failure script
// itself), so counters at rest can stay in the read cache until one changes
// (see cluster_cache.hpp).
// Invalidation: "postern cache flush", "postern user passwd/del" and rehashes
// publish the user names (or "all"); every instance drops those cache entries.
//
// Redis unreachable: check() answers nullopt at once and the caller uses the
// local penalty; the state change is logged once and shown in the metrics
// (postern_cluster_up). Failures counted meanwhile (at most kBacklog, none
// older than [penalty] decay) are sent when Redis is back. Loop thread only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/cluster_cache.hpp"
#include "config/config.hpp"
#include "util/redis.hpp"

namespace postern::auth {

class Cluster : public std::enable_shared_from_this<Cluster> {
public:
    using Duration = std::chrono::steady_clock::duration;
    Cluster(asio::any_io_executor ex, const config::ClusterSettings& cs, const config::PenaltySettings& ps);
    ~Cluster();
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    bool up() const { return commands_->up(); }

    // The shared penalty of one request: the delay and the rule that set it
    // ("address", "network", "account"; "" when none). nullopt: Redis is
    // unreachable or slow, use the local penalty.
    struct Verdict {
        Duration delay{};
        std::string rule;
    };
    // What one request reads and changes, as the local cache names it:
    // "a" + address group, "n" + network, "u" + account, and "k" + account
    // + NUL + address group ("that group is in the account's known set");
    // redis_key() gives the Redis key of each. Made once per request.
    struct Keys {
        std::string group, address, network, account, known;
        std::string user;  // the account ("" unknown)
    };
    // group: the request's address group (Penalty::group_of); user: the
    // normalized account name, may be "".
    Keys keys_of(const std::string& group, std::string_view ip, const std::string& user) const;
    asio::awaitable<std::optional<Verdict>> check(Keys keys);
    // The verdict from the local cache alone, when every counter it needs is
    // fresh there; nullopt: call check() (or Redis is unreachable).
    std::optional<Verdict> cached(const Keys& keys);
    void failure(const Keys& keys, std::string_view digest);
    void success(const Keys& keys);

    // Cache invalidation: publishes these users (all when empty); false when
    // Redis is unreachable.
    bool publish_flush(const std::vector<std::string>& users);
    // What to do with another instance's invalidation (set by the engine).
    void on_flush(std::function<void(const std::vector<std::string>&)> f) { on_flush_ = std::move(f); }
    // Told when Redis becomes reachable (true) or not (false): the metrics.
    void on_state(std::function<void(bool)> f) { on_state_ = std::move(f); }
    // Told where each verdict's counters came from (Source) and of each
    // invalidation sent or received: the metrics.
    enum class Source { Cache = 0, InFlight = 1, Redis = 2 };
    void on_count(std::function<void(Source)> read, std::function<void(bool sent)> invalidation) {
        on_read_ = std::move(read);
        on_invalidation_ = std::move(invalidation);
    }

    // A keyed hash of a wrong password for the shared same-password rule
    // (8 bytes: enough to recognise a repeat, too few to confirm a guess).
    // Keyed from the Redis credentials, so all instances agree and Redis
    // alone does not hold the key; without credentials, a random key of
    // this process (the rule then holds per instance only).
    std::string digest(std::string_view password) const;

    // The network group of an address ("" when not an IP address).
    std::string network_of(std::string_view ip) const;

    // At most this many counters in the local cache (the oldest go first).
    static constexpr std::size_t kReadCacheEntries = 65536;
    // At most this many failures kept while Redis is away (the oldest go).
    static constexpr std::size_t kBacklog = 10000;
    const CounterCache& read_cache() const { return cache_; }

    // Redis options (endpoints, timeout, TLS) from [cluster].
    static redis::Options options(const config::ClusterSettings& cs);
    // The channel invalidations go through.
    static std::string channel(const config::ClusterSettings& cs) { return cs.key_prefix + "invalidate"; }
    // The channel the failure script announces the counters it changed on:
    // a sender id, then the read cache's keys.
    static std::string counters_channel(const config::ClusterSettings& cs) { return cs.key_prefix + "counters"; }
    // The payload of an invalidation: a sender id, then the users ("" = all).
    static std::string flush_message(const std::string& sender, const std::vector<std::string>& users);

private:
    std::string redis_key(std::string_view cache_key) const;
    bool account_rule(const std::string& user) const { return cs_.account_threshold && !user.empty(); }
    std::optional<Verdict> from_cache(const Keys& k) const;
    Verdict verdict(unsigned address, unsigned network, unsigned account, bool known, const std::string& user) const;
    void on_message(const std::string& channel, const std::string& payload);
    Duration rule_delay(unsigned failures) const;
    // A known address's login time in Redis is renewed at most once per
    // this window (an hour, or half of known_address_ttl when shorter); the
    // check answers kKnownRecent for an address renewed within it.
    Duration known_refresh() const { return std::min<Duration>(std::chrono::hours(1), cs_.known_address_ttl / 2); }
    static constexpr unsigned kKnownRecent = CounterCache::kKnownRecent;
    // Counters at rest stay in the read cache this long at most while the
    // failure announcements are heard (and no longer than known_refresh(),
    // so a known address is still renewed within its window).
    static constexpr std::chrono::seconds kRestLifetime{60};
    Duration rest_lifetime() const { return std::min<Duration>(kRestLifetime, known_refresh()); }

    config::ClusterSettings cs_;
    config::PenaltySettings ps_;
    std::string id_;  // this instance's id in its invalidations
    std::shared_ptr<redis::Connection> commands_, subscriber_;
    bool subscriber_down_logged_ = false;
    bool logged_bad_check_ = false;
    std::string subscriber_detail_;
    std::function<void(const std::vector<std::string>&)> on_flush_;
    std::function<void(bool)> on_state_;
    std::function<void(Source)> on_read_;
    std::function<void(bool)> on_invalidation_;
    void count(Source s) const {
        if (on_read_) on_read_(s);
    }
    std::string check_sha_, failure_sha_, success_sha_;
    CounterCache cache_;
    asio::steady_timer subscriber_check_;
    void check_subscriber_later();
    unsigned char digest_key_[16];  // a SipHash key
    // Failures counted while Redis was away: the failure script's arguments,
    // sent when it is back (those younger than [penalty] decay).
    struct Pending {
        std::chrono::steady_clock::time_point at;
        std::vector<std::string> argv;
    };
    std::deque<Pending> backlog_;
    std::size_t backlog_dropped_ = 0;
    void send_backlog();
};

// For the CLI: publishes an invalidation with its own short-lived connection;
// "" when done, else why not.
std::string publish_flush_once(const config::ClusterSettings& cs, const std::vector<std::string>& users);

}  // namespace postern::auth
