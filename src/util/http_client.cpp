// libcurl multi-socket on Asio: curl tells us which sockets to watch
// (CURLMOPT_SOCKETFUNCTION) and when to call back (CURLMOPT_TIMERFUNCTION);
// Asio waits and we hand readiness to curl_multi_socket_action.
//
// Sockets are watched through a dup of curl's descriptor, so curl closing its
// own never closes one Asio still holds (nor the other way round). Asio's
// epoll is edge-triggered and async_wait completes only on a new edge, while
// curl expects to be told a socket is readable for as long as it is: before
// each wait the socket is polled once, and if it is ready already curl is
// called at once.
#include "util/http_client.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>

#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "util/deadline.hpp"

namespace postern::http {

std::string_view to_string(Outcome o) {
    switch (o) {
        case Outcome::Ok: return "ok";
        case Outcome::ConnectFailed: return "connect failed";
        case Outcome::Timeout: return "timeout";
        case Outcome::TooLarge: return "response too large";
        case Outcome::TlsFailed: return "TLS failed";
        case Outcome::Failed: return "failed";
        case Outcome::Cancelled: return "cancelled";
    }
    return "?";
}

namespace {

// stats(): counted on the loops of every client.
std::atomic<std::uint64_t> g_transfers{0}, g_new_connections{0}, g_connect_failures{0};

// Idle connections kept for reuse, over all servers of one io_context.
constexpr long kMaxCachedConnections = 64;

struct Socket {
    explicit Socket(const asio::any_io_executor& ex) : desc(ex) {}
    asio::posix::stream_descriptor desc;  // on our dup of fd
    curl_socket_t fd = CURL_SOCKET_BAD;   // curl's descriptor (what socket_action is told)
    int want = 0;                         // CURL_POLL_IN / OUT / INOUT
    bool reading = false;
    bool writing = false;
    bool closed = false;
};

struct Transfer {
    explicit Transfer(const asio::any_io_executor& ex) : finished(ex) {}
    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
    }
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    Secret body;
    std::string response;
    std::size_t max_body = kDefaultMaxBody;
    bool too_large = false;
    char errbuf[CURL_ERROR_SIZE] = {};
    bool in_multi = false;
    bool done = false;
    CURLcode result = CURLE_OK;
    Event finished;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t len = size * n;
    if (t->response.size() + len > t->max_body) {
        t->too_large = true;
        return 0;  // CURLE_WRITE_ERROR: the transfer stops here
    }
    t->response.append(data, len);
    return len;
}

bool ready_now(int fd, bool read) {
    pollfd p{fd, static_cast<short>(read ? POLLIN : POLLOUT), 0};
    return ::poll(&p, 1, 0) > 0 && p.revents != 0;
}

Outcome classify(CURLcode c, bool too_large) {
    switch (c) {
        case CURLE_OK: return Outcome::Ok;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: return Outcome::ConnectFailed;
        case CURLE_OPERATION_TIMEDOUT: return Outcome::Timeout;
        case CURLE_FILESIZE_EXCEEDED: return Outcome::TooLarge;
        case CURLE_WRITE_ERROR: return too_large ? Outcome::TooLarge : Outcome::Failed;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CRL_BADFILE: return Outcome::TlsFailed;
        default: return Outcome::Failed;
    }
}

}  // namespace

struct HttpClient::Impl : std::enable_shared_from_this<Impl> {
    explicit Impl(asio::any_io_executor e) : ex(std::move(e)), timer(ex) {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        multi = curl_multi_init();
        if (!multi) throw std::bad_alloc();
        curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, kMaxCachedConnections);
    }

    void shutdown() {
        closing = true;
        for (auto& [easy, t] : transfers)
            if (t->in_multi) {
                curl_multi_remove_handle(multi, easy);
                t->in_multi = false;
            }
        transfers.clear();
        curl_multi_cleanup(multi);
        multi = nullptr;
        for (auto& [fd, s] : sockets) {
            s->closed = true;
            asio::error_code ec;
            s->desc.close(ec);
        }
        sockets.clear();
        timer.cancel();
    }

    static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
        auto* self = static_cast<Impl*>(userp);
        if (self->closing) return 0;
        if (what == CURL_POLL_REMOVE) {
            auto it = self->sockets.find(fd);
            if (it != self->sockets.end()) {
                it->second->closed = true;
                asio::error_code ec;
                it->second->desc.close(ec);  // closes our dup only; pending waits end aborted
                self->sockets.erase(it);
            }
            return 0;
        }
        auto& s = self->sockets[fd];
        if (!s) {
            const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                self->sockets.erase(fd);
                return -1;
            }
            auto fresh = std::make_shared<Socket>(self->ex);
            asio::error_code ec;
            fresh->desc.assign(copy, ec);
            if (ec) {
                ::close(copy);
                self->sockets.erase(fd);
                return -1;
            }
            fresh->fd = fd;
            s = std::move(fresh);
        }
        s->want = what;
        self->arm(s);
        return 0;
    }

    static int on_timer(CURLM*, long ms, void* userp) {
        auto* self = static_cast<Impl*>(userp);
        if (self->closing) return 0;
        if (ms < 0) {
            self->timer.cancel();
            return 0;
        }
        // Never socket_action from inside a callback: even "now" goes through the loop.
        self->timer.expires_after(std::chrono::milliseconds(ms));
        self->timer.async_wait(TimerFired{self->weak_from_this()});
        return 0;
    }

    struct TimerFired {
        std::weak_ptr<Impl> self;
        void operator()(const asio::error_code& ec) const {
            if (ec) return;  // replaced or cancelled
            auto impl = self.lock();
            if (impl && !impl->closing) impl->action(CURL_SOCKET_TIMEOUT, 0);
        }
    };

    struct Ready {
        std::weak_ptr<Impl> self;
        std::shared_ptr<Socket> s;
        bool read;
        void operator()(const asio::error_code& ec) const {
            (read ? s->reading : s->writing) = false;
            if (s->closed) return;
            auto impl = self.lock();
            if (!impl || impl->closing) return;
            if (!(s->want & (read ? CURL_POLL_IN : CURL_POLL_OUT))) return;  // no longer wanted
            impl->action(s->fd, ec ? CURL_CSELECT_ERR : (read ? CURL_CSELECT_IN : CURL_CSELECT_OUT));
            if (!s->closed) impl->arm(s);
        }
    };

    void arm(const std::shared_ptr<Socket>& s) {
        if ((s->want & CURL_POLL_IN) && !s->reading) wait(s, true);
        if ((s->want & CURL_POLL_OUT) && !s->writing) wait(s, false);
    }

    void wait(const std::shared_ptr<Socket>& s, bool read) {
        (read ? s->reading : s->writing) = true;
        Ready handler{weak_from_this(), s, read};
        if (ready_now(s->desc.native_handle(), read)) {
            asio::post(ex, [handler] { handler(asio::error_code()); });
            return;
        }
        s->desc.async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                           handler);
    }

    void action(curl_socket_t fd, int events) {
        int running = 0;
        curl_multi_socket_action(multi, fd, events, &running);
        collect();
    }

    // Finished transfers leave the multi handle (their connection goes back
    // to the cache) and wake their perform().
    void collect() {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL* easy = msg->easy_handle;
            const CURLcode result = msg->data.result;
            auto it = transfers.find(easy);
            curl_multi_remove_handle(multi, easy);
            if (it == transfers.end()) continue;
            it->second->in_multi = false;
            it->second->result = result;
            it->second->done = true;
            it->second->finished.set();
        }
    }

    void drop(const std::shared_ptr<Transfer>& t) {
        if (t->in_multi) {
            curl_multi_remove_handle(multi, t->easy);
            t->in_multi = false;
        }
        transfers.erase(t->easy);
    }

    // Options for one transfer; "" or why it cannot be made.
    std::string setup(Transfer& t, Request& req) {
        if (!req.url.starts_with("http://") && !req.url.starts_with("https://"))
            return "only http:// and https:// URLs";
        t.easy = curl_easy_init();
        if (!t.easy) return "curl_easy_init failed";
        CURL* e = t.easy;
        t.max_body = req.max_body;
        t.body = std::move(req.body);
        bool ok = true;
        auto set = [&ok](CURLcode c) { ok = ok && c == CURLE_OK; };
        set(curl_easy_setopt(e, CURLOPT_URL, req.url.c_str()));
        set(curl_easy_setopt(e, CURLOPT_PRIVATE, &t));
        set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
        set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
        set(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));  // a redirect is an answer, never followed
        set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count())));
        set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                             static_cast<long>(std::min(req.connect_timeout, req.timeout).count())));
        set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf));
        set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body));
        set(curl_easy_setopt(e, CURLOPT_WRITEDATA, &t));
        set(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_body)));
        set(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
        for (const auto& h : req.headers) t.headers = curl_slist_append(t.headers, h.c_str());
        // No "Expect: 100-continue" wait on larger bodies.
        t.headers = curl_slist_append(t.headers, "Expect:");
        if (!t.headers) return "out of memory";
        set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers));
        if (req.method == "GET") {
            set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
        } else if (req.method == "POST" || req.method == "PUT") {
            set(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body.size())));
            set(curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.body.view().data()));
            if (req.method == "PUT") set(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT"));
        } else {
            return "method must be GET, POST or PUT";
        }
        if (!req.unix_socket.empty()) set(curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str()));
        if (!req.ca_file.empty()) set(curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str()));
        if (!req.client_cert.empty()) set(curl_easy_setopt(e, CURLOPT_SSLCERT, req.client_cert.c_str()));
        if (!req.client_key.empty()) set(curl_easy_setopt(e, CURLOPT_SSLKEY, req.client_key.c_str()));
        set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req.verify_peer ? 1L : 0L));
        set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req.verify_peer ? 2L : 0L));
        if (!ok) return "libcurl refused an option (too old a libcurl?)";
        return {};
    }

    Response finish(Transfer& t) {
        Response r;
        r.outcome = classify(t.result, t.too_large);
        long made = 0;
        if (curl_easy_getinfo(t.easy, CURLINFO_NUM_CONNECTS, &made) == CURLE_OK && made > 0)
            g_new_connections += static_cast<std::uint64_t>(made);
        ++g_transfers;
        if (r.outcome == Outcome::ConnectFailed) ++g_connect_failures;
        if (r.outcome == Outcome::Ok) {
            curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &r.status);
            r.body = std::move(t.response);
            curl_header* h = nullptr;
            if (curl_easy_header(t.easy, "Cache-Control", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value)
                r.cache_control = h->value;
            return r;
        }
        r.error = t.errbuf[0] ? std::string(t.errbuf) : std::string(curl_easy_strerror(t.result));
        if (t.too_large) r.error = "response body over " + std::to_string(t.max_body) + " bytes";
        return r;
    }

    asio::any_io_executor ex;
    asio::steady_timer timer;
    CURLM* multi = nullptr;
    bool closing = false;
    std::map<curl_socket_t, std::shared_ptr<Socket>> sockets;
    std::map<CURL*, std::shared_ptr<Transfer>> transfers;
};

namespace {
std::mutex g_clients_mutex;
std::map<const void*, std::weak_ptr<HttpClient>> g_clients;
}  // namespace

Stats stats() {
    Stats s;
    s.transfers = g_transfers;
    s.new_connections = g_new_connections;
    s.connect_failures = g_connect_failures;
    std::lock_guard lock(g_clients_mutex);
    for (const auto& [key, weak] : g_clients)
        if (auto c = weak.lock()) s.sockets += c->sockets();
    return s;
}

std::shared_ptr<HttpClient> HttpClient::shared(const asio::any_io_executor& ex) {
    auto& mutex = g_clients_mutex;
    auto& clients = g_clients;
    const void* key = &asio::query(ex, asio::execution::context);
    std::lock_guard lock(mutex);
    for (auto it = clients.begin(); it != clients.end();) it = it->second.expired() ? clients.erase(it) : std::next(it);
    if (auto c = clients[key].lock()) return c;
    auto c = std::make_shared<HttpClient>(ex);
    clients[key] = c;
    return c;
}

HttpClient::HttpClient(asio::any_io_executor ex) : impl_(std::make_shared<Impl>(std::move(ex))) {}

HttpClient::~HttpClient() { impl_->shutdown(); }

std::size_t HttpClient::transfers() const { return impl_->transfers.size(); }
std::size_t HttpClient::sockets() const { return impl_->sockets.size(); }

asio::awaitable<Response> HttpClient::perform(Request request) {
    auto self = shared_from_this();  // the multi handle outlives this transfer
    auto impl = impl_;
    Response out;
    auto t = std::make_shared<Transfer>(impl->ex);
    const std::string why = impl->setup(*t, request);
    if (!why.empty()) {
        out.error = why;
        co_return out;
    }
    impl->transfers[t->easy] = t;
    const CURLMcode mc = curl_multi_add_handle(impl->multi, t->easy);
    if (mc != CURLM_OK) {
        impl->transfers.erase(t->easy);
        out.error = curl_multi_strerror(mc);
        co_return out;
    }
    t->in_multi = true;
    auto finished = t->finished.wait();
    co_await std::move(finished);
    if (!t->done) {
        // Cancelled from outside: the transfer goes, and its connection with it.
        impl->drop(t);
        out.outcome = Outcome::Cancelled;
        out.error = "cancelled";
        co_return out;
    }
    out = impl->finish(*t);
    impl->transfers.erase(t->easy);
    co_return out;
}

}  // namespace postern::http
