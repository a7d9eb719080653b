// saslauthd protocol, server side: read the four counted strings under a
// deadline, run them as a PLAIN auth::Request, reply, shut down.
#include "server/saslauthd_session.hpp"

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "auth/request.hpp"
#include "protocol/saslauthd.hpp"
#include "util/deadline.hpp"
#include "util/log.hpp"
#include "util/spawn.hpp"

namespace postern::server {
namespace {

namespace sa = protocol::saslauthd;

// The connection, and the reply port of its one request.
struct SaslauthdConn : auth::ReplyPort, std::enable_shared_from_this<SaslauthdConn> {
    SaslauthdConn(Socket s, auth::CurrentEngine& e, const config::Listener& l, std::string p, std::shared_ptr<const void> sl)
        : socket(std::move(s)), engine(e), listener(l), peer(std::move(p)), slot(std::move(sl)),
          answered(socket.get_executor()) {}
    Socket socket;
    auth::CurrentEngine& engine;
    const config::Listener& listener;
    std::string peer;
    std::shared_ptr<const void> slot;
    sa::RequestParser parser;
    Event answered;
    bool ok_reply = false;
    std::string message;

    void answer(bool ok, std::string text) {
        ok_reply = ok;
        message = std::move(text);
        answered.set();
    }
    // PLAIN with its initial response never asks for more.
    void cont(std::uint32_t, std::string_view, std::string_view) override { answer(false, "authentication failed"); }
    void ok(std::uint32_t, const std::string&, const backend::Fields&) override { answer(true, ""); }
    void fail(std::uint32_t, const backend::Fields& fields) override {
        // The protocol has no temporary-failure code; the text says it.
        bool temp = false;
        for (const auto& [k, v] : fields) temp = temp || (k == "code" && v == "temp_fail");
        answer(false, temp ? "temporary failure" : "authentication failed");
    }
    void done(std::uint32_t) override {}
};
using ConnPtr = std::shared_ptr<SaslauthdConn>;

asio::awaitable<void> reply(ConnPtr c, bool ok, std::string message) {
    const std::string out = sa::encode_reply(ok, message);
    asio::error_code ec;
    co_await asio::async_write(c->socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    c->socket.shutdown(asio::socket_base::shutdown_both, ec);
    c->socket.close(ec);
}

// Reads until the parser has the four strings (or refuses them); false when
// the connection ends first.
asio::awaitable<bool> read_request(ConnPtr c) {
    char buf[1024];
    while (c->parser.status() == sa::RequestParser::Status::NeedMore) {
        asio::error_code ec;
        const std::size_t n = co_await c->socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
        c->parser.feed(std::string_view(buf, n));
    }
    co_return true;
}

asio::awaitable<void> run(ConnPtr c) {
    const Clock::duration limit = std::min<Clock::duration>(c->engine->config().request_timeout, kSaslauthdMaxReadTime);
    auto read = co_await with_deadline(read_request(c), Clock::now() + limit);
    if (!read || !*read) {
        if (!read)
            log::info("saslauthd {}: closing connection: {}", c->peer,
                      c->parser.started() ? "request incomplete at the deadline" : "no request before the deadline");
        else if (c->parser.started())
            log::info("saslauthd {}: closing connection: truncated request", c->peer);
        asio::error_code ec;
        c->socket.close(ec);
        co_return;
    }
    if (c->parser.status() == sa::RequestParser::Status::TooLong) {
        log::info("saslauthd {}: closing connection: field longer than {} bytes", c->peer, sa::kMaxField);
        co_await reply(c, false, "");
        co_return;
    }
    sa::Request req = c->parser.take();
    // Like saslauthd -r: a realm is joined back to the login, so backends
    // keyed by user@domain see the name the user typed. The rest is a PLAIN
    // login like any other: the same chain, delays and result line.
    const std::string login = req.realm.empty() ? req.login : req.login + "@" + req.realm;
    auth::RequestParams params;
    params.service = req.service.empty() ? "saslauthd" : req.service;
    auth::Origin origin;
    origin.role = c->listener.role;
    origin.trusted = c->listener.trusted;
    origin.peer = c->peer;
    origin.log_mech = "saslauthd";
    auto r = std::make_shared<auth::Request>(c->socket.get_executor(), *c->engine, c, origin, 1,
                                             *mech::find("PLAIN"), std::move(params));
    std::string initial;
    initial.reserve(login.size() + req.password.size() + 2);
    initial += '\0';
    initial += login;
    initial += '\0';
    initial += req.password.view();
    r->start(std::move(initial));
    // The request answers within request_timeout plus its failure delay;
    // the margin only guards against a request that never does.
    const auto& cfg = c->engine->config();
    const auto bound = Clock::now() + cfg.request_timeout + cfg.failure_delay + cfg.failure_delay_jitter +
                       std::chrono::seconds(5);
    if (!co_await with_deadline(c->answered.wait(), bound)) {
        r->cancel();
        c->answer(false, "temporary failure");
    }
    co_await reply(c, c->ok_reply, c->message);
}

}  // namespace

void start_saslauthd_session(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener, std::string peer,
                             std::shared_ptr<const void> slot) {
    auto c = std::make_shared<SaslauthdConn>(std::move(socket), engine, listener, std::move(peer), std::move(slot));
    auto ex = c->socket.get_executor();
    asio::co_spawn(ex, run(std::move(c)), LogExceptions{"saslauthd session"});
}

}  // namespace postern::server
