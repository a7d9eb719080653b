// One database of the sql backend: a pool of connections shared by the
// passdb and userdb that name the same settings file, with connect and
// reconnect (hosts tried in turn, back-off while all are down), a per-query
// deadline, and temp-fail answers while the server is unreachable.
//
// Threading: event loop only. Never blocks: connections are the drivers'
// non-blocking ones; a request waits for a free connection at most until its
// deadline.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "backends/sql/connection.hpp"
#include "backends/sql/sql_config.hpp"

namespace postern::backend::sql {

struct PoolSettings {
    unsigned size = 5;                              // connections
    std::chrono::milliseconds query_timeout{5000};  // per query, waiting for a connection included
};

class Database {
public:
    Database(asio::any_io_executor ex, SqlFile file, PoolSettings pool);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Expands `tmpl` with `vars` and runs it on a pooled connection. Status
    // ConnectionLost/Timeout mean "temporarily unavailable".
    asio::awaitable<QueryResult> run(std::string tmpl, util::VarLookup vars, RowSink sink = {});

    const SqlFile& file() const { return file_; }
    std::string describe() const;

private:
    struct Slot {
        std::unique_ptr<Connection> conn;
        bool busy = false;
    };

    asio::awaitable<Slot*> acquire(Deadline deadline);
    void release(Slot* s);
    void wake_one();
    void wake_all();
    asio::awaitable<bool> connect_slot(Slot* s, Deadline deadline);
    asio::awaitable<std::string> resolve(Host h);
    void note_down(const std::string& why);
    void note_up(const std::string& host);

    asio::any_io_executor ex_;
    SqlFile file_;
    PoolSettings pool_;
    std::vector<Slot> slots_;
    std::list<asio::steady_timer*> waiters_;
    std::size_t next_host_ = 0;  // the host that worked last
    // Back-off while every host refuses: no new connect before this time.
    Clock::time_point retry_at_{};
    std::chrono::milliseconds backoff_{0};
    bool down_ = false;
    Clock::time_point down_since_{};
    unsigned connecting_ = 0;
};

// Passdb and userdb on the same settings file and pool settings share one
// Database. Start-up only (called from factories on the loop thread).
std::shared_ptr<Database> shared_database(asio::any_io_executor ex, const SqlFile& file, PoolSettings pool);

}  // namespace postern::backend::sql
