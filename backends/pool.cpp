// Back-off and the down/up log lines of the shared connection pool.
#include "backends/pool.hpp"

#include "util/log.hpp"

namespace postern::backend {

namespace {

// Back-off between connect attempts while every target refuses: short at
// first, and capped at half a second so that a server that comes back is
// used again within a second of its return; a long outage costs two
// refused connects a second per pool.
constexpr std::chrono::milliseconds kBackoffFirst{250};
constexpr std::chrono::milliseconds kBackoffMax{500};
// Longest server or library text quoted in the log.
constexpr std::size_t kMaxLoggedError = 300;

std::vector<const PoolStatsSource*>& pools() {
    static std::vector<const PoolStatsSource*> all;
    return all;
}

}  // namespace

PoolStatsSource::PoolStatsSource() { pools().push_back(this); }

PoolStatsSource::~PoolStatsSource() { std::erase(pools(), this); }

const std::vector<const PoolStatsSource*>& live_pools() { return pools(); }

void PoolHealth::connected(const std::string& pool, const std::string& target) {
    backoff_ = std::chrono::milliseconds(0);
    if (down_) {
        const double secs = std::chrono::duration<double>(Clock::now() - down_since_).count();
        log::info("{} {}: connected to {} again after {:.3f}s unavailable", words_.kind, pool, log::safe(target), secs);
        down_ = false;
    } else {
        log::debug("{} {}: connected to {}", words_.kind, pool, log::safe(target));
    }
}

void PoolHealth::target_failed(const std::string& pool, const std::string& error) {
    log::warning("{} {}: {} {}", words_.kind, pool, words_.cannot, log::safe(error, kMaxLoggedError));
}

void PoolHealth::all_failed(const std::string& pool, const std::string& last_error) {
    // Attempts that fail together (several requests at once) count once.
    if (Clock::now() >= retry_at_) {
        backoff_ = backoff_.count() == 0 ? kBackoffFirst : std::min(kBackoffMax, backoff_ * 2);
        retry_at_ = Clock::now() + backoff_;
    }
    if (!down_) {
        down_ = true;
        down_since_ = Clock::now();
        log::error("{} {}: {}: {}", words_.kind, pool, words_.down, log::safe(last_error, kMaxLoggedError));
    }
}

void PoolHealth::connection_lost(const std::string& pool, const std::string& error) {
    log::warning("{} {}: connection lost: {}", words_.kind, pool, log::safe(error, kMaxLoggedError));
}

void PoolHealth::timed_out(const std::string& pool, const char* what, std::chrono::milliseconds timeout,
                           bool dropped) {
    log::error("{} {}: {} timed out after {} ms; {}", words_.kind, pool, what, timeout.count(),
               dropped ? "connection dropped" : "request abandoned");
}

}  // namespace postern::backend
