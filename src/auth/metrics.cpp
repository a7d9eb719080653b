// Metrics registry, label children and the text exposition (see metrics.hpp).
#include "auth/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>

#include <array>
#include <ctime>
#include <fstream>
#include <sstream>

namespace postern::auth {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Backend latency buckets: a cached file lookup (tens of µs) up to a
// backend that answers at its timeout (seconds).
const prometheus::Histogram::BucketBoundaries kLookupBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                             0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                                             5,      10};
// Whole requests include hashing and the failure delay.
const prometheus::Histogram::BucketBoundaries kAuthBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,      2,     4,    8,     15,   30};

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Counters mirror totals kept elsewhere: move forward to `total`.
void advance(prometheus::Counter* c, double total) {
    const double now = c->Value();
    if (total > now) c->Increment(total - now);
}

template <class T>
prometheus::Family<T>& family(prometheus::detail::Builder<T> b, const std::string& name, const std::string& help,
                              prometheus::Registry& r) {
    return b.Name(name).Help(help).Register(r);
}

}  // namespace

std::string_view service_label(std::string_view service) {
    // The services Dovecot and Postfix send, and the usual others.
    static constexpr std::array<std::string_view, 16> kKnown{"smtp",  "submission", "imap",     "pop3",
                                                             "sieve", "managesieve", "lmtp",    "lda",
                                                             "doveadm", "pop",      "ftp",      "xmpp",
                                                             "http",  "saslauthd",  "postfix",  "dovecot"};
    if (service.empty()) return "none";
    for (auto k : kKnown)
        if (k == service) return k;
    return "other";
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
    auto& r = *registry_;
    auth_results_ = &family(BuildCounter(), "postern_auth_results_total",
                            "Finished authentications by mechanism, service, listener role, result and reason", r);
    lookups_ = &family(BuildCounter(), "postern_backend_lookups_total",
                       "passdb and userdb calls by kind, driver, operation and result", r);
    lookup_seconds_ = &family(BuildHistogram(), "postern_backend_lookup_duration_seconds",
                              "Time of one passdb or userdb call, by kind and driver", r);
    dc_success_ = &family(BuildCounter(), "dovecot_auth_success_total",
                          "Successful authentications (Dovecot's auth_success metric)", r).Add({});
    dc_successes_ = &family(BuildCounter(), "dovecot_auth_successes_total",
                            "Successful authentications (Dovecot 2.4's default auth_successes metric)", r).Add({});
    dc_failure_ = &family(BuildCounter(), "dovecot_auth_failure_total",
                          "Failed authentications (Dovecot's auth_failure metric)", r).Add({});
    dc_failures_ = &family(BuildCounter(), "dovecot_auth_failures_total",
                           "Failed authentications (Dovecot 2.4's default auth_failures metric)", r).Add({});
    dc_success_seconds_ = &family(BuildCounter(), "dovecot_auth_success_duration_seconds_total",
                                  "Total time of successful authentications", r).Add({});
    dc_failure_seconds_ = &family(BuildCounter(), "dovecot_auth_failure_duration_seconds_total",
                                  "Total time of failed authentications, failure delay included", r).Add({});
    auth_seconds_ = &family(BuildHistogram(), "postern_auth_duration_seconds",
                            "Time from AUTH to OK or FAIL (failure delay included)", r).Add({}, kAuthBuckets);
    penalty_delays_ = &family(BuildCounter(), "postern_penalty_delays_total",
                              "Requests made to wait by the per-address penalty", r).Add({});
    penalty_delay_seconds_ = &family(BuildCounter(), "postern_penalty_delay_seconds_total",
                                     "Total penalty wait imposed", r).Add({});
    failure_delay_waiting_ = &family(BuildGauge(), "postern_failure_delay_waiting",
                                     "Failed requests sleeping in their failure delay now", r).Add({});
    connections_ = &family(BuildGauge(), "postern_listener_connections",
                           "Connections open per listener", r);
    connection_limit_ = &family(BuildGauge(), "postern_listener_connection_limit",
                                "Connection limit per listener (max_connections)", r);
    cache_enabled_ = &family(BuildGauge(), "postern_cache_enabled", "1 when [cache] is on", r).Add({});
    cache_hits_ = &family(BuildCounter(), "postern_cache_hits_total", "Authentication cache hits", r).Add({});
    cache_misses_ = &family(BuildCounter(), "postern_cache_misses_total", "Authentication cache misses", r).Add({});
    cache_stale_ = &family(BuildCounter(), "postern_cache_stale_served_total",
                           "Answers served from an expired entry while the backend failed", r).Add({});
    cache_evictions_ = &family(BuildCounter(), "postern_cache_evictions_total",
                               "Entries dropped to stay within [cache] size", r).Add({});
    cache_entries_ = &family(BuildGauge(), "postern_cache_entries", "Entries in the cache", r).Add({});
    cache_bytes_ = &family(BuildGauge(), "postern_cache_bytes", "Bytes accounted to cache entries", r).Add({});
    cache_max_bytes_ = &family(BuildGauge(), "postern_cache_max_bytes", "[cache] size", r).Add({});
    penalty_tracked_ = &family(BuildGauge(), "postern_penalty_tracked_addresses",
                               "Addresses (networks) with failures remembered by the penalty", r).Add({});
    cluster_up_ = &family(BuildGauge(), "postern_cluster_up",
                          "[cluster]: 1 while Redis answers (penalty and invalidation shared), else 0", r).Add({});
    auto& reads = family(BuildCounter(), "postern_cluster_penalty_reads_total",
                         "[cluster]: requests whose shared penalty counters came from this instance's read cache, "
                         "another request's read in flight, or a read of their own from Redis", r);
    cluster_reads_[0] = &reads.Add({{"source", "cache"}});
    cluster_reads_[1] = &reads.Add({{"source", "in_flight"}});
    cluster_reads_[2] = &reads.Add({{"source", "redis"}});
    auto& inval = family(BuildCounter(), "postern_cluster_invalidations_total",
                         "[cluster]: cache invalidations published by this instance or received from others", r);
    cluster_inval_sent_ = &inval.Add({{"direction", "sent"}});
    cluster_inval_received_ = &inval.Add({{"direction", "received"}});
    pool_threads_ = &family(BuildGauge(), "postern_hash_pool_threads", "Threads of the hashing pool", r).Add({});
    pool_busy_ = &family(BuildGauge(), "postern_hash_pool_busy_threads", "Hashing threads running a job now", r)
                     .Add({});
    pool_queued_ = &family(BuildGauge(), "postern_hash_pool_queue_depth", "Jobs waiting for a hashing thread", r)
                       .Add({});
    pool_queue_max_ = &family(BuildGauge(), "postern_hash_pool_queue_max", "[daemon] hash_queue_max", r).Add({});
    pool_refused_ = &family(BuildCounter(), "postern_hash_pool_refused_total",
                            "Jobs refused because the queue was full (answered temp-fail)", r).Add({});
    pool_jobs_ = &family(BuildCounter(), "postern_hash_pool_jobs_total", "Jobs run by the hashing pool", r).Add({});
    config_generation_ = &family(BuildGauge(), "postern_config_generation",
                                 "Configuration generation (1 at start, +1 per successful reload)", r).Add({});
    reload_success_ = &family(BuildGauge(), "postern_config_last_reload_successful",
                              "1 when the last configuration load succeeded", r).Add({});
    reload_time_ = &family(BuildGauge(), "postern_config_last_reload_success_timestamp_seconds",
                           "Unix time of the last successful configuration load", r).Add({});
    pool_size_ = &family(BuildGauge(), "postern_backend_pool_size", "Connection slots of an sql or ldap pool", r);
    pool_open_ = &family(BuildGauge(), "postern_backend_pool_connections", "Connections an sql or ldap pool has open", r);
    pool_busy_conns_ = &family(BuildGauge(), "postern_backend_pool_busy_connections",
                               "Connections of an sql or ldap pool serving a request now", r);
    pool_up_ = &family(BuildGauge(), "postern_backend_pool_up",
                       "0 while every server of an sql or ldap pool refuses connections, else 1", r);
    pool_connects_ = &family(BuildCounter(), "postern_backend_pool_connects_total",
                             "Connections an sql or ldap pool opened (first ones and reconnects)", r);
    pool_connect_failures_ = &family(BuildCounter(), "postern_backend_pool_connect_failures_total",
                                     "Connection attempts of an sql or ldap pool that reached no server", r);
    pool_lost_ = &family(BuildCounter(), "postern_backend_pool_connections_lost_total",
                         "Connections of an sql or ldap pool that broke in use", r);
    ldap_messages_ = &family(BuildCounter(), "postern_ldap_messages_total",
                             "Requests an ldap pool sent to its servers (searches, binds, modifies, abandons)", r);
    ldap_writes_ = &family(BuildCounter(), "postern_ldap_writes_total",
                           "Socket writes that carried them (requests of one event-loop turn share one)", r);
    http_sockets_ = &family(BuildGauge(), "postern_http_connections",
                            "Connections of the HTTP client (http passdb) open now", r).Add({});
    http_transfers_ = &family(BuildCounter(), "postern_http_requests_total", "HTTP requests finished", r).Add({});
    http_new_connections_ = &family(BuildCounter(), "postern_http_connects_total",
                                    "Connections the HTTP client opened (not reused)", r).Add({});
    http_connect_failures_ = &family(BuildCounter(), "postern_http_connect_failures_total",
                                     "HTTP requests that reached no server", r).Add({});
    cpu_seconds_ = &family(BuildCounter(), "process_cpu_seconds_total", "User and system CPU time", r).Add({});
    resident_bytes_ = &family(BuildGauge(), "process_resident_memory_bytes", "Resident memory", r).Add({});
    virtual_bytes_ = &family(BuildGauge(), "process_virtual_memory_bytes", "Virtual memory", r).Add({});
    open_fds_ = &family(BuildGauge(), "process_open_fds", "Open file descriptors", r).Add({});
    max_fds_ = &family(BuildGauge(), "process_max_fds", "File descriptor limit (RLIMIT_NOFILE)", r).Add({});
    start_time_ = &family(BuildGauge(), "process_start_time_seconds", "Unix time the process started", r).Add({});
    config_generation_->Set(1);
    reload_success_->Set(1);
    reload_time_->Set(static_cast<double>(std::time(nullptr)));
}

prometheus::Counter& Metrics::auth_counter(std::string_view mech, std::string_view service, config::Role role,
                                           std::string_view result, std::string_view reason) {
    // One key buffer per thread, reused: counting a request allocates nothing.
    static thread_local std::string key;
    key.clear();
    key.append(mech).append(1, '\x1f').append(service).append(1, '\x1f').append(config::to_string(role));
    key.append(1, '\x1f').append(result).append(1, '\x1f').append(reason);
    auto it = auth_children_.find(key);
    if (it != auth_children_.end()) return *it->second;
    auto& c = auth_results_->Add({{"mechanism", std::string(mech)},
                                  {"service", std::string(service)},
                                  {"role", std::string(config::to_string(role))},
                                  {"result", std::string(result)},
                                  {"reason", std::string(reason)}});
    auth_children_.emplace(key, &c);
    return c;
}

void Metrics::auth_result(std::string_view mech, std::string_view service, config::Role role,
                          std::string_view result, std::string_view reason, std::chrono::steady_clock::duration took) {
    // The log's reason may carry detail="..." after the token.
    reason = reason.substr(0, reason.find(' '));
    const std::string_view label = result == "ok" ? "success" : result == "tempfail" ? "tempfail" : "failure";
    auth_counter(mech, service_label(service), role, label, reason.empty() ? "none" : reason).Increment();
    const double s = seconds(took);
    auth_seconds_->Observe(s);
    if (result == "ok") {
        dc_success_->Increment();
        dc_successes_->Increment();
        dc_success_seconds_->Increment(s);
    } else {
        dc_failure_->Increment();
        dc_failures_->Increment();
        dc_failure_seconds_->Increment(s);
    }
}

void Metrics::protocol_error(config::Role role, std::string_view code) {
    auth_counter("none", "none", role, "failure", code).Increment();
    dc_failure_->Increment();
    dc_failures_->Increment();
}

void Metrics::lookup(std::string_view kind, std::string_view driver, std::string_view op, std::string_view result,
                     std::chrono::steady_clock::duration took) {
    static thread_local std::string key;  // as in auth_counter
    key.clear();
    key.append(kind).append(1, '\x1f').append(driver);
    auto h = lookup_hist_children_.find(key);
    if (h == lookup_hist_children_.end())
        h = lookup_hist_children_
                .emplace(key, &lookup_seconds_->Add({{"kind", std::string(kind)}, {"driver", std::string(driver)}},
                                                     kLookupBuckets))
                .first;
    h->second->Observe(seconds(took));
    key.append(1, '\x1f').append(op).append(1, '\x1f').append(result);
    auto c = lookup_children_.find(key);
    if (c == lookup_children_.end())
        c = lookup_children_
                .emplace(key, &lookups_->Add({{"kind", std::string(kind)},
                                                         {"driver", std::string(driver)},
                                                         {"operation", std::string(op)},
                                                         {"result", std::string(result)}}))
                .first;
    c->second->Increment();
}

void Metrics::penalty_delay(std::chrono::steady_clock::duration d) {
    penalty_delays_->Increment();
    penalty_delay_seconds_->Increment(seconds(d));
}

void Metrics::refresh(const Snapshot& s) {
    cache_enabled_->Set(s.cache_enabled ? 1 : 0);
    advance(cache_hits_, static_cast<double>(s.cache_hits));
    advance(cache_misses_, static_cast<double>(s.cache_misses));
    advance(cache_stale_, static_cast<double>(s.cache_stale));
    advance(cache_evictions_, static_cast<double>(s.cache_evictions));
    cache_entries_->Set(static_cast<double>(s.cache_entries));
    cache_bytes_->Set(static_cast<double>(s.cache_bytes));
    cache_max_bytes_->Set(static_cast<double>(s.cache_max_bytes));
    penalty_tracked_->Set(static_cast<double>(s.penalty_tracked));
    pool_threads_->Set(s.pool_threads);
    pool_busy_->Set(s.pool_busy);
    pool_queued_->Set(static_cast<double>(s.pool_queued));
    pool_queue_max_->Set(static_cast<double>(s.pool_queue_max));
    advance(pool_refused_, static_cast<double>(s.pool_refused));
    advance(pool_jobs_, static_cast<double>(s.pool_jobs));
}

void Metrics::config_reload(std::uint64_t generation, bool ok) {
    config_generation_->Set(static_cast<double>(generation));
    reload_success_->Set(ok ? 1 : 0);
    if (ok) reload_time_->Set(static_cast<double>(std::time(nullptr)));
}

void Metrics::backend_pools(const std::vector<backend::PoolStats>& pools, const http::Stats& http) {
    struct Sum {
        std::string kind, name;
        double size = 0, open = 0, busy = 0, connects = 0, failures = 0, lost = 0, messages = 0, writes = 0;
        bool up = false, wire = false;
    };
    std::unordered_map<std::string, Sum> now;
    for (const auto& p : pools) {
        auto& s = now[p.kind + '\x1f' + p.name];
        s.kind = p.kind;
        s.name = p.name;
        s.size += p.size;
        s.open += p.open;
        s.busy += p.busy;
        s.connects += static_cast<double>(p.connects);
        s.failures += static_cast<double>(p.connect_failures);
        s.lost += static_cast<double>(p.lost);
        s.messages += static_cast<double>(p.messages);
        s.writes += static_cast<double>(p.writes);
        s.wire = s.wire || p.has_wire;
        s.up = s.up || !p.down;
    }
    // Series of pools that are gone (a reload dropped them) go too.
    for (auto it = pool_series_.begin(); it != pool_series_.end();) {
        if (now.count(it->first)) {
            ++it;
            continue;
        }
        const auto& ps = it->second;
        pool_size_->Remove(ps.size);
        pool_open_->Remove(ps.open);
        pool_busy_conns_->Remove(ps.busy);
        pool_up_->Remove(ps.up);
        pool_connects_->Remove(ps.connects);
        pool_connect_failures_->Remove(ps.failures);
        pool_lost_->Remove(ps.lost);
        if (ps.messages) ldap_messages_->Remove(ps.messages);
        if (ps.writes) ldap_writes_->Remove(ps.writes);
        it = pool_series_.erase(it);
    }
    for (const auto& [key, s] : now) {
        auto it = pool_series_.find(key);
        if (it == pool_series_.end()) {
            const prometheus::Labels l{{"kind", s.kind}, {"pool", s.name}};
            it = pool_series_
                     .emplace(key, PoolSeries{&pool_size_->Add(l), &pool_open_->Add(l), &pool_busy_conns_->Add(l),
                                              &pool_up_->Add(l), &pool_connects_->Add(l),
                                              &pool_connect_failures_->Add(l), &pool_lost_->Add(l)})
                     .first;
            if (s.wire) {
                const prometheus::Labels wl{{"pool", s.name}};
                it->second.messages = &ldap_messages_->Add(wl);
                it->second.writes = &ldap_writes_->Add(wl);
            }
        }
        auto& ps = it->second;
        ps.size->Set(s.size);
        ps.open->Set(s.open);
        ps.busy->Set(s.busy);
        ps.up->Set(s.up ? 1 : 0);
        advance(ps.connects, s.connects);
        advance(ps.failures, s.failures);
        advance(ps.lost, s.lost);
        if (ps.messages) advance(ps.messages, s.messages);
        if (ps.writes) advance(ps.writes, s.writes);
    }
    http_sockets_->Set(static_cast<double>(http.sockets));
    advance(http_transfers_, static_cast<double>(http.transfers));
    advance(http_new_connections_, static_cast<double>(http.new_connections));
    advance(http_connect_failures_, static_cast<double>(http.connect_failures));
}

void Metrics::listener_connections(const std::string& listener, config::Role role, long long open, long long limit) {
    const std::string role_name(config::to_string(role));
    const std::string key = listener + '\x1f' + role_name;
    auto it = listener_series_.find(key);
    if (it == listener_series_.end()) {
        const prometheus::Labels labels{{"listener", listener}, {"role", role_name}};
        it = listener_series_.emplace(key, std::make_pair(&connections_->Add(labels), &connection_limit_->Add(labels)))
                 .first;
    }
    it->second.first->Set(static_cast<double>(open));
    it->second.second->Set(static_cast<double>(limit));
    listener_seen_.insert(key);
}

void Metrics::listeners_done() {
    for (auto it = listener_series_.begin(); it != listener_series_.end();) {
        if (listener_seen_.count(it->first)) {
            ++it;
            continue;
        }
        connections_->Remove(it->second.first);
        connection_limit_->Remove(it->second.second);
        it = listener_series_.erase(it);
    }
    listener_seen_.clear();
}

void Metrics::process_stats() {
    // /proc reads are served from kernel memory: no disk wait on the loop.
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (std::getline(stat, line)) {
        // Fields after the command name "(...)", which may hold spaces.
        const auto close = line.rfind(')');
        if (close != std::string::npos) {
            std::istringstream in(line.substr(close + 2));
            std::string f;
            unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
            long long rss = 0;
            // field 3 (state) is the first after ')'; utime is 14, stime 15, starttime 22, vsize 23, rss 24.
            for (int i = 3; i <= 24 && in >> f; ++i) {
                if (i == 14) utime = std::stoull(f);
                else if (i == 15) stime = std::stoull(f);
                else if (i == 22) start = std::stoull(f);
                else if (i == 23) vsize = std::stoull(f);
                else if (i == 24) rss = std::stoll(f);
            }
            const double tck = static_cast<double>(::sysconf(_SC_CLK_TCK));
            advance(cpu_seconds_, static_cast<double>(utime + stime) / tck);
            virtual_bytes_->Set(static_cast<double>(vsize));
            resident_bytes_->Set(static_cast<double>(rss) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
            if (start_time_->Value() == 0) {
                std::ifstream boot("/proc/stat");
                std::string key;
                unsigned long long btime = 0;
                while (boot >> key)
                    if (key == "btime" && boot >> btime) break;
                if (btime) start_time_->Set(static_cast<double>(btime) + static_cast<double>(start) / tck);
            }
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        long n = 0;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        open_fds_->Set(static_cast<double>(n - 1));  // not the one opendir holds
    }
    if (struct rlimit rl {}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0)
        max_fds_->Set(rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(rl.rlim_cur));
}

std::string Metrics::render() {
    process_stats();
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace postern::auth
