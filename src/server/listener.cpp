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
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstddef>
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

// The configured owner of a unix socket; -1 for what is not configured
// (chown leaves it as it is).
struct Owner {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    bool any() const { return uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1); }
};

Result<Owner> socket_owner(const config::Listener& l) {
    Owner o;
    if (!l.user.empty()) {
        auto uid = lookup_uid(l.user);
        if (!uid) return fail(l.describe() + ": unknown user \"" + l.user + "\"");
        o.uid = *uid;
    }
    if (!l.group.empty()) {
        auto gid = lookup_gid(l.group);
        if (!gid) return fail(l.describe() + ": unknown group \"" + l.group + "\"");
        o.gid = *gid;
    }
    return o;
}

Result<void> set_owner(const config::Listener& l, const Owner& o) {
    if (o.any() && ::chown(l.path.c_str(), o.uid, o.gid) != 0) return fail(l.describe() + ": chown: " + std::strerror(errno));
    return {};
}

Result<void> set_mode(const config::Listener& l) {
    if (::chmod(l.path.c_str(), l.mode.value_or(0600)) != 0) return fail(l.describe() + ": chmod: " + std::strerror(errno));
    return {};
}

Result<Listener::Acceptor> bind_unix(asio::io_context& io, const config::Listener& l) {
    struct stat st {};
    if (::lstat(l.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return fail(l.describe() + ": path exists and is not a socket");
        if (socket_in_use(l.path)) return fail(l.describe() + ": another process is listening on it");
        ::unlink(l.path.c_str());
    }
    const auto owner = socket_owner(l);
    if (!owner) return fail(owner.error().message);

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
    if (auto r = set_owner(l, *owner); !r) return fail(r.error().message);
    if (auto r = set_mode(l); !r) return fail(r.error().message);
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

// What a passed descriptor is bound to, read with getsockname().
struct BoundAddress {
    int family = AF_UNSPEC;
    std::string path;        // AF_UNIX
    asio::ip::address ip;    // AF_INET, AF_INET6
    unsigned short port = 0;
    std::string describe() const {
        if (family == AF_UNIX) return "unix:" + path;
        if (family == AF_INET || family == AF_INET6) return "tcp:" + ip.to_string() + ":" + std::to_string(port);
        return "family " + std::to_string(family);
    }
};

BoundAddress bound_address(int fd) {
    BoundAddress b;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return b;
    b.family = ss.ss_family;
    if (ss.ss_family == AF_UNIX) {
        const auto* su = reinterpret_cast<const sockaddr_un*>(&ss);
        const std::size_t off = offsetof(sockaddr_un, sun_path);
        if (len > off) b.path.assign(su->sun_path, strnlen(su->sun_path, len - off));
    } else if (ss.ss_family == AF_INET) {
        const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
        asio::ip::address_v4::bytes_type bytes;
        std::memcpy(bytes.data(), &s4->sin_addr, bytes.size());
        b.ip = asio::ip::address_v4(bytes);
        b.port = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &s6->sin6_addr, bytes.size());
        b.ip = asio::ip::address_v6(bytes, s6->sin6_scope_id);
        b.port = ntohs(s6->sin6_port);
    }
    return b;
}

bool same_address(const BoundAddress& b, const config::Listener& l) {
    if (l.type == config::Listener::Type::Unix) return b.family == AF_UNIX && b.path == l.path;
    if (b.family != AF_INET && b.family != AF_INET6) return false;
    asio::error_code ec;
    const auto want = asio::ip::make_address(l.host, ec);
    return !ec && want == b.ip && l.port == b.port;
}

// Wraps a passed descriptor matched to l; closes it on error.
Result<Listener::Acceptor> adopt(asio::io_context& io, const config::Listener& l, int fd, const BoundAddress& b) {
    const bool unix_wanted = l.type == config::Listener::Type::Unix;
    const bool family_ok = unix_wanted ? b.family == AF_UNIX : (b.family == AF_INET || b.family == AF_INET6);
    if (!family_ok || !systemd::is_listening_stream(fd)) {
        ::close(fd);
        return fail(l.describe() + ": the socket systemd passed (" + b.describe() +
                    ") is not a listening " + (unix_wanted ? "unix" : "TCP") + " stream socket");
    }
    int proto = 0;
    socklen_t plen = sizeof proto;
    if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) != 0) proto = 0;
    Listener::Acceptor acc(io);
    asio::error_code ec;
    acc.assign(asio::generic::stream_protocol(b.family, proto), fd, ec);
    if (ec) {
        ::close(fd);
        return fail(l.describe() + ": adopting the socket systemd passed: " + ec.message());
    }
    return acc;
}

struct SessionHold {
    std::shared_ptr<const void> slot;
    std::shared_ptr<const config::Listener> cfg;
};

}  // namespace

void Listener::start(auth::CurrentEngine& engine) {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(engine), LogExceptions{"listener"});
}

void Listener::stop() {
    asio::error_code ec;
    acceptor_.close(ec);
    if (cfg_->type == config::Listener::Type::Unix && !passed_) ::unlink(cfg_->path.c_str());
}

asio::awaitable<void> Listener::accept_loop(auth::CurrentEngine& engine) {
    std::size_t n = 0;
    for (;;) {
        asio::error_code ec;
        Socket sock = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            // EMFILE and friends: back off briefly instead of spinning.
            log::warning("{}: accept: {}", cfg_->describe(), ec.message());
            asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        const long long limit = cfg_->max_connections > 0 ? cfg_->max_connections : kDefaultMaxConnections;
        if (slot_.use_count() - 1 >= limit) {
            log::warning("{}: connection limit ({}) reached; refusing a connection", cfg_->describe(), limit);
            sock.close(ec);
            continue;
        }
        std::string peer = cfg_->describe() + "#" + std::to_string(++n);
        // What the session holds: a count for the limit and its settings,
        // which a reload does not take away from under it.
        const auto& cfg = *cfg_;
        std::shared_ptr<const void> hold = std::make_shared<const SessionHold>(SessionHold{slot_, cfg_});
        if (cfg.role == config::Role::Client || cfg.role == config::Role::Login) {
            std::make_shared<AuthClientSession>(std::move(sock), engine, cfg, std::move(peer), std::move(hold))->start();
        } else if (cfg.role == config::Role::Saslauthd) {
            start_saslauthd_session(std::move(sock), engine, cfg, std::move(peer), std::move(hold));
        } else {
            start_master_session(std::move(sock), engine, cfg, std::move(peer), std::move(hold));
        }
    }
}

Result<std::vector<std::unique_ptr<Listener>>> bind_all(asio::io_context& io, const config::Config& cfg,
                                                         std::vector<systemd::PassedFd> passed) {
    // Which passed descriptor serves which listener: by name first, then by
    // address, so FileDescriptorName= wins over a path that moved.
    const std::size_t n = cfg.listeners.size();
    std::vector<int> fd_for(n, -1);
    std::vector<BoundAddress> addr_for(n);
    for (const auto& p : passed) {
        const BoundAddress b = bound_address(p.fd);
        std::size_t match = n;
        for (std::size_t i = 0; i < n && match == n; ++i)
            if (!cfg.listeners[i].name.empty() && cfg.listeners[i].name == p.name) match = i;
        for (std::size_t i = 0; i < n && match == n; ++i)
            if (same_address(b, cfg.listeners[i])) match = i;
        if (match == n || fd_for[match] >= 0) {
            log::warning("systemd passed socket \"{}\" ({}), which {}: closed", log::safe(p.name), log::safe(b.describe()),
                         match == n ? "matches no [[listener]] by name or address"
                                    : "is a second socket for " + cfg.listeners[match].describe());
            ::close(p.fd);
            continue;
        }
        fd_for[match] = p.fd;
        addr_for[match] = b;
    }
    std::vector<std::unique_ptr<Listener>> out;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& l = cfg.listeners[i];
        if (fd_for[i] >= 0) {
            auto acc = adopt(io, l, fd_for[i], addr_for[i]);
            fd_for[i] = -1;
            if (!acc) {
                for (int fd : fd_for)
                    if (fd >= 0) ::close(fd);
                return fail(acc.error().message);
            }
            out.push_back(std::make_unique<Listener>(std::move(*acc), l, true));
            continue;
        }
        auto acc = l.type == config::Listener::Type::Unix ? bind_unix(io, l) : bind_tcp(io, l);
        if (!acc) {
            for (int fd : fd_for)
                if (fd >= 0) ::close(fd);
            return fail(acc.error().message);
        }
        out.push_back(std::make_unique<Listener>(std::move(*acc), l));
    }
    return out;
}

bool same_socket(const config::Listener& a, const config::Listener& b) {
    if (a.type != b.type) return false;
    if (a.type == config::Listener::Type::Unix) return a.path == b.path;
    return a.host == b.host && a.port == b.port;
}

Result<std::unique_ptr<Listener>> bind_one(asio::io_context& io, const config::Listener& l) {
    auto acc = l.type == config::Listener::Type::Unix ? bind_unix(io, l) : bind_tcp(io, l);
    if (!acc) return fail(acc.error().message);
    return std::make_unique<Listener>(std::move(*acc), l);
}

void Listener::reconfigure(const config::Listener& cfg) {
    const config::Listener old = *cfg_;
    cfg_ = std::make_shared<const config::Listener>(cfg);
    if (cfg.type != config::Listener::Type::Unix || passed_) return;
    if (cfg.user != old.user || cfg.group != old.group) {
        auto owner = socket_owner(cfg);
        auto r = owner ? set_owner(cfg, *owner) : Result<void>(fail(owner.error().message));
        if (!r) log::error("{}; the socket's owner is left as it was", log::safe(r.error().message, 1000));
    }
    if (cfg.mode.value_or(0600) != old.mode.value_or(0600))
        if (auto r = set_mode(cfg); !r) log::error("{}; the socket's mode is left as it was", log::safe(r.error().message, 1000));
}

}  // namespace postern::server
