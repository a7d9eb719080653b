// [metrics] endpoint: bind, accept, one GET per connection (see metrics_server.hpp).
#include "server/metrics_server.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/buffers_iterator.hpp>
#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cerrno>
#include <cstring>
#include <utility>

#include "util/deadline.hpp"
#include "util/log.hpp"
#include "util/spawn.hpp"

namespace postern::server {

namespace {

// A scraper gets this long to send its request and to take the answer.
constexpr auto kIoTimeout = std::chrono::seconds(5);
// Scrapers are few; more at once than this are refused at once.
constexpr long kMaxConnections = 32;
// After answering, input still arriving is read and dropped for at most
// this long and this much before the connection is closed.
constexpr auto kDrainTime = std::chrono::seconds(1);
constexpr std::size_t kMaxDrain = 65536;

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 503: return "Service Unavailable";
    }
    return "Error";
}

std::string response(int status, std::string_view content_type, const std::string& body) {
    std::string out = "HTTP/1.0 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
    out += "Content-Type: " + std::string(content_type) + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\n";
    if (status == 405) out += "Allow: GET\r\n";
    out += "\r\n";
    out += body;
    return out;
}

std::string error_response(int status) {
    return response(status, "text/plain; charset=utf-8",
                    std::to_string(status) + " " + std::string(reason_phrase(status)) +
                        (status == 404 ? ": the metrics are at /metrics\n" : "\n"));
}

bool is_token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

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

}  // namespace

int metrics_request_status(std::string_view head) {
    // Lines end in CRLF (or a bare LF, as curl -0 and netcat users send).
    const auto eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // request-line = method SP request-target SP HTTP-version
    const auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return 400;
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos)
        return 400;
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    for (char c : method)
        if (!is_token_char(c)) return 400;
    if (version != "HTTP/1.0" && version != "HTTP/1.1") return 400;
    if (target.front() != '/') return 400;
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return 400;
    // Header lines: name ":" value; no folding, no control bytes but tab.
    std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 1);
    while (!rest.empty()) {
        const auto e = rest.find('\n');
        std::string_view h = rest.substr(0, e);
        rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
        if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
        if (h.empty()) continue;
        const auto colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0) return 400;
        for (char c : h.substr(0, colon))
            if (!is_token_char(c)) return 400;
        for (char c : h.substr(colon + 1))
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return 400;
    }
    if (method != "GET") return 405;
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") return 404;
    return 200;
}

MetricsServer::MetricsServer(Acceptor acceptor, const config::MetricsSettings& cfg)
    : acceptor_(std::move(acceptor)), cfg_(cfg) {
    for (const auto& a : cfg.allow)
        if (auto n = parse_network(a)) allow_.push_back(*n);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::bind(asio::io_context& io, const config::MetricsSettings& cfg) {
    const config::Listener& l = cfg.listener;
    const std::string what = "[metrics] listen " + l.describe();
    Acceptor acc(io);
    asio::error_code ec;
    if (l.type == config::Listener::Type::Tcp) {
        auto addr = asio::ip::make_address(l.host, ec);
        if (ec) return fail(what + ": address must be a numeric IP");
        asio::ip::tcp::endpoint ep(addr, l.port);
        asio::generic::stream_protocol::endpoint gep(ep.data(), ep.size());
        acc.open(gep.protocol(), ec);
        if (ec) return fail(what + ": socket: " + ec.message());
        acc.set_option(asio::socket_base::reuse_address(true), ec);
        acc.bind(gep, ec);
        if (ec) return fail(what + ": bind: " + ec.message());
    } else {
        struct stat st {};
        if (::lstat(l.path.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) return fail(what + ": path exists and is not a socket");
            ::unlink(l.path.c_str());
        }
        std::optional<uid_t> uid;
        std::optional<gid_t> gid;
        if (!l.user.empty() && !(uid = lookup_uid(l.user))) return fail(what + ": unknown user \"" + l.user + "\"");
        if (!l.group.empty() && !(gid = lookup_gid(l.group))) return fail(what + ": unknown group \"" + l.group + "\"");
        asio::local::stream_protocol::endpoint ep(l.path);
        asio::generic::stream_protocol::endpoint gep(ep.data(), ep.size());
        acc.open(gep.protocol(), ec);
        if (ec) return fail(what + ": socket: " + ec.message());
        // Owner-only until the configured owner and mode are set.
        const mode_t old = ::umask(0177);
        acc.bind(gep, ec);
        ::umask(old);
        if (ec) return fail(what + ": bind: " + ec.message());
        if ((uid || gid) &&
            ::chown(l.path.c_str(), uid ? *uid : static_cast<uid_t>(-1), gid ? *gid : static_cast<gid_t>(-1)) != 0)
            return fail(what + ": chown: " + std::strerror(errno));
        if (::chmod(l.path.c_str(), l.mode.value_or(0600)) != 0) return fail(what + ": chmod: " + std::strerror(errno));
    }
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(what + ": listen: " + ec.message());
    return std::make_unique<MetricsServer>(std::move(acc), cfg);
}

void MetricsServer::start(const auth::CurrentEngine& engine, const std::vector<std::unique_ptr<Listener>>& listeners) {
    engine_ = &engine;
    listeners_ = &listeners;
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), LogExceptions{"metrics listener"});
}

void MetricsServer::stop() {
    asio::error_code ec;
    acceptor_.close(ec);
    if (cfg_.listener.type == config::Listener::Type::Unix) ::unlink(cfg_.listener.path.c_str());
}

bool MetricsServer::allowed(const asio::generic::stream_protocol::endpoint& peer) const {
    if (cfg_.listener.type == config::Listener::Type::Unix) return true;  // the socket's mode decides
    char text[INET6_ADDRSTRLEN] = {};
    const auto* sa = peer.data();
    if (sa->sa_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
    else if (sa->sa_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
    else
        return false;
    const auto addr = parse_address(text);
    if (!addr) return false;
    for (const auto& n : allow_)
        if (n.contains(*addr)) return true;
    return false;
}

std::string MetricsServer::scrape() {
    auth::Engine& engine = **engine_;
    auth::Metrics& m = engine.metrics();
    auth::Metrics::Snapshot s;
    if (auto* cache = engine.cache()) {
        const auto& st = cache->stats();
        s.cache_enabled = true;
        s.cache_hits = st.hits;
        s.cache_misses = st.misses;
        s.cache_stale = st.stale_served;
        s.cache_evictions = st.evictions;
        s.cache_entries = st.entries;
        s.cache_bytes = st.bytes;
        s.cache_max_bytes = cache->settings().max_bytes;
    }
    s.penalty_tracked = engine.penalty_tracked();
    BlockingPool& pool = engine.pool();
    s.pool_threads = pool.threads();
    s.pool_busy = pool.busy();
    s.pool_queued = pool.queued();
    s.pool_queue_max = pool.max_queued();
    s.pool_refused = pool.refused();
    s.pool_jobs = pool.completed();
    m.refresh(s);
    std::vector<backend::PoolStats> pools;
    for (const auto* p : backend::live_pools()) pools.push_back(p->stats());
    m.backend_pools(pools, http::stats());
    for (const auto& l : *listeners_) {
        const long long limit = l->config().max_connections > 0 ? l->config().max_connections : kDefaultMaxConnections;
        m.listener_connections(l->config().describe(), l->config().role, l->open_connections(), limit);
    }
    m.listeners_done();
    return m.render();
}

namespace {

struct MetricsConn {
    MetricsConn(asio::generic::stream_protocol::socket s, std::shared_ptr<const void> sl)
        : socket(std::move(s)), buf(kMaxMetricsRequest), slot(std::move(sl)) {}
    asio::generic::stream_protocol::socket socket;
    asio::streambuf buf;
    std::shared_ptr<const void> slot;  // counts the connection against kMaxConnections
};

// The end of a request head: an empty line, CRLF or bare LF.
struct HeadEnd {
    using Iterator = asio::buffers_iterator<asio::streambuf::const_buffers_type>;
    using result_type = std::pair<Iterator, bool>;
    std::pair<Iterator, bool> operator()(Iterator begin, Iterator end) const {
        char prev1 = 0, prev2 = 0;
        for (Iterator i = begin; i != end; ++i) {
            const char ch = *i;
            if (ch == '\n' && (prev1 == '\n' || (prev1 == '\r' && prev2 == '\n'))) return {i + 1, true};
            prev2 = prev1;
            prev1 = ch;
        }
        return {end, false};
    }
};

// The request head, up to and with its empty line; "" when it did not
// come whole (closed early, over kMaxMetricsRequest): answered 400.
asio::awaitable<std::string> read_head(std::shared_ptr<MetricsConn> c) {
    asio::error_code ec;
    const std::size_t n =
        co_await asio::async_read_until(c->socket, c->buf, HeadEnd{}, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::string();
    std::string head(asio::buffers_begin(c->buf.data()), asio::buffers_begin(c->buf.data()) + static_cast<long>(n));
    co_return head;
}

asio::awaitable<void> write_all(std::shared_ptr<MetricsConn> c, std::string data) {
    asio::error_code ec;
    co_await asio::async_write(c->socket, asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

// Reads and drops what the peer still sends after the answer (up to a
// limit), so closing does not reset the connection before the peer has
// read the answer (unread input makes close() send RST).
asio::awaitable<void> drain(std::shared_ptr<MetricsConn> c) {
    char sink[4096];
    std::size_t total = 0;
    while (total < kMaxDrain) {
        asio::error_code ec;
        const std::size_t n =
            co_await c->socket.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        total += n;
    }
}

struct MetricsConnection {
    static asio::awaitable<void> serve(MetricsServer* server, std::shared_ptr<MetricsConn> c, bool allowed) {
        std::string answer;
        const auto read_by = Clock::now() + kIoTimeout;
        asio::awaitable<std::string> read = read_head(c);
        std::optional<std::string> head = co_await with_deadline(std::move(read), read_by);
        if (!head) co_return;  // silent peer: just close
        if (!allowed) {
            answer = error_response(403);
        } else {
            const int status = head->empty() ? 400 : metrics_request_status(*head);
            if (status == 200)
                answer = response(200, "text/plain; version=0.0.4; charset=utf-8", server->scrape());
            else
                answer = error_response(status);
        }
        const auto write_by = Clock::now() + kIoTimeout;
        asio::awaitable<void> write = write_all(c, std::move(answer));
        co_await with_deadline(std::move(write), write_by);
        asio::error_code ec;
        c->socket.shutdown(asio::socket_base::shutdown_send, ec);
        const auto drain_by = Clock::now() + kDrainTime;
        asio::awaitable<void> rest = drain(c);
        co_await with_deadline(std::move(rest), drain_by);
        c->socket.close(ec);
    }
};

asio::awaitable<void> MetricsServer::accept_loop() {
    for (;;) {
        asio::error_code ec;
        asio::generic::stream_protocol::socket sock =
            co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            log::warning("{}: accept: {}", describe(), ec.message());
            asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        if (slot_.use_count() - 1 >= kMaxConnections) {
            sock.close(ec);
            continue;
        }
        const auto peer = sock.remote_endpoint(ec);
        const bool ok = !ec && allowed(peer);
        if (!ok) log::info("{}: refused a scrape from an address outside allow", describe());
        auto c = std::make_shared<MetricsConn>(std::move(sock), slot_);
        asio::co_spawn(acceptor_.get_executor(), MetricsConnection::serve(this, std::move(c), ok),
                       LogExceptions{"metrics connection"});
    }
}

}  // namespace postern::server
