// One database of the sql backend: a pool of connections shared by the
// passdb and userdb that name the same settings file, with connect and
// reconnect (backends/pool.hpp: hosts tried in turn, back-off while all are
// down), a per-query deadline, and temp-fail answers while the server is
// unreachable.
//
// Threading: event loop only. Never blocks: connections are the drivers'
// non-blocking ones; a request waits for a free connection at most until its
// deadline.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/pool.hpp"
#include "backends/sql/connection.hpp"
#include "backends/sql/sql_config.hpp"

namespace postern::backend::sql {

struct PoolSettings {
    unsigned size = 5;                              // connections
    std::chrono::milliseconds query_timeout{5000};  // per query, waiting for a connection included
};

class Database final : public ConnectionPool<Connection> {
public:
    Database(asio::any_io_executor ex, SqlFile file, PoolSettings pool);
    ~Database() override;

    // Expands `tmpl` with `vars` and runs it on a pooled connection. Status
    // ConnectionLost/Timeout mean "temporarily unavailable".
    asio::awaitable<QueryResult> run(std::string tmpl, util::VarLookup vars, RowSink sink = {});

    const SqlFile& file() const { return file_; }
    std::string describe() const override;

    // How long statements waited for a free connection since start-up.
    struct WaitStats {
        std::uint64_t queries = 0;                 // acquire attempts
        std::uint64_t waited = 0;                  // of which found no idle connection at once
        std::chrono::nanoseconds total{0}, max{0};  // wait time summed over all / the longest
    };
    const WaitStats& wait_stats() const { return waits_; }

private:
    asio::awaitable<Opened> open(std::size_t index, Deadline deadline) override;
    asio::awaitable<std::string> resolve(Host h);

    // Counts one acquire that took `waited`; logs it at debug level when
    // the statement had to queue.
    void note_wait(Clock::duration waited);

    SqlFile file_;
    PoolSettings pool_;
    WaitStats waits_;
};

// Passdb and userdb on the same settings file and pool settings share one
// Database. Start-up only (called from factories on the loop thread).
std::shared_ptr<Database> shared_database(asio::any_io_executor ex, const SqlFile& file, PoolSettings pool);

}  // namespace postern::backend::sql
