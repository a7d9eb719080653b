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

    // A result without rows: `status` and the operator text.
    static QueryResult failure(Status status, std::string error) {
        QueryResult r;
        r.status = status;
        r.error = std::move(error);
        return r;
    }
    // The deadline passed (the driver has dropped the connection).
    static QueryResult timeout() { return failure(Status::Timeout, "query timed out"); }
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

// The library's socket as the loop sees it: a dup of the descriptor the
// library owns (the library keeps, replaces and closes its own), awaited
// with Asio. Both drivers wait through it and nothing else.
class LibrarySocket {
public:
    explicit LibrarySocket(asio::any_io_executor ex) : sd_(std::move(ex)) {}

    // Watches `library_fd` from now on, through a fresh dup even when the
    // number is the one watched already (the library may have closed and
    // reopened it in between). Fails for a negative descriptor.
    Result<void> watch(int library_fd);
    // The library descriptor watched, or -1.
    int watched() const { return watched_; }
    // Waits until the watched socket is readable (want_read) and/or writable
    // (want_write), or the deadline passes. Returns the ready direction (1 =
    // read, 2 = write), 0 on timeout, -1 on error.
    asio::awaitable<int> wait(bool want_read, bool want_write, Deadline deadline);
    // Stops watching; the library's own descriptor stays open.
    void close();
    asio::any_io_executor get_executor() { return sd_.get_executor(); }

private:
    asio::posix::stream_descriptor sd_;
    int watched_ = -1;
};

// Shuts the library's socket down both ways, so that whatever the library
// has pending on it fails at once instead of waiting (a broken or abandoned
// connection). Nothing for a negative descriptor.
void break_socket(int library_fd);

}  // namespace postern::backend::sql
