// imap passdb: settings, the limit on logins in flight, and one login per
// fresh connection (resolve, connect, TLS, the Dialogue of protocol.hpp),
// within the login's deadline (util/deadline.hpp).
#include "backends/imap/imap.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "backends/gate.hpp"
#include "backends/imap/protocol.hpp"
#include "util/cache_key.hpp"
#include "util/deadline.hpp"
#include "util/log.hpp"
#include "util/var_expand.hpp"

namespace postern::backend {

namespace {

using asio::ip::tcp;
using imap::Verdict;

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// Defaults and limits, with their reasons.
constexpr auto kDefaultTimeout = std::chrono::seconds(10);   // well under Postfix's 60 s auth timeout
constexpr auto kMaxTimeout = std::chrono::seconds(300);      // past this a client has long given up
constexpr long long kDefaultConnections = 4; // an IMAP server limits logins per IP; stay polite
constexpr long long kMaxConnections = 1024;
constexpr std::size_t kMaxLoggedText = 300;

enum class TlsMode { StartTls, Implicit, None };

struct Settings {
    std::string host;
    unsigned short port = 143;
    TlsMode tls = TlsMode::StartTls;
    std::string ca_file;
    bool verify_cert = true;
    std::string tls_name;
    imap::Mechanism auth = imap::Mechanism::Login;
    std::string username = "%u";
    std::chrono::milliseconds timeout{10000};
    unsigned max_connections = kDefaultConnections;
};

Settings read_settings(const config::Section& s) {
    s.reject_unknown({"driver", "host", "port", "tls", "ca_file", "verify_cert", "tls_name", "auth", "username",
                      "timeout", "max_connections"});
    Settings st;
    st.host = s.required_string("host");
    if (st.host.empty() || st.host.find_first_of(" \t\r\n/") != std::string::npos)
        s.error("host", "expected a host name or an IP address");
    const std::string tls = s.string("tls", "starttls");
    if (tls == "starttls") st.tls = TlsMode::StartTls;
    else if (tls == "implicit") st.tls = TlsMode::Implicit;
    else if (tls == "none") st.tls = TlsMode::None;
    else s.error("tls", "expected \"starttls\", \"implicit\" or \"none\"");
    st.port = static_cast<unsigned short>(s.integer("port", st.tls == TlsMode::Implicit ? 993 : 143, 1, 65535));
    st.ca_file = s.string("ca_file", "");
    if (!st.ca_file.empty() && st.ca_file.front() != '/') s.error("ca_file", "must be an absolute path");
    st.verify_cert = s.boolean("verify_cert", true);
    st.tls_name = s.string("tls_name", "");
    const std::string auth = s.string("auth", "login");
    if (auth == "login") st.auth = imap::Mechanism::Login;
    else if (auth == "plain") st.auth = imap::Mechanism::Plain;
    else s.error("auth", "expected \"login\" or \"plain\"");
    st.username = s.string("username", "%u");
    auto probe = util::expand(st.username, [](std::string_view n) { return auth::RequestInfo().var(n); });
    if (!probe) s.error("username", probe.error().message);
    if (st.username.empty()) s.error("username", "must not be empty");
    st.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.duration("timeout", kDefaultTimeout, kMaxTimeout));
    if (st.timeout <= std::chrono::milliseconds::zero()) s.error("timeout", "must be positive");
    st.max_connections = static_cast<unsigned>(s.integer("max_connections", kDefaultConnections, 1, kMaxConnections));
    if (st.tls == TlsMode::None && (!st.ca_file.empty() || !st.tls_name.empty()))
        log::warning("{}:{}: {}: ca_file and tls_name do nothing with tls = \"none\"", s.file(), s.line(), s.path());
    return st;
}

// The TLS settings every connection of one passdb shares. Loads the CA file
// now, so that a missing or bad one stops the start-up with its key named.
std::shared_ptr<asio::ssl::context> make_tls_context(const Settings& st, const config::Section& s) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (st.tls == TlsMode::None) return ctx;
    asio::error_code ec;
    if (!st.ca_file.empty()) {
        ctx->load_verify_file(st.ca_file, ec);
        if (ec) s.error("ca_file", st.ca_file + ": cannot load CA certificates: " + ec.message());
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec) s.error("verify_cert", "cannot load the system's CA certificates: " + ec.message());
    }
    return ctx;
}

// One connection: TCP, with TLS on top once started.
struct Conn {
    Conn(const asio::any_io_executor& ex, asio::ssl::context& ctx) : stream(ex, ctx) {}
    asio::ssl::stream<tcp::socket> stream;
    bool tls = false;
};

// What one login attempt came to.
struct Attempt {
    Verdict verdict = Verdict::TempFail;
    std::string detail;
};

// `text` with every occurrence of the password taken out, and cut short:
// server text is logged, and a broken or hostile server might echo what it
// was sent. Still raw: whoever logs it passes it through log::safe.
std::string scrub(std::string text, std::string_view password) {
    if (!password.empty())
        for (auto pos = text.find(password); pos != std::string::npos; pos = text.find(password, pos + 3))
            text.replace(pos, password.size(), "***");
    if (text.size() > kMaxLoggedText) text.resize(kMaxLoggedText);
    return text;
}

class ImapPassdb final : public Passdb {
public:
    ImapPassdb(Settings st, asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls)
        : st_(std::move(st)), ex_(ex), tls_(std::move(tls)), gate_(ex, st_.max_connections) {
        const bool v6 = st_.host.find(':') != std::string::npos;
        describe_ = (v6 ? "[" + st_.host + "]" : st_.host) + ":" + std::to_string(st_.port);
        outage_.name("imap " + describe_);
        tls_name_ = st_.tls_name.empty() ? st_.host : st_.tls_name;
    }

    std::string_view driver() const override { return "imap"; }

    // The server's answer depends on the name sent (the template's
    // variables come in through it) and the password (the cache keeps
    // only its keyed hash); the result carries the request's user name.
    std::string cache_key(const auth::RequestInfo& req) const override {
        util::CacheKey key;
        key.add(req.user).add(login_name(req).value_or(std::string()));
        return key.str();
    }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        const auto name = login_name(*req);
        if (!name || name->empty() || !imap::sendable(*name) || !imap::sendable(password.view())) {
            // Nothing a server could answer: never sent.
            auto r = PassResult::mismatch(
                !name || name->empty()     ? "the username template gives an empty name"
                : !imap::sendable(*name) ? "the user name contains CR, LF or NUL; not sent to the IMAP server"
                                         : "the password contains CR, LF or NUL; not sent to the IMAP server");
            log::info("imap {}: user \"{}\": {}", describe_, log::safe(req->user), r.detail);
            co_return r;
        }
        const auto deadline = Clock::now() + st_.timeout;
        const bool admitted = co_await gate_.acquire(deadline);
        if (!admitted)
            co_return PassResult::temp_fail("imap " + describe_ + ": all " + std::to_string(st_.max_connections) +
                                            " connections (max_connections) busy until the timeout");
        struct Release {
            Gate& gate;
            ~Release() { gate.release(); }
        } release{gate_};
        Secret typed = password.clone();
        Attempt a = co_await login(*name, std::move(password), deadline);
        a.detail = scrub(std::move(a.detail), typed.view());
        switch (a.verdict) {
            case Verdict::Ok: outage_.up(); co_return PassResult::ok(req->user);
            case Verdict::Mismatch:
                outage_.up();
                log::info("imap {}: user \"{}\" (sent as \"{}\"): login refused: {}", describe_, log::safe(req->user),
                          log::safe(*name), log::safe(a.detail, kMaxLoggedText));
                co_return PassResult::mismatch(a.detail);
            case Verdict::TempFail: outage_.down(a.detail, kMaxLoggedText); co_return PassResult::temp_fail("imap " + describe_ + ": " + a.detail);
        }
        co_return PassResult::temp_fail("imap " + describe_ + ": unexpected verdict");
    }

private:
    std::optional<std::string> login_name(const auth::RequestInfo& req) const {
        auto e = util::expand(st_.username, [&req](std::string_view n) { return req.var(n); });
        if (!e) return std::nullopt;
        return std::move(*e);
    }

    // Resolve, connect, talk and log out, within the deadline.
    asio::awaitable<Attempt> login(std::string user, Secret password, Clock::time_point deadline) {
        Attempt a;
        std::vector<tcp::endpoint> endpoints;
        asio::error_code not_ip;
        const auto addr = asio::ip::make_address(st_.host, not_ip);
        if (!not_ip) {
            endpoints.emplace_back(addr, st_.port);
        } else {
            // A pending getaddrinfo cannot be cancelled: at the deadline it
            // is left to finish on its own and this login temp-fails.
            auto lookup = resolve(ex_, st_.host, std::to_string(st_.port));
            auto found = co_await with_deadline(std::move(lookup), deadline, OnDeadline::Abandon);
            if (!found) {
                a.detail = "resolving " + st_.host + " did not finish within the timeout";
                co_return a;
            }
            if (!found->error.empty()) {
                a.detail = "cannot resolve " + st_.host + ": " + found->error;
                co_return a;
            }
            endpoints = std::move(found->endpoints);
        }
        // The exchange owns its connection: at the deadline its pending
        // operation is cancelled and it unwinds after this login has answered.
        auto work = exchange(std::make_shared<Conn>(ex_, *tls_), std::move(endpoints), std::move(user),
                             std::move(password));
        auto done = co_await with_deadline(std::move(work), deadline);
        if (!done) {
            a.detail = "no answer within the timeout (" + std::to_string(st_.timeout.count()) + " ms)";
            co_return a;
        }
        co_return std::move(*done);
    }

    struct Resolved {
        std::vector<tcp::endpoint> endpoints;
        std::string error;
    };

    // Asio's resolver runs getaddrinfo off the loop.
    static asio::awaitable<Resolved> resolve(asio::any_io_executor ex, std::string host, std::string port) {
        Resolved out;
        tcp::resolver resolver(ex);
        auto r = co_await resolver.async_resolve(host, port, kTuple);
        const asio::error_code ec = std::get<0>(r);
        if (ec) out.error = ec.message();
        else
            for (const auto& entry : std::get<1>(r)) out.endpoints.push_back(entry.endpoint());
        if (!ec && out.endpoints.empty()) out.error = "no address";
        co_return out;
    }

    asio::awaitable<Attempt> exchange(std::shared_ptr<Conn> conn, std::vector<tcp::endpoint> endpoints,
                                      std::string user, Secret password) {
        Conn* c = conn.get();
        Attempt fail;
        auto connected = co_await asio::async_connect(c->stream.next_layer(), endpoints, kTuple);
        if (std::get<0>(connected)) {
            fail.detail = "connect: " + std::get<0>(connected).message();
            co_return fail;
        }
        if (st_.tls == TlsMode::Implicit) {
            std::string why = co_await start_tls(c);
            if (!why.empty()) {
                fail.detail = why;
                co_return fail;
            }
        }
        imap::Dialogue dialogue(st_.auth, st_.tls == TlsMode::StartTls, std::move(user), std::move(password));
        imap::ResponseReader reader;
        std::array<char, 4096> buf;
        std::string line;
        for (;;) {
            const auto status = reader.next(line);
            if (status == imap::ResponseReader::Status::TooLong) {
                fail.detail = "a response longer than " + std::to_string(imap::kMaxResponse) + " bytes";
                co_return fail;
            }
            if (status == imap::ResponseReader::Status::Need) {
                auto got = co_await read_some(c, asio::buffer(buf));
                const asio::error_code ec = std::get<0>(got);
                if (ec) {
                    fail.detail = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                                      ? std::string("the server closed the connection")
                                      : "read: " + ec.message();
                    co_return fail;
                }
                reader.feed(std::string_view(buf.data(), std::get<1>(got)));
                continue;
            }
            imap::Step step = dialogue.on_response(line);
            for (;;) {
                if (!step.send.empty()) {
                    auto written = co_await write(c, asio::buffer(step.send.view().data(), step.send.size()));
                    // After the answer only the LOGOUT is lost: the answer stands.
                    if (std::get<0>(written) && step.next != imap::Step::Next::Done) {
                        fail.detail = "write: " + std::get<0>(written).message();
                        co_return fail;
                    }
                }
                if (step.next == imap::Step::Next::Read) break;
                if (step.next == imap::Step::Next::Done) {
                    Attempt a;
                    a.verdict = step.verdict;
                    a.detail = std::move(step.detail);
                    co_return a;
                }
                // STARTTLS: anything already received came in clear after
                // the OK and must not be taken as the server's (RFC 3501 §11.1).
                if (reader.has_pending()) {
                    fail.detail = "data after the STARTTLS answer, before TLS";
                    co_return fail;
                }
                std::string why = co_await start_tls(c);
                if (!why.empty()) {
                    fail.detail = why;
                    co_return fail;
                }
                step = dialogue.on_tls();
            }
        }
    }

    // The TLS handshake; "" when it succeeded, else why not.
    asio::awaitable<std::string> start_tls(Conn* c) {
        auto why = std::make_shared<std::string>();
        if (st_.verify_cert) {
            c->stream.set_verify_mode(asio::ssl::verify_peer);
            c->stream.set_verify_callback(
                [check = asio::ssl::host_name_verification(tls_name_), why, name = tls_name_](
                    bool preverified, asio::ssl::verify_context& vc) mutable {
                    if (!preverified) {
                        const int err = X509_STORE_CTX_get_error(vc.native_handle());
                        if (why->empty()) *why = X509_verify_cert_error_string(err);
                        return false;
                    }
                    if (!check(preverified, vc)) {
                        if (why->empty()) *why = "the certificate is not for \"" + name + "\"";
                        return false;
                    }
                    return true;
                });
        } else {
            c->stream.set_verify_mode(asio::ssl::verify_none);
        }
        // SNI carries names only (RFC 6066 §3).
        asio::error_code not_ip;
        (void)asio::ip::make_address(tls_name_, not_ip);
        if (not_ip) SSL_set_tlsext_host_name(c->stream.native_handle(), tls_name_.c_str());
        auto done = co_await c->stream.async_handshake(asio::ssl::stream_base::client, kTuple);
        const asio::error_code ec = std::get<0>(done);
        if (!ec) {
            c->tls = true;
            co_return std::string();
        }
        std::string detail = "TLS handshake failed: " + ec.message();
        if (!why->empty()) detail += ": " + *why;
        co_return detail;
    }

    static asio::awaitable<std::tuple<asio::error_code, std::size_t>> read_some(Conn* c, asio::mutable_buffer b) {
        if (c->tls) {
            auto r = co_await c->stream.async_read_some(b, kTuple);
            co_return r;
        }
        auto r = co_await c->stream.next_layer().async_read_some(b, kTuple);
        co_return r;
    }

    static asio::awaitable<std::tuple<asio::error_code, std::size_t>> write(Conn* c, asio::const_buffer b) {
        if (c->tls) {
            auto r = co_await asio::async_write(c->stream, b, kTuple);
            co_return r;
        }
        auto r = co_await asio::async_write(c->stream.next_layer(), b, kTuple);
        co_return r;
    }

    Settings st_;
    asio::any_io_executor ex_;
    std::shared_ptr<asio::ssl::context> tls_;
    Gate gate_;
    std::string describe_;
    std::string tls_name_;
    OutageLog outage_;
};

}  // namespace

std::unique_ptr<Passdb> make_imap_passdb(const config::Section& s, Services& services) {
    Settings st = read_settings(s);
    auto tls = make_tls_context(st, s);
    return std::make_unique<ImapPassdb>(std::move(st), services.executor, std::move(tls));
}

}  // namespace postern::backend
