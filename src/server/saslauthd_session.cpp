// saslauthd protocol, server side: read the four counted strings under a
// deadline, verify through the passdb chain, reply, shut down.
#include "server/saslauthd_session.hpp"

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "protocol/saslauthd.hpp"
#include "server/spawn.hpp"
#include "util/log.hpp"

namespace postern::server {
namespace {

namespace sa = protocol::saslauthd;

struct SaslauthdConn {
    SaslauthdConn(Socket s, auth::Engine& e, const config::Listener& l, std::string p, std::shared_ptr<const void> sl)
        : socket(std::move(s)), engine(e), listener(l), peer(std::move(p)), slot(std::move(sl)),
          deadline(socket.get_executor()) {}
    Socket socket;
    auth::Engine& engine;
    const config::Listener& listener;
    std::string peer;
    std::shared_ptr<const void> slot;
    asio::steady_timer deadline;
    bool timed_out = false;
};
using ConnPtr = std::shared_ptr<SaslauthdConn>;

asio::awaitable<void> reply(ConnPtr c, bool ok, std::string message) {
    const std::string out = sa::encode_reply(ok, message);
    asio::error_code ec;
    co_await asio::async_write(c->socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    c->socket.shutdown(asio::socket_base::shutdown_both, ec);
    c->socket.close(ec);
}

void log_result(const sa::Request& r, const std::string& user, std::string_view result, std::string_view reason) {
    log::info("auth: result={} user=\"{}\" service={} rip= mech=saslauthd{}{}", result, log::safe(user),
              log::safe(r.service, 32), reason.empty() ? "" : " reason=", reason);
}

asio::awaitable<void> run(ConnPtr c) {
    const double configured = c->engine.config().request_timeout;
    auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(configured));
    if (limit > kSaslauthdMaxReadTime) limit = kSaslauthdMaxReadTime;
    c->deadline.expires_after(limit);
    c->deadline.async_wait([c](const asio::error_code& ec) {
        if (ec) return;
        c->timed_out = true;
        asio::error_code ignored;
        c->socket.close(ignored);
    });

    sa::RequestParser parser;
    char buf[1024];
    while (parser.status() == sa::RequestParser::Status::NeedMore) {
        asio::error_code ec;
        const std::size_t n =
            co_await c->socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (c->timed_out)
                log::info("saslauthd {}: closing connection: {}", c->peer,
                          parser.started() ? "request incomplete at the deadline" : "no request before the deadline");
            else if (parser.started())
                log::info("saslauthd {}: closing connection: truncated request", c->peer);
            c->deadline.cancel();
            co_return;
        }
        parser.feed(std::string_view(buf, n));
    }
    c->deadline.cancel();
    if (parser.status() == sa::RequestParser::Status::TooLong) {
        log::info("saslauthd {}: closing connection: field longer than {} bytes", c->peer, sa::kMaxField);
        co_await reply(c, false, "");
        co_return;
    }
    const auto started = std::chrono::steady_clock::now();
    sa::Request req = parser.take();
    // Like saslauthd -r: a realm is joined back to the login, so backends
    // keyed by user@domain see the name the user typed.
    std::string raw = req.realm.empty() ? req.login : req.login + "@" + req.realm;
    if (req.login.empty() || req.password.empty()) {
        log_result(req, raw, "fail", "empty login or password");
        co_await reply(c, false, "authentication failed");
        co_return;
    }
    auto user = c->engine.normalize_user(raw);
    backend::PassStatus status = backend::PassStatus::UnknownUser;
    std::string canonical = raw;
    if (user) {
        auto info = std::make_shared<auth::RequestInfo>();
        info->user = *user;
        info->original_user = raw;
        info->mech = "PLAIN";
        info->params.service = req.service.empty() ? "saslauthd" : req.service;
        backend::PassResult r = co_await c->engine.verify_plain(info, std::move(req.password));
        status = r.status;
        canonical = r.user.empty() ? *user : r.user;
    }
    if (status == backend::PassStatus::Ok) {
        log_result(req, canonical, "ok", "");
        co_await reply(c, true, "");
        co_return;
    }
    if (status == backend::PassStatus::TempFail) {
        // The protocol has no temporary-failure code; the text says it.
        log_result(req, canonical, "tempfail", "temp_fail");
        co_await reply(c, false, "temporary failure");
        co_return;
    }
    log_result(req, canonical, "fail", backend::to_string(status));
    // The same delay for every failure, as on the auth-client sockets.
    const double delay = c->engine.config().failure_delay;
    if (delay > 0) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_at(started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(delay)));
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_await reply(c, false, "authentication failed");
}

}  // namespace

void start_saslauthd_session(Socket socket, auth::Engine& engine, const config::Listener& listener, std::string peer,
                             std::shared_ptr<const void> slot) {
    auto c = std::make_shared<SaslauthdConn>(std::move(socket), engine, listener, std::move(peer), std::move(slot));
    auto ex = c->socket.get_executor();
    asio::co_spawn(ex, run(std::move(c)), LogExceptions{"saslauthd session"});
}

}  // namespace postern::server
