// auth-master protocol, server side.
#include "server/master_session.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "auth/fields.hpp"
#include "protocol/line.hpp"
#include "util/deadline.hpp"
#include "util/spawn.hpp"
#include "util/log.hpp"

namespace postern::server {

// Limits, each with its reason.
// LIST output is written in batches of about this size: few syscalls, and a
// reader that stops reading stops the iteration after one batch.
constexpr std::size_t kListBatchBytes = 64 * 1024;
// Names matched against the mask between two yields to the event loop, so a
// long iteration with a mask that matches little cannot hog the loop.
constexpr std::size_t kListYieldEvery = 4096;
// A peer that takes longer than this to accept a reply is dropped.
constexpr auto kWriteTimeout = std::chrono::seconds(30);
// A connection that has not sent VERSION within this time is dropped.

bool master_command_allowed(config::Role role, std::string_view command) {
    if (role == config::Role::Master) return true;
    if (role == config::Role::Userdb) return command == "USER" || command == "LIST";
    return false;
}

namespace {

struct MasterState {
    MasterState(Socket s, auth::CurrentEngine& e, const config::Listener& l, std::string p, std::shared_ptr<const void> sl)
        : socket(std::move(s)), engine(e), listener(l), peer(std::move(p)), slot(std::move(sl)),
          version_seen(socket.get_executor()) {}
    Socket socket;
    auth::CurrentEngine& engine;
    const config::Listener& listener;
    std::string peer;
    std::shared_ptr<const void> slot;
    Event version_seen;  // set at VERSION, or when the session ends
    std::optional<pid_t> peer_pid;  // SO_PEERCRED, unix sockets only
    // Restricted userdb access (a 0666 userdb socket and a peer that is
    // neither its owner nor in its group): USER only for the peer's own uid.
    std::optional<uid_t> restricted_uid;
    bool got_version = false;
    bool write_failed = false;
    // LIST in progress.
    std::uint32_t list_id = 0;
    std::string list_mask;
    std::string list_out;
    std::size_t list_seen = 0;
};
using StatePtr = std::shared_ptr<MasterState>;

// Writes everything or marks the connection broken; a peer that does not
// read within kWriteTimeout is cut off.
asio::awaitable<bool> write_data(StatePtr st, std::string data) {
    asio::error_code ec;
    co_await asio::async_write(st->socket, asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

asio::awaitable<bool> write_all(StatePtr st, std::string data) {
    if (st->write_failed) co_return false;
    auto written = co_await with_deadline(write_data(st, std::move(data)), Clock::now() + kWriteTimeout);
    if (!written || !*written) st->write_failed = true;
    co_return !st->write_failed;
}

// The LIST sink: one user name from the userdb iteration.
asio::awaitable<bool> list_one(StatePtr st, std::string user) {
    if (++st->list_seen % kListYieldEvery == 0) co_await asio::post(st->socket.get_executor(), asio::use_awaitable);
    if (!st->list_mask.empty() && !protocol::mask_match(st->list_mask, user)) co_return true;
    st->list_out += protocol::format_list(st->list_id, user);
    if (st->list_out.size() < kListBatchBytes) co_return true;
    std::string batch = std::move(st->list_out);
    st->list_out.clear();
    const bool ok = co_await write_all(st, std::move(batch));
    co_return ok;
}

// The request a master command looks up: the normalised name, the name as
// sent, and the command's info parameters.
std::shared_ptr<auth::RequestInfo> lookup_info(std::string user, std::string original, auth::RequestParams params) {
    auto info = std::make_shared<auth::RequestInfo>();
    info->user = std::move(user);
    info->original_user = std::move(original);
    info->params = std::move(params);
    return info;
}

asio::awaitable<std::string> do_user(StatePtr st, protocol::LookupCmd cmd) {
    auto user = st->engine->normalize_user(cmd.user);
    if (!user) co_return protocol::format_notfound(cmd.id);
    auto info = lookup_info(*user, cmd.user, std::move(cmd.params));
    backend::UserResult r = co_await st->engine->lookup_user(info);
    switch (r.status) {
        case backend::UserStatus::Found: break;
        case backend::UserStatus::NotFound: co_return protocol::format_notfound(cmd.id);
        case backend::UserStatus::TempFail: co_return protocol::format_master_fail(cmd.id, "temporary failure");
    }
    if (st->restricted_uid) {
        std::string uid;
        for (const auto& [k, v] : r.fields)
            if (k == "uid") uid = v;
        if (uid != std::to_string(*st->restricted_uid)) {
            log::warning("auth-master {}: USER {}: restricted peer (uid {}) may not see user \"{}\"", st->peer,
                         cmd.id, *st->restricted_uid, log::safe(*user));
            co_return protocol::format_master_fail(cmd.id, "Not allowed to see this user");
        }
    }
    co_return protocol::format_user(cmd.id, r.user.empty() ? *user : r.user, r.fields);
}

asio::awaitable<std::string> do_pass(StatePtr st, protocol::LookupCmd cmd) {
    using backend::PassStatus;
    auto user = st->engine->normalize_user(cmd.user);
    if (!user) co_return protocol::format_notfound(cmd.id);
    auto info = lookup_info(*user, cmd.user, std::move(cmd.params));
    backend::PassResult r = co_await st->engine->lookup_pass(info);
    switch (r.status) {
        case PassStatus::Ok: break;
        case PassStatus::UnknownUser:
        case PassStatus::Mismatch:
        case PassStatus::Disabled:
        case PassStatus::Expired:
            co_return protocol::format_notfound(cmd.id);
        case PassStatus::TempFail:
            co_return protocol::format_master_fail(cmd.id, "temporary failure");
        case PassStatus::SchemeUnavailable:
            co_return protocol::format_master_fail(cmd.id, "Configured passdbs don't support credentials lookups");
    }
    backend::Fields out;
    for (const auto& [k, v] : r.extra)
        if (!auth::internal_passdb_field(k)) out.emplace_back(k, v);
    co_return protocol::format_pass(cmd.id, r.user.empty() ? *user : r.user, out);
}

asio::awaitable<std::string> do_list(StatePtr st, protocol::ListCmd cmd) {
    if (st->restricted_uid) {
        log::warning("auth-master {}: LIST refused to a restricted peer (uid {})", st->peer, *st->restricted_uid);
        co_return protocol::format_done(cmd.id, true);
    }
    st->list_id = cmd.id;
    st->list_mask = std::move(cmd.mask);
    st->list_out.clear();
    st->list_seen = 0;
    // Not a coroutine itself: each call hands back list_one's awaitable.
    backend::Userdb::IterSink sink = [st](std::string user) { return list_one(st, std::move(user)); };
    backend::IterStatus status = co_await st->engine->iterate_users(std::move(sink));
    std::string tail = std::move(st->list_out);
    st->list_out.clear();
    st->list_mask.clear();
    if (status == backend::IterStatus::Unsupported)
        log::info("auth-master {}: LIST: no userdb can iterate users", st->peer);
    tail += protocol::format_done(cmd.id, status != backend::IterStatus::Done);
    co_return tail;
}

asio::awaitable<std::string> do_request(StatePtr st, protocol::RequestCmd cmd) {
    // The post-login process says which process it serves; on a unix socket
    // the kernel says who is asking, and the two must agree.
    if (cmd.session_pid && st->peer_pid && static_cast<pid_t>(*cmd.session_pid) != *st->peer_pid) {
        log::warning("auth-master {}: REQUEST {}: session_pid={} but the peer is pid {}", st->peer, cmd.id,
                     *cmd.session_pid, *st->peer_pid);
        co_return protocol::format_master_fail(cmd.id);
    }
    auto login = st->engine->logins().redeem(cmd.client_pid, cmd.auth_id, cmd.cookie);
    if (!login) {
        log::info("auth-master {}: REQUEST {}: no pending login for pid {} id {} with that cookie", st->peer, cmd.id,
                  cmd.client_pid, cmd.auth_id);
        co_return protocol::format_master_fail(cmd.id);
    }
    auto info = lookup_info(login->user, login->user, std::move(login->params));
    info->mech = login->mech;
    info->client_pid = cmd.client_pid;
    info->prefetch = std::move(login->userdb);
    info->passdb_checked = true;
    backend::UserResult r = co_await st->engine->lookup_user(info);
    switch (r.status) {
        case backend::UserStatus::Found: break;
        case backend::UserStatus::NotFound:
            log::info("auth-master {}: REQUEST {}: user \"{}\" not in any userdb", st->peer, cmd.id, log::safe(login->user));
            co_return protocol::format_notfound(cmd.id);
        case backend::UserStatus::TempFail:
            co_return protocol::format_master_fail(cmd.id, "temporary failure");
    }
    backend::Fields fields = std::move(r.fields);
    fields.emplace_back("auth_mech", login->mech);
    if (!login->master_user.empty()) {
        // A master user's login: the mail process learns who really logged in.
        if (!auth::has_field(fields, "master_user")) fields.emplace_back("master_user", login->master_user);
        fields.emplace_back("auth_user", login->master_user);
    }
    log::info("auth-master {}: REQUEST {}: login of \"{}\" handed over", st->peer, cmd.id, log::safe(login->user));
    co_return protocol::format_user(cmd.id, r.user.empty() ? login->user : r.user, fields);
}

// The reply to a command the listener's role does not serve.
std::string refusal(const protocol::MasterCommand& cmd) {
    std::uint32_t id = 0;
    std::visit([&id](const auto& c) {
        if constexpr (requires { c.id; }) id = c.id;
    }, cmd);
    if (std::holds_alternative<protocol::ListCmd>(cmd)) return protocol::format_done(id, true);
    return protocol::format_master_fail(id, "Not allowed on this socket");
}

asio::awaitable<std::string> ready(std::string reply) { co_return reply; }

// Whether a command ends the connection instead of being answered.
bool must_close(const StatePtr& st, const protocol::MasterCommand& cmd) {
    if (auto* v = std::get_if<protocol::MasterViolation>(&cmd)) {
        log::info("auth-master {}: {}; closing", st->peer, v->message);
        return true;
    }
    if (std::holds_alternative<protocol::MasterVersionCmd>(cmd)) {
        log::info("auth-master {}: VERSION sent twice; closing", st->peer);
        return true;
    }
    return false;
}

// The reply coroutine for one command (not a coroutine itself, so the
// variant never lives in a coroutine frame).
asio::awaitable<std::string> dispatch(const StatePtr& st, protocol::MasterCommand& cmd) {
    const std::string_view name = protocol::command_name(cmd);
    if (!master_command_allowed(st->listener.role, name)) {
        log::warning("auth-master {}: {} is not allowed on a {} listener", st->peer, name,
                     config::to_string(st->listener.role));
        return ready(refusal(cmd));
    }
    if (auto* c = std::get_if<protocol::LookupCmd>(&cmd)) {
        if (c->kind == protocol::LookupCmd::Kind::User) return do_user(st, std::move(*c));
        return do_pass(st, std::move(*c));
    }
    if (auto* c = std::get_if<protocol::ListCmd>(&cmd)) return do_list(st, std::move(*c));
    if (auto* c = std::get_if<protocol::RequestCmd>(&cmd)) return do_request(st, std::move(*c));
    const auto& flush = std::get<protocol::CacheFlushCmd>(cmd);
    // No users: everything, and the backends re-check their sources too.
    if (flush.users.empty()) st->engine->invalidate_backends();
    const std::size_t n = st->engine->flush_cache(flush.users);
    log::info("auth-master {}: cache flushed ({} entries{})", st->peer, n, flush.users.empty() ? ", all users" : "");
    return ready(protocol::format_cache_flushed(flush.id, n));
}

asio::awaitable<void> watch_handshake(StatePtr st) {
    const bool seen = co_await with_deadline(st->version_seen.wait(), Clock::now() + st->engine->config().handshake_timeout);
    if (!seen && !st->got_version && st->socket.is_open()) {
        log::info("auth-master {}: no VERSION in time; closing", st->peer);
        asio::error_code ec;
        st->socket.close(ec);
    }
}

asio::awaitable<void> serve(StatePtr st) {
    const bool sent = co_await write_all(st, protocol::format_master_handshake(static_cast<unsigned long>(::getpid())));
    if (!sent) co_return;
    protocol::LineBuffer lines(kMasterMaxLine);
    char buf[4096];
    for (;;) {
        asio::error_code ec;
        const std::size_t n = co_await st->socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        lines.append(std::string_view(buf, n));
        while (auto line = lines.next_line()) {
            auto cmd = protocol::parse_master_line(*line);
            if (!st->got_version) {
                auto* v = std::get_if<protocol::MasterVersionCmd>(&cmd);
                if (!v || v->major != 1) {
                    log::info("auth-master {}: bad handshake; closing", st->peer);
                    co_return;
                }
                st->got_version = true;
                st->version_seen.set();
                continue;
            }
            if (must_close(st, cmd)) co_return;
            std::string reply = co_await dispatch(st, cmd);
            const bool ok = co_await write_all(st, std::move(reply));
            if (!ok) co_return;
        }
        if (lines.overflowed()) {
            log::info("auth-master {}: line longer than {} bytes; closing", st->peer, kMasterMaxLine);
            co_return;
        }
    }
}

asio::awaitable<void> run_master(StatePtr st) {
    co_await serve(st);
    // Whatever ended the session, the peer sees the close now.
    asio::error_code ec;
    st->version_seen.set();
    st->socket.shutdown(asio::socket_base::shutdown_both, ec);
    st->socket.close(ec);
}

}  // namespace

void start_master_session(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener, std::string peer,
                          std::shared_ptr<const void> slot) {
    auto st = std::make_shared<MasterState>(std::move(socket), engine, listener, std::move(peer), std::move(slot));
    if (listener.type == config::Listener::Type::Unix) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(st->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            if (cred.pid > 0) st->peer_pid = cred.pid;
            // As Dovecot does: a world-writable (exactly 0666) userdb socket
            // lets anyone look up only their own user; its owner and group
            // keep full access.
            struct stat sb {};
            if (listener.role == config::Role::Userdb && listener.mode.value_or(0600) == 0666 &&
                ::stat(listener.path.c_str(), &sb) == 0 && cred.uid != sb.st_uid && cred.gid != sb.st_gid)
                st->restricted_uid = cred.uid;
        }
    }
    auto ex = st->socket.get_executor();
    asio::co_spawn(ex, watch_handshake(st), LogExceptions{"auth-master handshake"});
    asio::co_spawn(ex, run_master(std::move(st)), LogExceptions{"auth-master session"});
}

}  // namespace postern::server
