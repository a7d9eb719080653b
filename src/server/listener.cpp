// Socket binding and accept loops.
#include "server/listener.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "server/auth_client_session.hpp"
#include "server/master_session.hpp"
#include "server/saslauthd_session.hpp"
#include "util/spawn.hpp"
#include "util/log.hpp"

namespace postern::server {
namespace {

std::optional<uid_t> lookup_uid(const std::string& name) {
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* res = nullptr;
    if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return res->pw_uid;
}

std::optional<gid_t> lookup_gid(const std::string& name) {
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* res = nullptr;
    if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return res->gr_gid;
}

// True if something is accepting connections on the unix socket at path.
bool socket_in_use(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    const bool used = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return used;
}

Result<Listener::Acceptor> bind_unix(asio::io_context& io, const config::Listener& l) {
    struct stat st {};
    if (::lstat(l.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return fail(l.describe() + ": path exists and is not a socket");
        if (socket_in_use(l.path)) return fail(l.describe() + ": another process is listening on it");
        ::unlink(l.path.c_str());
    }
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    if (!l.user.empty() && !(uid = lookup_uid(l.user))) return fail(l.describe() + ": unknown user \"" + l.user + "\"");
    if (!l.group.empty() && !(gid = lookup_gid(l.group))) return fail(l.describe() + ": unknown group \"" + l.group + "\"");
    const unsigned mode = l.mode.value_or(0600);

    Listener::Acceptor acc(io);
    asio::error_code ec;
    asio::local::stream_protocol::endpoint ep(l.path);
    asio::generic::stream_protocol::endpoint gep(ep.data(), ep.size());
    acc.open(gep.protocol(), ec);
    if (ec) return fail(l.describe() + ": socket: " + ec.message());
    // Created owner-only; opened up to the configured mode only after the
    // owner is set, so the socket is never more open than configured.
    const mode_t old = ::umask(0177);
    acc.bind(gep, ec);
    ::umask(old);
    if (ec) return fail(l.describe() + ": bind: " + ec.message());
    if ((uid || gid) && ::chown(l.path.c_str(), uid ? *uid : static_cast<uid_t>(-1), gid ? *gid : static_cast<gid_t>(-1)) != 0)
        return fail(l.describe() + ": chown: " + std::strerror(errno));
    if (::chmod(l.path.c_str(), mode) != 0) return fail(l.describe() + ": chmod: " + std::strerror(errno));
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(l.describe() + ": listen: " + ec.message());
    return acc;
}

Result<Listener::Acceptor> bind_tcp(asio::io_context& io, const config::Listener& l) {
    asio::error_code ec;
    auto addr = asio::ip::make_address(l.host, ec);
    if (ec) return fail(l.describe() + ": address must be a numeric IP (no DNS lookups at start-up)");
    asio::ip::tcp::endpoint ep(addr, l.port);
    asio::generic::stream_protocol::endpoint gep(ep.data(), ep.size());
    Listener::Acceptor acc(io);
    acc.open(gep.protocol(), ec);
    if (ec) return fail(l.describe() + ": socket: " + ec.message());
    acc.set_option(asio::socket_base::reuse_address(true), ec);
    acc.bind(gep, ec);
    if (ec) return fail(l.describe() + ": bind: " + ec.message());
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(l.describe() + ": listen: " + ec.message());
    return acc;
}

}  // namespace

void Listener::start(auth::Engine& engine) {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(engine), LogExceptions{"listener"});
}

void Listener::stop() {
    asio::error_code ec;
    acceptor_.close(ec);
    if (cfg_.type == config::Listener::Type::Unix) ::unlink(cfg_.path.c_str());
}

asio::awaitable<void> Listener::accept_loop(auth::Engine& engine) {
    const long long limit = cfg_.max_connections > 0 ? cfg_.max_connections : kDefaultMaxConnections;
    std::size_t n = 0;
    for (;;) {
        asio::error_code ec;
        Socket sock = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            // EMFILE and friends: back off briefly instead of spinning.
            log::warning("{}: accept: {}", cfg_.describe(), ec.message());
            asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        if (slot_.use_count() - 1 >= limit) {
            log::warning("{}: connection limit ({}) reached; refusing a connection", cfg_.describe(), limit);
            sock.close(ec);
            continue;
        }
        std::string peer = cfg_.describe() + "#" + std::to_string(++n);
        if (cfg_.role == config::Role::Client || cfg_.role == config::Role::Login) {
            std::make_shared<AuthClientSession>(std::move(sock), engine, cfg_, std::move(peer), slot_)->start();
        } else if (cfg_.role == config::Role::Saslauthd) {
            start_saslauthd_session(std::move(sock), engine, cfg_, std::move(peer), slot_);
        } else {
            start_master_session(std::move(sock), engine, cfg_, std::move(peer), slot_);
        }
    }
}

Result<std::vector<std::unique_ptr<Listener>>> bind_all(asio::io_context& io, const config::Config& cfg) {
    std::vector<std::unique_ptr<Listener>> out;
    for (const auto& l : cfg.listeners) {
        auto acc = l.type == config::Listener::Type::Unix ? bind_unix(io, l) : bind_tcp(io, l);
        if (!acc) return fail(acc.error().message);
        out.push_back(std::make_unique<Listener>(std::move(*acc), l));
    }
    return out;
}

}  // namespace postern::server
