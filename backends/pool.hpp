// The connection pool the sql and ldap backends share: a fixed number of
// slots, targets (hosts, URIs) tried in turn starting with the one that
// worked last, back-off while every target refuses (0.25 s, then every 0.5 s),
// requests waiting for a free connection until their deadline, and one log
// line when the service goes down and one when it is back. A connection
// serves one request at a time (acquire), or several at once for a protocol
// that matches answers to requests (acquire_shared: LDAP message ids).
//
// A backend derives from ConnectionPool<Conn> and says how to open a
// connection to one target (open()) and how it names itself (describe()).
// Conn needs `bool connected() const`; a Conn with `bool gathering() const`
// (requests waiting for a common write) gets shared requests first while
// it says so.
//
// Every pool is listed in live_pools() while it exists, for the metrics
// endpoint (connections open and busy, up/down, connects, failures, losses).
//
// Threading: event loop only; loop-only state, no locks.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "util/deadline.hpp"

namespace postern::backend {

// One pool as the metrics endpoint shows it.
struct PoolStats {
    std::string kind;   // "sql", "ldap"
    std::string name;   // describe(): driver, host and database or URI; never a password
    unsigned size = 0;  // connection slots
    unsigned open = 0;  // connections open now
    unsigned busy = 0;  // of those, serving a request now
    bool down = false;  // every target refused the last attempt (back-off)
    std::uint64_t connects = 0;          // connections opened (first ones and reconnects)
    std::uint64_t connect_failures = 0;  // attempts that reached no target
    std::uint64_t lost = 0;              // connections that broke in use
    // ldap only (has_wire): messages sent to the servers, and the writes
    // that carried them (the requests of one loop turn share a write).
    bool has_wire = false;
    std::uint64_t messages = 0;
    std::uint64_t writes = 0;
};

class PoolStatsSource {
public:
    virtual PoolStats stats() const = 0;

protected:
    PoolStatsSource();
    ~PoolStatsSource();
    PoolStatsSource(const PoolStatsSource&) = delete;
    PoolStatsSource& operator=(const PoolStatsSource&) = delete;
};

// The pools alive now, in creation order (loop thread only).
const std::vector<const PoolStatsSource*>& live_pools();

// Whether a pool's targets answer: the back-off between connect attempts
// and the down/up log lines, worded per backend.
class PoolHealth {
public:
    struct Words {
        const char* kind;    // "sql", "ldap": first word of each line
        const char* down;    // "database unreachable, answering temp-fail until it is back"
        const char* cannot;  // "cannot connect to": one target failed while others remain
    };
    explicit PoolHealth(Words words) : words_(words) {}

    bool down() const { return down_; }
    const char* kind() const { return words_.kind; }
    // Whether a new connect may be tried now (not down, or the back-off is over).
    bool may_connect() const { return !down_ || Clock::now() >= retry_at_; }
    void connected(const std::string& pool, const std::string& target);
    void target_failed(const std::string& pool, const std::string& error);
    void all_failed(const std::string& pool, const std::string& last_error);
    void connection_lost(const std::string& pool, const std::string& error);
    // `dropped`: the connection was closed (else only the request given up).
    void timed_out(const std::string& pool, const char* what, std::chrono::milliseconds timeout, bool dropped = true);

private:
    Words words_;
    Clock::time_point retry_at_{};
    std::chrono::milliseconds backoff_{0};
    bool down_ = false;
    Clock::time_point down_since_{};
};

template <class Conn>
class ConnectionPool : public PoolStatsSource {
public:
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    // How the pool names itself in log lines ("mysql 127.0.0.1/postfix").
    virtual std::string describe() const = 0;
    // What a backend counts beyond the common figures.
    virtual void add_stats(PoolStats&) const {}

    PoolStats stats() const override {
        PoolStats st;
        st.kind = health_.kind();
        st.name = describe();
        st.size = static_cast<unsigned>(slots_.size());
        for (const auto& s : slots_) {
            if (!open_slot(s)) continue;
            ++st.open;
            if (in_use(s)) ++st.busy;
        }
        st.down = health_.down();
        st.connects = connects_;
        st.connect_failures = connect_failures_;
        st.lost = lost_;
        add_stats(st);
        return st;
    }

protected:
    using Deadline = Clock::time_point;

    struct Slot {
        std::unique_ptr<Conn> conn;
        bool busy = false;    // one user, or being connected
        unsigned users = 0;   // acquire_shared(): requests on it now
    };
    // One connect attempt to one target: a connection ready for use, or why not.
    struct Opened {
        std::unique_ptr<Conn> conn;
        std::string label;       // the target, for the log ("127.0.0.1", "ldap://...")
        std::string error;       // when conn is null: "label: what went wrong"
        bool give_up = false;    // no other target can do better (driver missing)
    };

    ConnectionPool(asio::any_io_executor ex, unsigned size, std::size_t targets, PoolHealth::Words words)
        : ex_(std::move(ex)), slots_(size), targets_(targets), health_(words) {}
    virtual ~ConnectionPool() = default;

    // Opens a connection to target `index` (0 <= index < targets).
    virtual asio::awaitable<Opened> open(std::size_t index, Deadline deadline) = 0;

    // A busy slot with an open connection, or nullptr when none could be had
    // by the deadline or every target is down (then the caller temp-fails).
    asio::awaitable<Slot*> acquire(Deadline deadline) { return take(deadline, 0); }

    // A slot whose connection carries several requests at once (pipelining):
    // the open one with the fewest users below `cap`, a new connection while
    // every open one has users and a slot is empty, or nullptr as acquire().
    // Each user gives it back with release_shared(). A shared slot is never
    // handed out by acquire() nor its connection reset while it has users.
    asio::awaitable<Slot*> acquire_shared(Deadline deadline, unsigned cap) { return take(deadline, std::max(cap, 1u)); }

    void release(Slot* s) {
        s->busy = false;
        wake_one();
    }

    void release_shared(Slot* s) {
        --s->users;
        if (s->users == 0 && s->conn && !s->conn->connected()) s->conn.reset();
        wake_one();
    }

    // A connection broke: the idle ones most likely went with it (server
    // restart), so they are dropped too.
    void lost(const std::string& error) {
        ++lost_;
        health_.connection_lost(describe(), error);
        for (auto& other : slots_)
            if (!in_use(other)) other.conn.reset();
    }

    PoolHealth& health() { return health_; }
    const asio::any_io_executor& executor() const { return ex_; }

private:
    static bool open_slot(const Slot& s) { return s.conn && s.conn->connected(); }
    static bool in_use(const Slot& s) { return s.busy || s.users > 0; }

    // acquire() with cap 0, acquire_shared() with cap > 0.
    asio::awaitable<Slot*> take(Deadline deadline, unsigned cap) {
        const bool shared = cap > 0;
        // The place in the queue of waiters, kept when woken: a request
        // that arrives meanwhile may take the freed connection first, but
        // the waiter it overtook goes back to its old place, not the end.
        std::uint64_t ticket = 0;
        for (;;) {
            // Shared: a connection whose requests of this loop turn still
            // wait for their common write (Conn::gathering(), where Conn
            // gathers writes) takes one more. Then an open connection nobody
            // uses; shared: else the least used one below the cap.
            if constexpr (requires(const Conn& c) { c.gathering(); }) {
                if (shared)
                    for (auto& s : slots_)
                        if (!s.busy && open_slot(s) && s.users < cap && s.conn->gathering()) co_return claim(&s, true);
            }
            Slot* best = nullptr;
            for (auto& s : slots_) {
                if (s.busy || !open_slot(s) || (shared ? s.users >= cap : s.users > 0)) continue;
                if (!best || s.users < best->users) best = &s;
            }
            if (best && best->users == 0) co_return claim(best, shared);
            // An empty slot: open a connection in it (one attempt at a time while down).
            if (health_.may_connect() && (!health_.down() || connecting_ == 0)) {
                auto empty = std::find_if(slots_.begin(), slots_.end(),
                                          [](const Slot& s) { return !in_use(s) && !open_slot(s); });
                if (empty != slots_.end()) {
                    Slot* s = &*empty;
                    s->busy = true;
                    s->conn.reset();
                    ++connecting_;
                    const bool ok = co_await connect_slot(s, deadline);
                    --connecting_;
                    if (ok) {
                        if (!shared) co_return s;
                        s->busy = false;
                        wake_all();  // room for more than this request
                        co_return claim(s, true);
                    }
                    s->busy = false;
                    wake_all();  // the others learn that the service is down
                    // Open connections, or attempts still under way, may still
                    // serve (only new ones refused, e.g. max_connections): wait
                    // for one; else temp-fail now.
                    if (connecting_ == 0 && std::none_of(slots_.begin(), slots_.end(), open_slot)) co_return nullptr;
                    continue;
                }
            }
            if (best) co_return claim(best, shared);
            // Nothing in use that could come free: down and in back-off.
            if (std::none_of(slots_.begin(), slots_.end(), in_use)) co_return nullptr;
            if (Clock::now() >= deadline) co_return nullptr;
            // Wait for a connection to come free (or the attempt in progress to end).
            asio::steady_timer t(ex_, deadline);
            if (ticket == 0) ticket = ++tickets_;
            Listed listed(waiters_, t, ticket);
            asio::error_code ec;
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (!ec && Clock::now() >= deadline) co_return nullptr;
        }
    }

    static Slot* claim(Slot* s, bool shared) {
        if (shared) ++s->users;
        else s->busy = true;
        return s;
    }

    asio::awaitable<bool> connect_slot(Slot* s, Deadline deadline) {
        std::string last_error;
        for (std::size_t k = 0; k < targets_; ++k) {
            const std::size_t idx = (next_ + k) % targets_;
            Opened o = co_await open(idx, deadline);
            if (o.conn) {
                s->conn = std::move(o.conn);
                next_ = idx;
                health_.connected(describe(), o.label);
                ++connects_;
                co_return true;
            }
            last_error = std::move(o.error);
            if (o.give_up) break;
            if (targets_ > 1) health_.target_failed(describe(), last_error);
            if (Clock::now() >= deadline) break;
        }
        health_.all_failed(describe(), last_error);
        ++connect_failures_;
        co_return false;
    }

    // A waiting request's timer on waiters_ for as long as the request's
    // frame exists: one destroyed unfinished (shutdown) leaves no dangling
    // entry behind.
    // In ticket order (first come first woken).
    using Waiters = std::list<std::pair<std::uint64_t, asio::steady_timer*>>;
    struct Listed {
        Listed(Waiters& list, asio::steady_timer& t, std::uint64_t ticket) : list_(list), t_(&t) {
            auto at = list.end();
            while (at != list.begin() && std::prev(at)->first > ticket) --at;
            list.insert(at, {ticket, &t});
        }
        ~Listed() {
            list_.remove_if([this](const auto& w) { return w.second == t_; });
        }
        Listed(const Listed&) = delete;
        Listed& operator=(const Listed&) = delete;
        Waiters& list_;
        asio::steady_timer* t_;
    };

    void wake_one() {
        if (waiters_.empty()) return;
        auto* w = waiters_.front().second;
        waiters_.pop_front();
        w->cancel();
    }

    void wake_all() {
        while (!waiters_.empty()) wake_one();
    }

    asio::any_io_executor ex_;
    std::vector<Slot> slots_;
    std::size_t targets_;
    PoolHealth health_;
    Waiters waiters_;
    std::uint64_t tickets_ = 0;
    std::size_t next_ = 0;  // the target that worked last
    unsigned connecting_ = 0;
    std::uint64_t connects_ = 0, connect_failures_ = 0, lost_ = 0;
};

}  // namespace postern::backend
