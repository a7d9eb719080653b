// One client connection to a database server, driven by the event loop
// through the library's socket (a dup of it, awaited with Asio). Implemented
// by backends/mysql (MariaDB Connector/C's non-blocking API) and
// backends/pgsql (libpq's asynchronous API).
//
// Threading: event loop only. At most one call in progress per connection
// (the pool guarantees it). Every call ends by the deadline it is given.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/sql/query.hpp"
#include "backends/sql/sql_config.hpp"
#include "util/result.hpp"

namespace postern::backend::sql {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using Row = std::vector<std::optional<std::string>>;  // nullopt = SQL NULL

struct QueryResult {
    enum class Status {
        Ok,
        QueryError,      // the server refused the statement; the connection is still good
        ConnectionLost,  // the connection broke; it must be dropped
        Timeout,         // the deadline passed; the connection has been dropped
    };
    Status status = Status::ConnectionLost;
    std::vector<std::string> columns;
    std::vector<Row> rows;
    unsigned long long affected = 0;
    std::string error;  // operator text from the library or server (sanitise before logging)
};

// Receives rows one at a time (iterate_query); returning false stops the
// query early (the connection is then dropped rather than drained).
using RowSink = std::function<asio::awaitable<bool>(const std::vector<std::string>& columns, Row row)>;

class Connection {
public:
    virtual ~Connection() = default;
    // Connects to one host. `address` is the numeric address to use for a
    // named host ("" for IP literals and sockets, which are used as written).
    virtual asio::awaitable<Result<void>> connect(Host host, std::string address, Deadline deadline) = 0;
    // Runs one statement. With a sink, rows go to it instead of the result.
    virtual asio::awaitable<QueryResult> query(Marked statement, Deadline deadline, RowSink sink) = 0;
    virtual bool connected() const = 0;
    virtual void close() = 0;
};

// Factories; return nullptr when the driver was not compiled in.
std::unique_ptr<Connection> make_mysql_connection(asio::any_io_executor ex, const ConnectSettings& settings);
std::unique_ptr<Connection> make_pgsql_connection(asio::any_io_executor ex, const ConnectSettings& settings);
bool driver_available(DriverKind kind);

// Waits until `sd` is readable (want_read) and/or writable (want_write), or
// the deadline passes. Returns the ready directions (1 = read, 2 = write), 0
// on timeout, -1 on error.
asio::awaitable<int> wait_fd(asio::posix::stream_descriptor& sd, bool want_read, bool want_write, Deadline deadline);

// A dup of a library-owned socket for Asio to wait on (the library keeps and
// closes its own descriptor).
Result<void> watch_fd(asio::posix::stream_descriptor& sd, int library_fd);

}  // namespace postern::backend::sql
