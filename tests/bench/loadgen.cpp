// loadgen — load generator for auth-client servers (postern, Dovecot auth).
// Speaks the auth-client protocol (docs: auth-protocol.md §2–3): handshake, then
// pipelined AUTH PLAIN with an initial response, replies matched by id.
//
// One thread, epoll, non-blocking sockets: the generator uses at most one core, so
// on a small machine it leaves the rest to the server under test.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

// The server side closes a connection whose line does not fit in 16384 bytes
// (auth-protocol.md §2); no reply we expect comes near this.
constexpr std::size_t kMaxLineLength = 16384;
// Time allowed for connect + handshake of every connection.
constexpr double kHandshakeTimeoutS = 10.0;
// After the measurement, how long outstanding requests may take to come back.
constexpr double kDrainTimeoutS = 5.0;
constexpr std::size_t kReadChunk = 65536;

struct Options {
    std::string socket_path;
    std::string tcp_host;
    std::string tcp_port;
    int connections = 1;
    int inflight = 1;
    double duration_s = 5.0;
    double warmup_s = 0.5;
    std::uint64_t requests = 0;  // 0 = run for duration_s
    std::string users_file;
    double wrong_ratio = 0.0;
    std::string label = "run";
    std::string service = "smtp";
    bool no_penalty = false;
    std::uint64_t seed = 1;
    bool mix = false;          // rotate good, wrong, unknown user, bad base64, malformed PLAIN
    bool tempfail_ok = false;  // a temp-fail for a right password is not unexpected (fault tests)
};

struct Credential {
    std::string good_tail;  // "PLAIN\tservice=...\tresp=<b64>" with the right password
    std::string bad_tail;   // same with a wrong password
    std::string unknown_tail;    // --mix: a user that does not exist
    std::string badb64_tail;     // --mix: resp= that is not base64
    std::string malformed_tail;  // --mix: a PLAIN message without its NULs
};

struct Pending {
    Clock::time_point sent;
    bool expect_ok;
};

enum class ConnState { Connecting, Handshake, Ready, Dead };

struct Conn {
    int fd = -1;
    ConnState state = ConnState::Connecting;
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    bool want_write = false;
    std::uint32_t next_id = 1;
    bool saw_plain = false;
    std::unordered_map<std::uint32_t, Pending> pending;
};

struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t ok = 0;        // replies counted in the measurement window
    std::uint64_t fail = 0;
    std::uint64_t unexpected = 0;  // OK for a wrong password, FAIL for a right one
    std::uint64_t wrong_ok = 0;    // OK for a request that must fail
    std::uint64_t temp_fail = 0;   // FAIL with code=temp_fail
    std::uint64_t protocol_errors = 0;
    std::uint64_t lost = 0;        // requests on connections that died
    std::vector<std::uint32_t> latency_us;
};

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "loadgen: %s\n", msg.c_str());
    std::exit(2);
}

void usage(FILE* to) {
    std::fputs(
        "usage: loadgen (--socket PATH | --tcp HOST:PORT) --users FILE [options]\n"
        "  --connections N   parallel connections (default 1)\n"
        "  --inflight K      AUTH requests kept in flight per connection (default 1)\n"
        "  --duration S      measured seconds (default 5)\n"
        "  --warmup S        seconds run before measuring (default 0.5)\n"
        "  --requests N      stop after N replies instead of a duration (no warm-up)\n"
        "  --users FILE      lines of user:password, used in rotation\n"
        "  --wrong-ratio R   fraction of requests sent with a wrong password (0..1)\n"
        "  --service NAME    service= value (default smtp)\n"
        "  --no-penalty      add no-penalty to AUTH (Dovecot skips its penalty delay)\n"
        "  --seed N          seed for choosing wrong passwords (default 1)\n"
        "  --mix             rotate requests: right password, wrong password, unknown user,\n"
        "                    invalid base64, malformed PLAIN message (only the first may succeed)\n"
        "  --tempfail-ok     a temporary failure for a right password is expected (fault tests)\n"
        "  --label TEXT      name printed in the RESULT line\n"
        "Exit status: 0 all replies as expected, 1 errors or unexpected replies, 2 usage.\n",
        to);
}

double parse_double(const char* opt, const char* v) {
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !std::isfinite(d) || d < 0) {
        die(std::string("bad value for ") + opt + ": " + v);
    }
    return d;
}

std::uint64_t parse_uint(const char* opt, const char* v) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
        die(std::string("bad value for ") + opt + ": " + v);
    }
    return n;
}

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        }
        if (a == "--mix") {
            o.mix = true;
            continue;
        }
        if (a == "--tempfail-ok") {
            o.tempfail_ok = true;
            continue;
        }
        if (a == "--no-penalty") {
            o.no_penalty = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            die("missing value for " + std::string(a));
        }
        const char* v = argv[++i];
        if (a == "--socket") {
            o.socket_path = v;
        } else if (a == "--tcp") {
            std::string hp = v;
            auto colon = hp.rfind(':');
            if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size()) {
                die("--tcp wants HOST:PORT");
            }
            o.tcp_host = hp.substr(0, colon);
            if (o.tcp_host.size() > 2 && o.tcp_host.front() == '[' && o.tcp_host.back() == ']') {
                o.tcp_host = o.tcp_host.substr(1, o.tcp_host.size() - 2);
            }
            o.tcp_port = hp.substr(colon + 1);
        } else if (a == "--connections") {
            o.connections = static_cast<int>(parse_uint("--connections", v));
        } else if (a == "--inflight") {
            o.inflight = static_cast<int>(parse_uint("--inflight", v));
        } else if (a == "--duration") {
            o.duration_s = parse_double("--duration", v);
        } else if (a == "--warmup") {
            o.warmup_s = parse_double("--warmup", v);
        } else if (a == "--requests") {
            o.requests = parse_uint("--requests", v);
        } else if (a == "--users") {
            o.users_file = v;
        } else if (a == "--wrong-ratio") {
            o.wrong_ratio = parse_double("--wrong-ratio", v);
        } else if (a == "--service") {
            o.service = v;
        } else if (a == "--seed") {
            o.seed = parse_uint("--seed", v);
        } else if (a == "--label") {
            o.label = v;
        } else {
            usage(stderr);
            die("unknown option " + std::string(a));
        }
    }
    if (o.socket_path.empty() == o.tcp_host.empty()) die("give exactly one of --socket and --tcp");
    if (o.users_file.empty()) die("--users is required");
    if (o.connections < 1 || o.connections > 10000) die("--connections must be 1..10000");
    if (o.inflight < 1 || o.inflight > 100000) die("--inflight must be 1..100000");
    if (o.wrong_ratio > 1.0) die("--wrong-ratio must be within 0..1");
    if (o.requests == 0 && o.duration_s <= 0) die("--duration must be > 0");
    if (o.requests > 0) o.warmup_s = 0;
    if (o.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) die("socket path too long");
    for (const std::string* s : {&o.service, &o.label}) {
        if (s->find_first_of("\t\r\n\x01") != std::string::npos) die("control characters in --service/--label");
    }
    return o;
}

std::string base64(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                          (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t v = std::uint32_t(std::uint8_t(in[i])) << 16;
        if (rest == 2) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

// Reads "user:password" lines; the password is everything after the first ':'.
// Blank lines and lines starting with '#' are skipped.
std::vector<Credential> load_users(const Options& o) {
    std::ifstream f(o.users_file);
    if (!f) die("cannot open users file " + o.users_file);
    std::string params = "PLAIN\tservice=" + o.service + "\tnologin\trip=127.0.0.1\tlip=127.0.0.1";
    if (o.no_penalty) params += "\tno-penalty";
    params += "\tresp=";
    std::vector<Credential> creds;
    std::string line;
    while (std::getline(f, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0) die("bad users line (want user:password): " + line);
        std::string user = line.substr(0, colon);
        std::string pass = line.substr(colon + 1);
        std::string good = std::string(1, '\0') + user + '\0' + pass;
        std::string bad = good + "-wrong";
        std::string unknown = std::string(1, '\0') + "no-such-" + user + '\0' + pass;
        std::string malformed = user + "-" + pass;
        creds.push_back({params + base64(good), params + base64(bad), params + base64(unknown),
                         params + "not*base64!", params + base64(malformed)});
    }
    if (creds.empty()) die("no users in " + o.users_file);
    return creds;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int open_socket(const Options& o) {
    if (!o.socket_path.empty()) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, o.socket_path.c_str(), o.socket_path.size() + 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS &&
            errno != EAGAIN) {
            die("connect " + o.socket_path + ": " + std::strerror(errno));
        }
        return fd;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(o.tcp_host.c_str(), o.tcp_port.c_str(), &hints, &res);
    if (rc != 0) die("resolve " + o.tcp_host + ": " + ::gai_strerror(rc));
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
        die("connect " + o.tcp_host + ":" + o.tcp_port + ": " + std::strerror(errno));
    }
    ::freeaddrinfo(res);
    return fd;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> f;
    std::size_t start = 0;
    for (;;) {
        auto tab = line.find('\t', start);
        if (tab == std::string_view::npos) {
            f.push_back(line.substr(start));
            return f;
        }
        f.push_back(line.substr(start, tab - start));
        start = tab + 1;
    }
}

std::optional<std::uint32_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 0xffffffffu) return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

class LoadGen {
public:
    LoadGen(Options o, std::vector<Credential> creds)
        : o_(std::move(o)), creds_(std::move(creds)), rng_(o_.seed), conns_(std::size_t(o_.connections)) {}

    int run();

private:
    void arm(std::size_t idx);
    void fail_conn(std::size_t idx, const std::string& why);
    void on_readable(std::size_t idx);
    void on_line(std::size_t idx, std::string_view line);
    void on_reply(std::size_t idx, std::string_view cmd, const std::vector<std::string_view>& f);
    void top_up(std::size_t idx);
    void flush(std::size_t idx);
    bool may_send() const;
    void report(double window_s);

    Options o_;
    std::vector<Credential> creds_;
    std::mt19937_64 rng_;
    std::uniform_real_distribution<double> coin_{0.0, 1.0};
    std::size_t next_user_ = 0;
    std::uint64_t next_kind_ = 0;
    std::vector<Conn> conns_;
    int ep_ = -1;
    Stats st_;
    std::uint64_t completed_total_ = 0;  // all replies, for --requests
    bool sending_ = true;
    bool measuring_ = false;
    int ready_ = 0;
    int dead_ = 0;
};

bool LoadGen::may_send() const {
    if (!sending_) return false;
    if (o_.requests > 0) return st_.sent < o_.requests;
    return true;
}

void LoadGen::arm(std::size_t idx) {
    Conn& c = conns_[idx];
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (c.want_write ? EPOLLOUT : 0u);
    ev.data.u64 = idx;
    if (::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) < 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
}

void LoadGen::fail_conn(std::size_t idx, const std::string& why) {
    Conn& c = conns_[idx];
    if (c.state == ConnState::Dead) return;
    bool measured_loss = sending_ || measuring_;
    std::fprintf(stderr, "loadgen: connection %zu: %s (%zu requests in flight)\n", idx, why.c_str(),
                 c.pending.size());
    if (measured_loss) {
        ++st_.protocol_errors;
        st_.lost += c.pending.size();
    }
    if (c.state == ConnState::Ready) --ready_;
    c.state = ConnState::Dead;
    ++dead_;
    c.pending.clear();
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
}

void LoadGen::flush(std::size_t idx) {
    Conn& c = conns_[idx];
    while (c.out_off < c.out.size()) {
        ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            fail_conn(idx, std::string("send: ") + std::strerror(errno));
            return;
        }
        c.out_off += static_cast<std::size_t>(n);
    }
    if (c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
    }
    bool want = !c.out.empty();
    if (want != c.want_write) {
        c.want_write = want;
        arm(idx);
    }
}

void LoadGen::top_up(std::size_t idx) {
    Conn& c = conns_[idx];
    if (c.state != ConnState::Ready) return;
    auto now = Clock::now();
    while (c.pending.size() < std::size_t(o_.inflight) && may_send()) {
        const Credential& cred = creds_[next_user_];
        next_user_ = (next_user_ + 1) % creds_.size();
        bool wrong = o_.wrong_ratio > 0 && coin_(rng_) < o_.wrong_ratio;
        const std::string* tail = wrong ? &cred.bad_tail : &cred.good_tail;
        if (o_.mix) {
            const std::string* kinds[] = {&cred.good_tail, &cred.bad_tail, &cred.unknown_tail, &cred.badb64_tail,
                                          &cred.malformed_tail};
            const std::uint64_t k = next_kind_++ % 5;
            tail = kinds[k];
            wrong = k != 0;
        }
        std::uint32_t id = c.next_id;
        c.next_id = c.next_id == 0xffffffffu ? 1 : c.next_id + 1;
        c.out += "AUTH\t";
        c.out += std::to_string(id);
        c.out += '\t';
        c.out += *tail;
        c.out += '\n';
        c.pending.emplace(id, Pending{now, !wrong});
        ++st_.sent;
    }
    flush(idx);
}

void LoadGen::on_reply(std::size_t idx, std::string_view cmd, const std::vector<std::string_view>& f) {
    Conn& c = conns_[idx];
    auto id = f.size() >= 2 ? parse_id(f[1]) : std::nullopt;
    if (!id) {
        fail_conn(idx, "reply without a valid id: " + std::string(cmd));
        return;
    }
    auto it = c.pending.find(*id);
    if (it == c.pending.end()) {
        fail_conn(idx, "reply for unknown id " + std::to_string(*id));
        return;
    }
    Pending p = it->second;
    c.pending.erase(it);
    ++completed_total_;
    if (cmd == "CONT") {
        // PLAIN with an initial response should never get a challenge; cancel it.
        if (measuring_) ++st_.protocol_errors;
        c.out += "CANCEL\t" + std::to_string(*id) + "\n";
        return;
    }
    if (!measuring_) return;
    bool ok = cmd == "OK";
    (ok ? st_.ok : st_.fail) += 1;
    bool temp = false;
    if (!ok) {
        for (std::size_t i = 2; i < f.size(); ++i) {
            if (f[i] == "code=temp_fail" || f[i] == "temp") temp = true;
        }
        if (temp) ++st_.temp_fail;
    }
    if (ok && !p.expect_ok) ++st_.wrong_ok;
    if (ok != p.expect_ok && !(temp && o_.tempfail_ok)) ++st_.unexpected;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p.sent).count();
    st_.latency_us.push_back(static_cast<std::uint32_t>(std::min<long long>(us, 0xffffffffLL)));
}

void LoadGen::on_line(std::size_t idx, std::string_view line) {
    Conn& c = conns_[idx];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto f = split_tabs(line);
    std::string_view cmd = f[0];
    if (c.state == ConnState::Handshake) {
        if (cmd == "VERSION") {
            if (f.size() < 3 || f[1] != "1") fail_conn(idx, "unsupported server VERSION: " + std::string(line));
        } else if (cmd == "MECH") {
            if (f.size() >= 2 && (f[1] == "PLAIN" || f[1] == "plain")) c.saw_plain = true;
        } else if (cmd == "DONE") {
            if (!c.saw_plain) {
                fail_conn(idx, "server does not offer PLAIN");
                return;
            }
            c.state = ConnState::Ready;
            ++ready_;
        }
        // SPID, CUID, COOKIE and unknown handshake lines need no action.
        return;
    }
    if (cmd == "OK" || cmd == "FAIL" || cmd == "CONT") {
        on_reply(idx, cmd, f);
    } else {
        fail_conn(idx, "unexpected line: " + std::string(line.substr(0, 80)));
    }
}

void LoadGen::on_readable(std::size_t idx) {
    Conn& c = conns_[idx];
    char buf[kReadChunk];
    for (;;) {
        ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            fail_conn(idx, std::string("recv: ") + std::strerror(errno));
            return;
        }
        if (n == 0) {
            fail_conn(idx, "server closed the connection");
            return;
        }
        c.in.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) break;
    }
    std::size_t start = 0;
    for (;;) {
        auto nl = c.in.find('\n', start);
        if (nl == std::string::npos) break;
        on_line(idx, std::string_view(c.in).substr(start, nl - start));
        if (c.state == ConnState::Dead) return;
        start = nl + 1;
    }
    c.in.erase(0, start);
    if (c.in.size() > kMaxLineLength) fail_conn(idx, "server line too long");
}

int LoadGen::run() {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    std::string hello = "VERSION\t1\t2\nCPID\t" + std::to_string(::getpid()) + "\n";
    for (std::size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        c.fd = open_socket(o_);
        c.state = ConnState::Handshake;
        // Like Postfix and Dovecot's lib-auth: send VERSION and CPID at once, without
        // waiting for the server's DONE.
        c.out = hello;
        c.want_write = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
        ev.data.u64 = i;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
    }

    std::vector<epoll_event> events(conns_.size() + 1);
    auto hs_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(kHandshakeTimeoutS));
    // Handshake phase.
    while (ready_ + dead_ < o_.connections) {
        auto left = hs_deadline - Clock::now();
        if (left <= Clock::duration::zero()) die("handshake timed out");
        int n = ::epoll_wait(ep_, events.data(), int(events.size()),
                             int(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()) + 1);
        if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
        for (int i = 0; i < n; ++i) {
            std::size_t idx = events[std::size_t(i)].data.u64;
            if (conns_[idx].state == ConnState::Dead) continue;
            if (events[std::size_t(i)].events & EPOLLOUT) flush(idx);
            if (conns_[idx].state == ConnState::Dead) continue;
            if (events[std::size_t(i)].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(idx);
        }
    }
    if (ready_ == 0) die("no connection completed the handshake");

    auto t_start = Clock::now();
    auto t_measure = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.warmup_s));
    auto t_end = t_measure + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.duration_s));
    measuring_ = o_.warmup_s <= 0;
    Clock::time_point measure_began = t_start;
    for (std::size_t i = 0; i < conns_.size(); ++i) top_up(i);

    Clock::time_point drain_deadline{};
    Clock::time_point measure_ended{};
    for (;;) {
        auto now = Clock::now();
        if (!measuring_ && sending_ && now >= t_measure) {
            measuring_ = true;
            measure_began = now;
        }
        bool done_by_time = o_.requests == 0 && now >= t_end;
        bool done_by_count = o_.requests > 0 && completed_total_ >= o_.requests;
        if (sending_ && (done_by_time || done_by_count || ready_ == 0)) {
            sending_ = false;
            measuring_ = false;
            measure_ended = now;
            drain_deadline = now + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(kDrainTimeoutS));
        }
        if (!sending_) {
            bool empty = true;
            for (const Conn& c : conns_) {
                if (c.state != ConnState::Dead && !c.pending.empty()) empty = false;
            }
            if (empty || now >= drain_deadline) break;
        }
        int timeout_ms = 100;
        if (sending_ && o_.requests == 0) {
            auto next = measuring_ ? t_end : t_measure;
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
            timeout_ms = int(std::clamp<long long>(ms, 0, 100));
        }
        int n = ::epoll_wait(ep_, events.data(), int(events.size()), timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            die(std::string("epoll_wait: ") + std::strerror(errno));
        }
        for (int i = 0; i < n; ++i) {
            std::size_t idx = events[std::size_t(i)].data.u64;
            std::uint32_t evs = events[std::size_t(i)].events;
            if (conns_[idx].state == ConnState::Dead) continue;
            if (evs & EPOLLOUT) flush(idx);
            if (conns_[idx].state == ConnState::Dead) continue;
            if (evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(idx);
            if (conns_[idx].state == ConnState::Dead) continue;
            top_up(idx);
        }
    }
    double window = seconds(measure_ended - measure_began);
    for (Conn& c : conns_) {
        if (c.fd >= 0) ::close(c.fd);
        c.fd = -1;
    }
    ::close(ep_);
    report(window);
    // Every request sent got its reply (warm-up and drain included).
    bool clean = st_.protocol_errors == 0 && st_.unexpected == 0 && st_.wrong_ok == 0 && st_.lost == 0 &&
                 completed_total_ == st_.sent && (st_.ok + st_.fail) > 0;
    return clean ? 0 : 1;
}

double percentile_ms(const std::vector<std::uint32_t>& sorted, double q) {
    if (sorted.empty()) return 0.0;
    // Nearest-rank percentile.
    auto rank = static_cast<std::size_t>(std::ceil(q * double(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1] / 1000.0;
}

void LoadGen::report(double window_s) {
    auto& lat = st_.latency_us;
    std::sort(lat.begin(), lat.end());
    std::uint64_t replies = st_.ok + st_.fail;
    double rate = window_s > 0 ? double(replies) / window_s : 0.0;
    double p50 = percentile_ms(lat, 0.50);
    double p99 = percentile_ms(lat, 0.99);
    double mx = lat.empty() ? 0.0 : lat.back() / 1000.0;
    std::printf("%s: %d conn x %d in flight, %.2f s measured\n", o_.label.c_str(), o_.connections, o_.inflight,
                window_s);
    std::printf("  requests %" PRIu64 "  ok %" PRIu64 "  fail %" PRIu64 "  unexpected %" PRIu64
                "  wrong_ok %" PRIu64 "  temp_fail %" PRIu64 "  errors %" PRIu64 "  lost %" PRIu64 "\n",
                replies, st_.ok, st_.fail, st_.unexpected, st_.wrong_ok, st_.temp_fail, st_.protocol_errors + st_.lost,
                st_.sent - completed_total_);
    std::printf("  %.0f auths/s  latency ms: p50 %.3f  p99 %.3f  max %.3f\n", rate, p50, p99, mx);
    std::printf("RESULT label=%s conns=%d inflight=%d duration_s=%.3f requests=%" PRIu64 " ok=%" PRIu64
                " fail=%" PRIu64 " unexpected=%" PRIu64 " wrong_ok=%" PRIu64 " temp_fail=%" PRIu64 " errors=%" PRIu64
                " sent=%" PRIu64 " answered=%" PRIu64 " auths_per_s=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
                o_.label.c_str(), o_.connections, o_.inflight, window_s, replies, st_.ok, st_.fail, st_.unexpected,
                st_.wrong_ok, st_.temp_fail, st_.protocol_errors + st_.lost, st_.sent, completed_total_, rate,
                p50, p99, mx);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    Options o = parse_args(argc, argv);
    auto creds = load_users(o);
    LoadGen gen(std::move(o), std::move(creds));
    return gen.run();
}
