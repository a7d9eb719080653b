// Redis client: hiredis's RESP reader and encoder on Asio sockets (see redis.hpp).
#include "util/redis.hpp"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <deque>

#include "util/deadline.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"
#include "util/spawn.hpp"
#include "util/timeout.hpp"

namespace postern::redis {

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol::socket;

// A reply larger than this breaks the connection (hiredis's own default is
// 16 MiB of unparsed input; nothing postern asks for comes near 1 MiB).
constexpr std::size_t kMaxReaderBuffer = 4 * 1024 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

std::string percent_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            unsigned v = 0;
            auto r = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
            if (r.ec == std::errc() && r.ptr == in.data() + i + 3) {
                out += static_cast<char>(v);
                i += 2;
                continue;
            }
        }
        out += in[i];
    }
    return out;
}

bool parse_uint(std::string_view s, unsigned long max, unsigned long& out) {
    if (s.empty()) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && out <= max;
}

Reply convert(const redisReply* r) {
    Reply out;
    switch (r->type) {
        case REDIS_REPLY_STATUS: out.type = Reply::Type::Status; break;
        case REDIS_REPLY_ERROR: out.type = Reply::Type::Error; break;
        case REDIS_REPLY_STRING: out.type = Reply::Type::String; break;
        case REDIS_REPLY_INTEGER: out.type = Reply::Type::Integer; break;
        case REDIS_REPLY_ARRAY: out.type = Reply::Type::Array; break;
        default: out.type = Reply::Type::Nil; break;
    }
    if (r->type == REDIS_REPLY_INTEGER) out.integer = r->integer;
    if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING)
        out.str.assign(r->str, r->len);
    if (r->type == REDIS_REPLY_ARRAY) {
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
    }
    return out;
}

// A waiting command's completion handler, type-erased (Asio 1.22 has no
// any_completion_handler). complete() posts it: the reader never resumes a
// caller from inside its own loop.
struct Waiter {
    virtual ~Waiter() = default;
    virtual void complete(std::optional<Reply> r) = 0;
};

template <class Handler>
struct WaiterOf final : Waiter {
    WaiterOf(Handler h, asio::any_io_executor ex) : handler(std::move(h)), fallback(std::move(ex)) {}
    void complete(std::optional<Reply> r) override {
        auto ex = asio::get_associated_executor(handler, fallback);
        asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
    }
    Handler handler;
    asio::any_io_executor fallback;
};

}  // namespace

std::string Endpoint::describe() const {
    std::string s = kind == Kind::Unix ? "unix://" + path : std::string(tls ? "rediss://" : "redis://") +
                                                                (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                                                ":" + std::to_string(port);
    if (db) s += (kind == Kind::Unix ? "?db=" : "/") + std::to_string(db);
    return s;
}

Result<Endpoint> parse_url(std::string_view url) {
    for (char c : url)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return fail("control bytes in the Redis URL");
    Endpoint ep;
    std::string_view rest;
    if (url.substr(0, 8) == "redis://") rest = url.substr(8);
    else if (url.substr(0, 9) == "rediss://") {
        rest = url.substr(9);
        ep.tls = true;
    } else if (url.substr(0, 7) == "unix://") {
        rest = url.substr(7);
        ep.kind = Endpoint::Kind::Unix;
    } else {
        return fail("a Redis URL starts with redis://, rediss:// or unix://");
    }
    // Credentials: up to the last '@' before the path (a password may hold '@' as %40).
    const auto at = ep.kind == Endpoint::Kind::Unix ? rest.find("@/") : rest.substr(0, rest.find('/')).rfind('@');
    if (at != std::string_view::npos) {
        std::string_view cred = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = cred.find(':');
        if (colon == std::string_view::npos) {
            ep.password = percent_decode(cred);
        } else {
            ep.user = percent_decode(cred.substr(0, colon));
            ep.password = percent_decode(cred.substr(colon + 1));
        }
    }
    unsigned long v = 0;
    if (ep.kind == Endpoint::Kind::Unix) {
        const auto q = rest.find('?');
        ep.path = std::string(rest.substr(0, q));
        if (ep.path.empty() || ep.path[0] != '/') return fail("unix:// needs an absolute socket path");
        if (q != std::string_view::npos) {
            std::string_view query = rest.substr(q + 1);
            if (query.substr(0, 3) != "db=" || !parse_uint(query.substr(3), 1000000, v))
                return fail("the only query a unix:// URL takes is ?db=N");
            ep.db = static_cast<unsigned>(v);
        }
        return ep;
    }
    const auto path = rest.find('/');
    std::string_view hostport = rest.substr(0, path);
    if (path != std::string_view::npos) {
        std::string_view db = rest.substr(path + 1);
        if (!db.empty()) {
            if (!parse_uint(db, 1000000, v)) return fail("the path of a Redis URL is a database number");
            ep.db = static_cast<unsigned>(v);
        }
    }
    std::string_view port;
    if (!hostport.empty() && hostport[0] == '[') {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) return fail("unclosed [ in the host");
        ep.host = std::string(hostport.substr(1, close - 1));
        std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return fail("junk after ]");
            port = after.substr(1);
        }
    } else {
        const auto colon = hostport.find(':');
        ep.host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
    }
    if (ep.host.empty()) return fail("no host in the Redis URL");
    if (!port.empty()) {
        if (!parse_uint(port, 65535, v) || v == 0) return fail("bad port in the Redis URL");
        ep.port = static_cast<std::uint16_t>(v);
    }
    return ep;
}

std::string format_command(const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    char* out = nullptr;
    const int n = redisFormatCommandArgv(&out, static_cast<int>(argv.size()), ptrs.data(), lens.data());
    if (n < 0 || !out) throw std::bad_alloc();
    std::string s(out, static_cast<std::size_t>(n));
    redisFreeCommand(out);
    return s;
}

struct Connection::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor e, Options o)
        : ex(std::move(e)), opts(std::move(o)), timeout(ex, [this] { on_timeout(); }), backoff(ex) {
        if (opts.name.empty()) opts.name = "redis";
        for (const auto& ep : opts.endpoints)
            if (ep.tls) {
                tls_ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
                tls_ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                                     asio::ssl::context::no_tlsv1_1);
                asio::error_code ec;
                if (!opts.tls_ca_file.empty()) tls_ctx->load_verify_file(opts.tls_ca_file, ec);
                else tls_ctx->set_default_verify_paths(ec);
                if (ec) log::warning("{}: cannot load CA certificates: {}", opts.name, ec.message());
                break;
            }
    }
    ~Impl() { free_reader(); }

    struct Pending {
        std::unique_ptr<Waiter> waiter;  // null: nobody waits (send())
        Clock::time_point deadline;
    };

    asio::any_io_executor ex;
    Options opts;
    std::shared_ptr<asio::ssl::context> tls_ctx;
    std::optional<tcp::socket> tcp_sock;
    std::optional<unix_socket> unix_sock;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_sock;
    redisReader* reader = nullptr;
    std::string out;
    bool writing = false;
    bool is_up = false;
    bool stopped = false;
    bool started = false;
    std::uint64_t epoch = 0;  // +1 per connection attempt: stale writers and readers stop
    std::deque<Pending> pending;
    Timeout timeout;
    asio::steady_timer backoff;
    std::size_t next_endpoint = 0;
    bool logged_down = false;
    std::string current;  // the endpoint connected to (for log lines)
    // Error answers to send() logged on this connection, one per kind
    // ("NOPERM", "ERR", ...): a command nobody waits for still tells.
    std::vector<std::string> logged_errors;

    void free_reader() {
        if (reader) redisReaderFree(reader);
        reader = nullptr;
    }
    void new_reader() {
        free_reader();
        reader = redisReaderCreate();
        if (!reader) throw std::bad_alloc();
        reader->maxbuf = kMaxReaderBuffer;
    }

    void close_sockets() {
        asio::error_code ec;
        if (tcp_sock) tcp_sock->close(ec);
        if (unix_sock) unix_sock->close(ec);
        if (tls_sock) tls_sock->lowest_layer().close(ec);
    }

    // The connection is over: every command in flight answers nullopt.
    void drop(const std::string& why) {
        close_sockets();
        const bool was_up = is_up;
        is_up = false;
        ++epoch;
        out.clear();
        writing = false;
        timeout.cancel();
        auto waiting = std::move(pending);
        pending.clear();
        for (auto& p : waiting)
            if (p.waiter) p.waiter->complete(std::nullopt);
        if (was_up && !stopped) {
            logged_down = true;
            const std::string detail = current + ": connection lost: " + why;
            if (opts.quiet) log::debug("{}: {}", opts.name, detail);
            else log::warning("{}: {}", opts.name, detail);
            if (opts.on_state) opts.on_state(false, detail);
        }
    }

    void on_timeout() {
        if (!is_up || pending.empty()) return;
        drop("no answer within " + std::to_string(opts.timeout.count()) + " ms");
    }

    asio::awaitable<std::pair<asio::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
        if (tls_sock) {
            auto [ec, n] = co_await tls_sock->async_read_some(b, kTuple);
            co_return std::pair{ec, n};
        }
        if (tcp_sock) {
            auto [ec, n] = co_await tcp_sock->async_read_some(b, kTuple);
            co_return std::pair{ec, n};
        }
        auto [ec, n] = co_await unix_sock->async_read_some(b, kTuple);
        co_return std::pair{ec, n};
    }

    asio::awaitable<asio::error_code> write_all(asio::const_buffer b) {
        if (tls_sock) {
            auto [ec, n] = co_await asio::async_write(*tls_sock, b, kTuple);
            co_return ec;
        }
        if (tcp_sock) {
            auto [ec, n] = co_await asio::async_write(*tcp_sock, b, kTuple);
            co_return ec;
        }
        auto [ec, n] = co_await asio::async_write(*unix_sock, b, kTuple);
        co_return ec;
    }

    // Reads until `want` replies are parsed into `into` (handshake), or fails.
    asio::awaitable<std::string> read_replies(std::size_t want, std::vector<Reply>& into) {
        char buf[4096];
        while (into.size() < want) {
            void* raw = nullptr;
            if (redisReaderGetReply(reader, &raw) != REDIS_OK) co_return "protocol error in the server's answer";
            if (raw) {
                into.push_back(convert(static_cast<redisReply*>(raw)));
                freeReplyObject(raw);
                continue;
            }
            auto [ec, n] = co_await read_some(asio::buffer(buf));
            if (ec) co_return ec.message();
            if (redisReaderFeed(reader, buf, n) != REDIS_OK) co_return "protocol error in the server's answer";
        }
        co_return std::string();
    }

    // Connect and handshake with one endpoint; "" when the connection is up.
    static asio::awaitable<std::string> connect_steps(std::shared_ptr<Impl> self, Endpoint ep) {
        auto ex = self->ex;
        self->tcp_sock.reset();
        self->unix_sock.reset();
        self->tls_sock.reset();
        if (ep.kind == Endpoint::Kind::Unix) {
            self->unix_sock.emplace(ex);
            auto [ec] = co_await self->unix_sock->async_connect(asio::local::stream_protocol::endpoint(ep.path), kTuple);
            if (ec) co_return ec.message();
        } else {
            tcp::resolver resolver(ex);
            auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), kTuple);
            if (rec) co_return "cannot resolve " + ep.host + ": " + rec.message();
            if (ep.tls) {
                self->tls_sock = std::make_unique<asio::ssl::stream<tcp::socket>>(ex, *self->tls_ctx);
                auto [cec, e] = co_await asio::async_connect(self->tls_sock->next_layer(), results, kTuple);
                if (cec) co_return cec.message();
                asio::error_code opt_ec;
                self->tls_sock->next_layer().set_option(tcp::no_delay(true), opt_ec);
                if (self->opts.tls_verify) {
                    self->tls_sock->set_verify_mode(asio::ssl::verify_peer);
                    self->tls_sock->set_verify_callback(asio::ssl::host_name_verification(ep.host));
                } else {
                    self->tls_sock->set_verify_mode(asio::ssl::verify_none);
                }
                asio::error_code not_ip;
                (void)asio::ip::make_address(ep.host, not_ip);
                if (not_ip) SSL_set_tlsext_host_name(self->tls_sock->native_handle(), ep.host.c_str());
                auto [hec] = co_await self->tls_sock->async_handshake(asio::ssl::stream_base::client, kTuple);
                if (hec) co_return "TLS handshake: " + hec.message();
            } else {
                self->tcp_sock.emplace(ex);
                auto [cec, e] = co_await asio::async_connect(*self->tcp_sock, results, kTuple);
                if (cec) co_return cec.message();
                asio::error_code opt_ec;
                self->tcp_sock->set_option(tcp::no_delay(true), opt_ec);
            }
        }
        self->new_reader();
        std::string hello;
        std::size_t want = 0;
        std::vector<std::string> what;
        if (!ep.password.empty()) {
            hello += ep.user.empty() ? format_command({"AUTH", ep.password})
                                     : format_command({"AUTH", ep.user, ep.password});
            what.push_back("AUTH");
            ++want;
        }
        if (ep.db) {
            hello += format_command({"SELECT", std::to_string(ep.db)});
            what.push_back("SELECT");
            ++want;
        }
        if (!self->opts.subscribe.empty()) {
            // One SUBSCRIBE per channel: each gets exactly one answer, its
            // confirmation or its error (one refused channel of several
            // would fail the whole command with a single error).
            for (const auto& channel : self->opts.subscribe) {
                hello += format_command({"SUBSCRIBE", channel});
                what.push_back("SUBSCRIBE " + log::safe(channel, 100));
                ++want;
            }
        } else {
            hello += format_command({"PING"});
            what.push_back("PING");
            ++want;
        }
        asio::error_code wec = co_await self->write_all(asio::buffer(hello));
        wipe(hello);
        if (wec) co_return wec.message();
        std::vector<Reply> replies;
        std::string why = co_await self->read_replies(want, replies);
        if (!why.empty()) co_return why;
        for (std::size_t i = 0; i < replies.size(); ++i)
            if (replies[i].is_error()) co_return what[i] + ": " + log::safe(replies[i].str, 200);
        co_return std::string();
    }

    static asio::awaitable<void> run(std::shared_ptr<Impl> self) {
        auto delay = self->opts.backoff_min;
        while (!self->stopped) {
            const Endpoint& ep = self->opts.endpoints[self->next_endpoint % self->opts.endpoints.size()];
            const std::string where = ep.describe();
            auto steps = connect_steps(self, ep);
            std::optional<std::string> r = co_await with_deadline(std::move(steps), Clock::now() + self->opts.timeout);
            if (self->stopped) break;
            if (r && r->empty()) {
                ++self->epoch;
                self->is_up = true;
                delay = self->opts.backoff_min;
                self->current = where;
                if (self->opts.quiet) log::debug("{}: connected to {}", self->opts.name, where);
                else log::info("{}: connected to {}", self->opts.name, where);
                self->logged_down = false;
                self->logged_errors.clear();
                if (self->opts.on_state) self->opts.on_state(true, where);
                co_await read_loop(self);
                if (self->stopped) break;
            } else {
                self->close_sockets();
                if (!self->logged_down) {
                    const std::string detail =
                        "cannot connect to " + where + ": " +
                        (r ? *r : "no answer within " + std::to_string(self->opts.timeout.count()) + " ms");
                    if (self->opts.quiet) log::debug("{}: {}", self->opts.name, detail);
                    else log::warning("{}: {}", self->opts.name, detail);
                    self->logged_down = true;
                    if (self->opts.on_state) self->opts.on_state(false, detail);
                }
                ++self->next_endpoint;
            }
            self->drop("connection closed");
            self->backoff.expires_after(delay);
            auto waited = co_await self->backoff.async_wait(kTuple);
            (void)waited;  // woken early by stop(): the loop condition ends it
            delay = std::min(delay * 2, self->opts.backoff_max);
        }
        self->drop("stopped");
    }

    static asio::awaitable<void> read_loop(std::shared_ptr<Impl> self) {
        const std::uint64_t my_epoch = self->epoch;
        std::vector<char> buf(kReadChunk);
        std::string why = "closed by the server";
        while (self->epoch == my_epoch && !self->stopped) {
            auto [ec, n] = co_await self->read_some(asio::buffer(buf));
            if (self->epoch != my_epoch) co_return;
            if (ec) {
                if (ec != asio::error::eof) why = ec.message();
                break;
            }
            if (redisReaderFeed(self->reader, buf.data(), n) != REDIS_OK) {
                why = "protocol error";
                break;
            }
            bool bad = false;
            for (;;) {
                void* raw = nullptr;
                if (redisReaderGetReply(self->reader, &raw) != REDIS_OK) {
                    bad = true;
                    break;
                }
                if (!raw) break;
                Reply reply = convert(static_cast<redisReply*>(raw));
                freeReplyObject(raw);
                self->dispatch(std::move(reply));
            }
            if (bad) {
                why = "protocol error (or an answer over the size limit)";
                break;
            }
        }
        if (self->epoch == my_epoch) self->drop(why);
    }

    void dispatch(Reply reply) {
        if (!opts.subscribe.empty()) {
            if (reply.type == Reply::Type::Array && reply.elements.size() == 3 && reply.elements[0].str == "message" &&
                opts.on_message)
                opts.on_message(reply.elements[1].str, reply.elements[2].str);
            return;
        }
        if (pending.empty()) return;  // an answer nobody asked for: ignored
        Pending p = std::move(pending.front());
        pending.pop_front();
        if (pending.empty()) timeout.cancel();
        else timeout.arm(pending.front().deadline);
        if (p.waiter) p.waiter->complete(std::move(reply));
        else if (reply.is_error()) log_error(reply.str);
    }

    void log_error(const std::string& error) {
        std::string kind = error.substr(0, error.find(' '));
        if (logged_errors.size() >= 16 ||
            std::find(logged_errors.begin(), logged_errors.end(), kind) != logged_errors.end())
            return;
        log::warning("{}: {} answered a command with an error: {}", opts.name, current, log::safe(error, 200));
        logged_errors.push_back(std::move(kind));
    }

    void enqueue(const std::vector<std::string>& argv, std::unique_ptr<Waiter> waiter) {
        out += format_command(argv);
        const auto deadline = Clock::now() + opts.timeout;
        pending.push_back(Pending{std::move(waiter), deadline});
        if (pending.size() == 1) timeout.arm(deadline);
        if (!writing) {
            writing = true;
            asio::co_spawn(ex, write_loop(shared_from_this(), epoch), LogExceptions{"redis writer"});
        }
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<Impl> self, std::uint64_t my_epoch) {
        std::string buf;
        while (self->epoch == my_epoch && !self->out.empty()) {
            buf.clear();
            std::swap(buf, self->out);
            asio::error_code ec = co_await self->write_all(asio::buffer(buf));
            if (self->epoch != my_epoch) co_return;
            if (ec) {
                self->drop("write: " + ec.message());
                co_return;
            }
        }
        if (self->epoch == my_epoch) self->writing = false;
    }
};

namespace {

struct Initiate {
    std::shared_ptr<Connection::Impl> impl;
    const std::vector<std::string>* argv;
    template <class Handler>
    void operator()(Handler handler) {
        auto w = std::make_unique<WaiterOf<Handler>>(std::move(handler), impl->ex);
        if (!impl->is_up) {
            w->complete(std::nullopt);
            return;
        }
        impl->enqueue(*argv, std::move(w));
    }
};

}  // namespace

std::shared_ptr<Connection> Connection::create(asio::any_io_executor ex, Options options) {
    auto impl = std::make_shared<Impl>(std::move(ex), std::move(options));
    return std::shared_ptr<Connection>(new Connection(std::move(impl)));
}

Connection::~Connection() { stop(); }

void Connection::start() {
    if (impl_->started || impl_->opts.endpoints.empty()) return;
    impl_->started = true;
    asio::co_spawn(impl_->ex, Impl::run(impl_), LogExceptions{"redis connection"});
}

void Connection::stop() {
    impl_->stopped = true;
    impl_->opts.on_state = nullptr;
    impl_->opts.on_message = nullptr;
    impl_->backoff.cancel();
    impl_->drop("stopped");
}

bool Connection::up() const { return impl_->is_up; }

asio::awaitable<std::optional<Reply>> Connection::command(std::vector<std::string> argv) {
    if (!impl_->is_up) co_return std::nullopt;
    auto impl = impl_;
    auto op = asio::async_initiate<const asio::use_awaitable_t<>&, void(std::optional<Reply>)>(
        Initiate{impl, &argv}, asio::use_awaitable);
    std::optional<Reply> r = co_await std::move(op);
    co_return r;
}

bool Connection::send(std::vector<std::string> argv) {
    if (!impl_->is_up) return false;
    impl_->enqueue(argv, nullptr);
    return true;
}

}  // namespace postern::redis
