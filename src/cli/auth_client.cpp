// Blocking auth-client protocol client.
#include "cli/auth_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace postern::cli {

AuthConnection::~AuthConnection() {
    if (fd_ >= 0) ::close(fd_);
}

Result<AuthConnection*> AuthConnection::connect(const std::string& target, int timeout_seconds) {
    std::string t = target;
    int fd = -1;
    if (t.rfind("inet:", 0) == 0) t = t.substr(5);
    const auto colon = t.rfind(':');
    const bool tcp = t.find('/') == std::string::npos && colon != std::string::npos;
    if (tcp) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string host = t.substr(0, colon);
        if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        if (::getaddrinfo(host.c_str(), t.substr(colon + 1).c_str(), &hints, &res) != 0 || !res)
            return fail("cannot resolve " + target);
        fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
            std::string err = std::strerror(errno);
            ::freeaddrinfo(res);
            if (fd >= 0) ::close(fd);
            return fail("connect " + target + ": " + err);
        }
        ::freeaddrinfo(res);
    } else {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (t.size() >= sizeof sa.sun_path) return fail("socket path too long");
        std::memcpy(sa.sun_path, t.c_str(), t.size());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            std::string err = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return fail("connect " + target + ": " + err);
        }
    }
    timeval tv{};
    tv.tv_sec = timeout_seconds;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return new AuthConnection(fd);
}

Result<void> AuthConnection::send_line(const std::string& line) {
    std::string l = line + "\n";
    const char* p = l.data();
    std::size_t left = l.size();
    while (left > 0) {
        const ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return fail(std::string("write: ") + std::strerror(errno));
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::string> AuthConnection::read_line() {
    for (;;) {
        const auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return line;
        }
        if (buf_.size() > 65536) return fail("server sent an overlong line");
        char tmp[4096];
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n == 0) return fail("connection closed by the server");
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return fail("timed out waiting for the server");
            return fail(std::string("read: ") + std::strerror(errno));
        }
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

Result<void> AuthConnection::handshake() {
    bool version = false;
    for (;;) {
        auto line = read_line();
        if (!line) return fail(line.error().message);
        if (line->rfind("VERSION\t", 0) == 0) {
            if (line->rfind("VERSION\t1\t", 0) != 0) return fail("server speaks an unsupported protocol version");
            version = true;
        } else if (line->rfind("MECH\t", 0) == 0) {
            mechs_.push_back(line->substr(5));
        } else if (line->rfind("SPID\t", 0) == 0 && mechs_.empty()) {
            return fail("this is not an auth-client socket (SPID before any MECH: a master socket?)");
        } else if (*line == "DONE") {
            break;
        }
    }
    if (!version) return fail("server sent no VERSION");
    if (auto r = send_line("VERSION\t1\t2"); !r) return r;
    return send_line("CPID\t" + std::to_string(::getpid()));
}

}  // namespace postern::cli
