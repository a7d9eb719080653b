// Metrics: the daemon's counters, gauges and histograms in one
// prometheus-cpp registry (core library only: no HTTP thread), and their
// Prometheus text exposition. Requests and the engine count into it on the
// event loop; values that already live elsewhere (cache, penalty, hashing
// pool, listeners, /proc/self) are copied in by refresh() at scrape time.
// Every metric is documented in posternd(8) METRICS.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "backends/pool.hpp"
#include "config/config.hpp"
#include "util/http_client.hpp"

namespace postern::auth {

class Metrics {
public:
    Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // One finished authentication (the result log line): result is "ok",
    // "fail" or "tempfail" as logged; reason the log's reason token ("" for
    // ok). Client-chosen services outside a fixed list count as "other", so
    // the number of series stays bounded.
    void auth_result(std::string_view mech, std::string_view service, config::Role role, std::string_view result,
                     std::string_view reason, std::chrono::steady_clock::duration took);
    // A request refused by the connection before any mechanism ran
    // (unknown mechanism, bad base64...): result "fail", mech as sent only
    // when it is one we know.
    void protocol_error(config::Role role, std::string_view code);
    // One backend call of a chain: kind "passdb"/"userdb", the driver,
    // the operation (verify, credentials, lookup, user) and its result.
    void lookup(std::string_view kind, std::string_view driver, std::string_view op, std::string_view result,
                std::chrono::steady_clock::duration took);
    // A penalty wait about to start.
    void penalty_delay(std::chrono::steady_clock::duration d);
    // [cluster]: whether Redis answers now.
    void cluster_up(bool up) { cluster_up_->Set(up ? 1 : 0); }
    // [cluster]: where a request's shared penalty counters came from
    // (0: this instance's read cache, 1: another request's read in flight,
    // 2: a read of its own from Redis), and invalidations sent or received.
    void cluster_read(int source) { cluster_reads_[source]->Increment(); }
    void cluster_invalidation(bool sent) { (sent ? cluster_inval_sent_ : cluster_inval_received_)->Increment(); }
    // Requests sleeping in their failure delay now.
    void failure_delay_begin() { failure_delay_waiting_->Increment(); }
    void failure_delay_end() { failure_delay_waiting_->Decrement(); }

    // Scrape-time values, set by refresh() callers (server/metrics_server).
    struct Snapshot {
        bool cache_enabled = false;
        std::uint64_t cache_hits = 0, cache_misses = 0, cache_stale = 0, cache_evictions = 0;
        std::size_t cache_entries = 0, cache_bytes = 0, cache_max_bytes = 0;
        std::size_t penalty_tracked = 0;
        unsigned pool_threads = 0, pool_busy = 0;
        std::size_t pool_queued = 0, pool_queue_max = 0;
        std::uint64_t pool_refused = 0, pool_jobs = 0;
    };
    void refresh(const Snapshot& s);
    // A configuration reload: the generation now serving, and whether the
    // reload succeeded (the success time is set only then).
    void config_reload(std::uint64_t generation, bool ok);
    // Scrape time: the sql and ldap connection pools alive now (pools of
    // the same name, an old generation's and its successor's during a
    // reload, add up) and the HTTP client's connections.
    void backend_pools(const std::vector<backend::PoolStats>& pools, const http::Stats& http);
    // Connections open on a listener now ("unix:/path", role).
    void listener_connections(const std::string& listener, config::Role role, long long open, long long limit);
    // After the listener_connections() calls of one scrape: the series of
    // listeners not given (a reload removed them) leave the exposition.
    void listeners_done();
    // The text exposition of every metric, after refresh() and /proc/self.
    std::string render();

    prometheus::Registry& registry() { return *registry_; }

private:
    prometheus::Counter& auth_counter(std::string_view mech, std::string_view service, config::Role role,
                                      std::string_view result, std::string_view reason);
    void process_stats();

    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>* auth_results_;
    prometheus::Family<prometheus::Counter>* lookups_;
    prometheus::Family<prometheus::Histogram>* lookup_seconds_;
    // Dovecot 2.4's names for the same quantities (existing dashboards).
    prometheus::Counter* dc_success_;
    prometheus::Counter* dc_successes_;
    prometheus::Counter* dc_failure_;
    prometheus::Counter* dc_failures_;
    prometheus::Counter* dc_success_seconds_;
    prometheus::Counter* dc_failure_seconds_;
    prometheus::Histogram* auth_seconds_;
    prometheus::Counter* penalty_delays_;
    prometheus::Counter* penalty_delay_seconds_;
    prometheus::Gauge* failure_delay_waiting_;
    prometheus::Family<prometheus::Gauge>* connections_;
    prometheus::Family<prometheus::Gauge>* connection_limit_;
    prometheus::Counter *cache_hits_, *cache_misses_, *cache_stale_, *cache_evictions_;
    prometheus::Gauge *cache_entries_, *cache_bytes_, *cache_max_bytes_, *cache_enabled_;
    prometheus::Gauge* penalty_tracked_;
    prometheus::Gauge* cluster_up_;
    prometheus::Counter* cluster_reads_[3];
    prometheus::Counter *cluster_inval_sent_, *cluster_inval_received_;
    prometheus::Gauge *pool_threads_, *pool_busy_, *pool_queued_, *pool_queue_max_;
    prometheus::Counter *pool_refused_, *pool_jobs_;
    prometheus::Gauge *config_generation_, *reload_success_, *reload_time_;
    prometheus::Family<prometheus::Gauge> *pool_size_, *pool_open_, *pool_busy_conns_, *pool_up_;
    prometheus::Family<prometheus::Counter> *pool_connects_, *pool_connect_failures_, *pool_lost_;
    prometheus::Family<prometheus::Counter> *ldap_messages_, *ldap_writes_;
    struct PoolSeries {
        prometheus::Gauge *size, *open, *busy, *up;
        prometheus::Counter *connects, *failures, *lost;
        prometheus::Counter *messages = nullptr, *writes = nullptr;  // ldap pools only
    };
    std::unordered_map<std::string, PoolSeries> pool_series_;  // by kind and name
    std::unordered_map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>> listener_series_;
    std::unordered_set<std::string> listener_seen_;
    prometheus::Gauge* http_sockets_;
    prometheus::Counter *http_transfers_, *http_new_connections_, *http_connect_failures_;
    prometheus::Counter* cpu_seconds_;
    prometheus::Gauge *resident_bytes_, *virtual_bytes_, *open_fds_, *max_fds_, *start_time_;
    // Label children by joined label values: looked up once per label set,
    // then a hash lookup per request (loop thread only).
    std::unordered_map<std::string, prometheus::Counter*> auth_children_;
    std::unordered_map<std::string, prometheus::Counter*> lookup_children_;
    std::unordered_map<std::string, prometheus::Histogram*> lookup_hist_children_;
};

// The service label for a client-supplied service name: known ones as
// themselves, "" as "none", anything else as "other".
std::string_view service_label(std::string_view service);

}  // namespace postern::auth
