// auth-master protocol, server side.
#include "server/master_session.hpp"

#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "protocol/auth_master.hpp"
#include "protocol/line.hpp"
#include "server/spawn.hpp"
#include "util/log.hpp"

namespace postern::server {
namespace {

struct MasterState {
    Socket socket;
    auth::Engine& engine;
    const config::Listener& listener;
    std::string peer;
    std::shared_ptr<const void> slot;
    bool version = false;  // the client's VERSION line arrived
};

// Closes a master connection whose client has not sent VERSION within the
// handshake timeout. Holds the session only weakly: a finished session is
// not kept open by its watchdog.
asio::awaitable<void> handshake_watchdog(std::weak_ptr<MasterState> weak, double seconds) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)));
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto st = weak.lock();
    if (!st || st->version) co_return;
    log::info("auth-master {}: handshake not completed in time; closing", st->peer);
    st->socket.close(ec);
}

std::string user_reply(std::string_view id, const std::string& user, const backend::Fields& fields,
                       const backend::Fields& more = {}) {
    std::string out = "USER\t" + std::string(id) + "\t" + protocol::tab_escape(user);
    for (const auto* set : {&fields, &more})
        for (const auto& [k, v] : *set) {
            out += '\t';
            out += k;
            out += '=';
            out += protocol::tab_escape(v);
        }
    out += '\n';
    return out;
}

asio::awaitable<std::string> handle(MasterState& st, const std::string& line, bool& close) {
    auto f = protocol::split_fields(line);
    const std::string& cmd = f[0];
    if (cmd == "USER" || cmd == "PASS") {
        if (f.size() < 3 || !protocol::parse_uint(f[1])) {
            close = true;
            co_return std::string();
        }
        auto info = std::make_shared<auth::RequestInfo>();
        info->params = protocol::parse_master_params(f, 3);
        if (info->params.service.empty()) {
            close = true;
            co_return std::string();
        }
        auto user = st.engine.normalize_user(f[2]);
        if (!user) co_return "NOTFOUND\t" + f[1] + "\n";
        info->user = *user;
        info->original_user = f[2];
        if (cmd == "PASS") {
            // Passdb lookups without a password need credential lookups;
            // passdbs that cannot do them answer FAIL.
            backend::CredResult r = co_await st.engine.lookup_credentials(info, "PLAIN");
            if (r.status == backend::PassStatus::UnknownUser) co_return "NOTFOUND\t" + f[1] + "\n";
            if (r.status == backend::PassStatus::TempFail) co_return "FAIL\t" + f[1] + "\treason=temporary failure\n";
            co_return "PASS\t" + f[1] + "\tuser=" + protocol::tab_escape(r.user.empty() ? *user : r.user) + "\n";
        }
        backend::UserResult r = co_await st.engine.lookup_user(info);
        if (r.status == backend::UserStatus::NotFound) co_return "NOTFOUND\t" + f[1] + "\n";
        if (r.status == backend::UserStatus::TempFail) co_return "FAIL\t" + f[1] + "\treason=temporary failure\n";
        co_return user_reply(f[1], r.user.empty() ? *user : r.user, r.fields);
    }
    if (cmd == "REQUEST") {
        if (st.listener.role != config::Role::Master) {
            close = true;
            co_return std::string();
        }
        if (f.size() < 5 || !protocol::parse_uint(f[1])) {
            close = true;
            co_return std::string();
        }
        auto pid = protocol::parse_uint(f[2]);
        auto rid = protocol::parse_uint(f[3]);
        std::optional<auth::PendingLogin> login;
        if (pid && rid) login = st.engine.redeem_login(*pid, static_cast<std::uint32_t>(*rid), f[4]);
        if (!login) co_return "FAIL\t" + f[1] + "\n";
        auto info = std::make_shared<auth::RequestInfo>();
        info->user = login->user;
        info->original_user = login->user;
        info->mech = login->mech;
        backend::Fields fields = login->userdb;
        std::string user = login->user;
        if (fields.empty()) {
            backend::UserResult r = co_await st.engine.lookup_user(info);
            if (r.status == backend::UserStatus::NotFound) co_return "NOTFOUND\t" + f[1] + "\n";
            if (r.status == backend::UserStatus::TempFail) co_return "FAIL\t" + f[1] + "\n";
            fields = std::move(r.fields);
            if (!r.user.empty()) user = r.user;
        }
        co_return user_reply(f[1], user, fields, {{"auth_mech", login->mech}});
    }
    if (cmd == "LIST") {
        if (f.size() < 2 || !protocol::parse_uint(f[1])) {
            close = true;
            co_return std::string();
        }
        co_return "DONE\t" + f[1] + "\tfail\n";
    }
    if (cmd == "CACHE-FLUSH") {
        if (st.listener.role != config::Role::Master || f.size() < 2 || !protocol::parse_uint(f[1])) {
            close = true;
            co_return std::string();
        }
        st.engine.invalidate_backends();
        co_return "OK\t" + f[1] + "\t0\n";
    }
    if (cmd == "CPID") log::warning("auth-master {}: client tried to speak auth-client on a master socket", st.peer);
    close = true;
    co_return std::string();
}

asio::awaitable<void> run_master(std::shared_ptr<MasterState> st) {
    std::string hello = "VERSION\t1\t1\nSPID\t" + std::to_string(::getpid()) + "\n";
    asio::error_code ec;
    co_await asio::async_write(st->socket, asio::buffer(hello), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    protocol::LineBuffer lines(kMasterMaxLine);
    bool version = false;
    char buf[4096];
    for (;;) {
        const std::size_t n = co_await st->socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        lines.append(std::string_view(buf, n));
        while (auto line = lines.next_line()) {
            if (line->size() > kMasterMaxLine || line->find('\0') != std::string::npos) co_return;
            if (!version) {
                auto f = protocol::split_fields(*line);
                if (f[0] != "VERSION" || f.size() < 2 || f[1] != "1") {
                    log::info("auth-master {}: bad handshake; closing", st->peer);
                    co_return;
                }
                version = true;
                st->version = true;
                continue;
            }
            bool close = false;
            std::string reply = co_await handle(*st, *line, close);
            if (close) {
                log::info("auth-master {}: protocol violation; closing", st->peer);
                co_return;
            }
            co_await asio::async_write(st->socket, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
        }
        if (lines.overflowed()) co_return;
    }
}

}  // namespace

void start_master_session(Socket socket, auth::Engine& engine, const config::Listener& listener, std::string peer,
                          std::shared_ptr<const void> slot) {
    auto st = std::make_shared<MasterState>(MasterState{std::move(socket), engine, listener, std::move(peer), std::move(slot)});
    auto ex = st->socket.get_executor();
    asio::co_spawn(ex, handshake_watchdog(st, engine.config().handshake_timeout), LogExceptions{"auth-master watchdog"});
    asio::co_spawn(ex, run_master(std::move(st)), LogExceptions{"auth-master session"});
}

}  // namespace postern::server
