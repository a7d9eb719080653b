// limit_server — the cheapest auth-client responder this machine can run, as a
// yardstick for the cheap-path benchmark cases: it sends the handshake, then
// answers every AUTH with "OK\t<id>" without looking at the mechanism data.
// One thread and epoll, like posternd's event loop, so the figure it reaches
// with the same load generator is what the sockets and the loop allow here.
//
//   limit_server SOCKET_PATH     (serves until SIGTERM or SIGINT)
//
// Standalone (no project libraries), like loadgen.

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

constexpr std::size_t kMaxLine = 16384;
constexpr std::size_t kReadChunk = 65536;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "limit_server: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

struct Conn {
    std::string in;
    std::string out;
};

// Appends the replies for every complete line in c.in; false when a line is
// longer than the protocol allows (the connection is closed, as a server would).
bool answer(Conn& c) {
    std::size_t start = 0;
    for (;;) {
        const std::size_t nl = c.in.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(c.in.data() + start, nl - start);
        start = nl + 1;
        if (line.size() < 5 || line.substr(0, 5) != "AUTH\t") continue;  // VERSION, CPID
        line.remove_prefix(5);
        const std::string_view id = line.substr(0, line.find('\t'));
        c.out.append("OK\t").append(id).push_back('\n');
    }
    c.in.erase(0, start);
    return c.in.size() <= kMaxLine;
}

// Writes what it can; false on a broken connection.
bool flush(int fd, Conn& c) {
    while (!c.out.empty()) {
        const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: limit_server SOCKET_PATH\n");
        return 2;
    }
    const std::string path = argv[1];
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    const int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        std::fprintf(stderr, "limit_server: socket path too long\n");
        return 2;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
    ::chmod(path.c_str(), 0666);
    if (::listen(lfd, 1024) != 0) die("listen");

    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl");

    std::unordered_map<int, Conn> conns;
    unsigned cuid = 0;
    char buf[kReadChunk];
    epoll_event events[256];
    while (!g_stop) {
        const int n = ::epoll_wait(ep, events, 256, 200);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    Conn& c = conns[cfd];
                    c.out = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t" + std::to_string(::getpid()) +
                            "\nCUID\t" + std::to_string(++cuid) +
                            "\nCOOKIE\t0123456789abcdef0123456789abcdef\nDONE\n";
                    epoll_event cev{};
                    cev.events = EPOLLIN | EPOLLOUT | EPOLLET;
                    cev.data.fd = cfd;
                    if (::epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) != 0) die("epoll_ctl");
                }
                continue;
            }
            auto it = conns.find(fd);
            if (it == conns.end()) continue;
            Conn& c = it->second;
            bool alive = true;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        c.in.append(buf, static_cast<std::size_t>(r));
                        continue;
                    }
                    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) alive = false;
                    break;
                }
                if (!answer(c)) alive = false;
            }
            if (alive) alive = flush(fd, c);
            if (!alive) {
                ::close(fd);
                conns.erase(it);
            }
        }
    }
    for (auto& [fd, c] : conns) ::close(fd);
    ::close(lfd);
    ::unlink(path.c_str());
    return 0;
}
