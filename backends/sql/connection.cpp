// Socket readiness with deadlines, shared by the sql drivers.
#include "backends/sql/connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/use_awaitable.hpp>

#include "util/deadline.hpp"

namespace postern::backend::sql {

using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
}

namespace {

// Readiness of the descriptor, without a deadline: 1 readable, 2 writable,
// -1 the wait failed.
asio::awaitable<int> ready(asio::posix::stream_descriptor& sd, bool want_read, bool want_write) {
    using W = asio::posix::descriptor_base::wait_type;
    if (want_read && want_write) {
        // The composed wait is a named object: g++ 12 mishandles temporaries
        // inside a co_await expression.
        auto either = sd.async_wait(W::wait_read, kTuple) || sd.async_wait(W::wait_write, kTuple);
        auto r = co_await std::move(either);
        const auto& ec = r.index() == 0 ? std::get<0>(std::get<0>(r)) : std::get<0>(std::get<1>(r));
        if (ec) co_return -1;
        co_return r.index() == 0 ? 1 : 2;
    }
    auto r = co_await sd.async_wait(want_read ? W::wait_read : W::wait_write, kTuple);
    if (std::get<0>(r)) co_return -1;
    co_return want_read ? 1 : 2;
}

}  // namespace

asio::awaitable<int> LibrarySocket::wait(bool want_read, bool want_write, Deadline deadline) {
    if (Clock::now() >= deadline) co_return 0;
    // At the deadline the wait is cancelled; the caller drops the connection.
    auto r = co_await with_deadline(ready(sd_, want_read, want_write), deadline);
    co_return r ? *r : 0;
}

Result<void> LibrarySocket::watch(int library_fd) {
    close();
    if (library_fd < 0) return fail("no socket");
    const int fd = ::fcntl(library_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return fail(std::string("dup: ") + std::strerror(errno));
    asio::error_code ec;
    sd_.assign(fd, ec);
    if (ec) {
        ::close(fd);
        return fail("assign: " + ec.message());
    }
    watched_ = library_fd;
    return {};
}

void LibrarySocket::close() {
    if (sd_.is_open()) {
        asio::error_code ignored;
        sd_.close(ignored);
    }
    watched_ = -1;
}

void break_socket(int library_fd) {
    if (library_fd >= 0) ::shutdown(library_fd, SHUT_RDWR);
}

}  // namespace postern::backend::sql

namespace postern::backend::sql {

bool driver_available(DriverKind kind) {
#ifdef POSTERN_HAVE_MYSQL
    if (kind == DriverKind::Mysql) return true;
#endif
#ifdef POSTERN_HAVE_PGSQL
    if (kind == DriverKind::Pgsql) return true;
#endif
    (void)kind;
    return false;
}

#ifndef POSTERN_HAVE_MYSQL
std::unique_ptr<Connection> make_mysql_connection(asio::any_io_executor, const ConnectSettings&) { return nullptr; }
#endif
#ifndef POSTERN_HAVE_PGSQL
std::unique_ptr<Connection> make_pgsql_connection(asio::any_io_executor, const ConnectSettings&) { return nullptr; }
#endif

}  // namespace postern::backend::sql
