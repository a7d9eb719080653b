// Auth-client session: handshake, AUTH/CONT/CANCEL framing and replies; the
// requests themselves are auth::Request.
#include "server/auth_client_session.hpp"

#include <unistd.h>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <openssl/rand.h>

#include "protocol/line.hpp"
#include "util/encoding.hpp"
#include "util/log.hpp"
#include "util/spawn.hpp"

namespace postern::server {

namespace {

std::string make_cookie() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
    return hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace

AuthClientSession::AuthClientSession(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener,
                                     std::string peer, std::shared_ptr<const void> slot)
    : socket_(std::move(socket)), engine_(engine), listener_(listener), peer_(std::move(peer)), slot_(std::move(slot)),
      wake_(socket_.get_executor()), handshake_done_(socket_.get_executor()), version_seen_(socket_.get_executor()) {
    wake_.expires_at(Clock::time_point::max());
    cuid_ = engine_->next_cuid();
    origin_.role = listener_.role;
    origin_.trusted = listener_.trusted;
    origin_.cookie = make_cookie();
    origin_.peer = peer_;
}

void AuthClientSession::start() {
    auto self = shared_from_this();
    // The whole handshake goes out at once, without waiting for the client:
    // Exim waits for DONE before it says anything. Only a client that has
    // said VERSION 1 3 or later may be offered SCRAM-*-PLUS (it must supply
    // channel binding data), and only login processes can (from their TLS
    // connection), so a login listener with -PLUS enabled waits for the
    // client's VERSION first, as Dovecot 2.4's own login socket does: every
    // login process, Dovecot 2.3 or 2.4, sends VERSION and CPID as soon as it
    // connects. Client listeners (Postfix, Exim, doveadm) never offer -PLUS.
    bool wait_for_version = false;
    if (listener_.role == config::Role::Login)
        for (const auto& a : engine_->adverts()) wait_for_version = wait_for_version || a.channel_binding();
    if (wait_for_version)
        asio::co_spawn(socket_.get_executor(), [self] { return self->handshake_grace(); },
                       LogExceptions{"auth-client handshake"});
    else
        send_handshake(false);
    asio::co_spawn(socket_.get_executor(), [self] { return self->writer(); }, LogExceptions{"auth-client writer"});
    asio::co_spawn(socket_.get_executor(), [self] { return self->reader(); }, LogExceptions{"auth-client reader"});
    asio::co_spawn(socket_.get_executor(), [self] { return self->watch_handshake(); },
                   LogExceptions{"auth-client handshake"});
}

void AuthClientSession::close(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    if (!why.empty()) log::info("auth-client {}: closing connection: {}", peer_, why);
    if (owns_cpid_) {
        engine_->logins().release_cpid(origin_.client_pid);
        owns_cpid_ = false;
    }
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.close(ec);
    wake_.cancel();
    handshake_done_.set();
    version_seen_.set();
    for (auto& [id, r] : requests_) r->cancel();
    requests_.clear();
}

void AuthClientSession::send(std::string line) {
    if (closed_) return;
    queued_bytes_ += line.size();
    outq_.push_back(std::move(line));
    if (queued_bytes_ > kMaxQueuedOutput) {
        close("client does not read its replies");
        return;
    }
    wake_.cancel_one();
}

void AuthClientSession::send_handshake(bool channel_binding) {
    handshake_sent_ = true;
    channel_binding_ = channel_binding;
    send(protocol::format_handshake(engine_->adverts(), static_cast<unsigned long>(::getpid()), cuid_, origin_.cookie,
                                    channel_binding));
}

void AuthClientSession::cont(std::uint32_t id, std::string_view data, std::string_view channel_binding) {
    send(protocol::format_cont(id, base64_encode(data), channel_binding));
}

void AuthClientSession::ok(std::uint32_t id, const std::string& user, const backend::Fields& fields) {
    send(protocol::format_ok(id, user, fields));
}

void AuthClientSession::fail(std::uint32_t id, const backend::Fields& fields) {
    // The request is already done(): no other one in flight means closing
    // loses nothing but this answer, which the client reads as temporary.
    bool temp = false;
    for (const auto& [k, v] : fields) temp = temp || (k == "code" && v == "temp_fail");
    if (temp && listener_.temp_fail_disconnect && requests_.empty()) {
        close_when_flushed_ = true;
        wake_.cancel_one();
        return;
    }
    send(protocol::format_fail(id, fields));
}

void AuthClientSession::done(std::uint32_t id) { requests_.erase(id); }

asio::awaitable<void> AuthClientSession::writer() {
    auto self = shared_from_this();
    while (!closed_) {
        if (outq_.empty()) {
            if (close_when_flushed_) {
                close("temporary failure answered by closing the connection (temp_fail = \"disconnect\")");
                co_return;
            }
            asio::error_code ec;
            co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        // Coalesce queued replies into one write.
        std::string batch;
        while (!outq_.empty() && batch.size() < 65536) {
            batch += outq_.front();
            queued_bytes_ -= outq_.front().size();
            outq_.pop_front();
        }
        asio::error_code ec;
        co_await asio::async_write(socket_, asio::buffer(batch), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            close("");
            co_return;
        }
    }
}

asio::awaitable<void> AuthClientSession::watch_handshake() {
    auto self = shared_from_this();
    const bool done = co_await with_deadline(handshake_done_.wait(), Clock::now() + engine_->config().handshake_timeout);
    if (!done && !closed_) close("handshake not completed in time");
}

asio::awaitable<void> AuthClientSession::handshake_grace() {
    auto self = shared_from_this();
    const bool seen = co_await with_deadline(version_seen_.wait(), Clock::now() + kHandshakeGrace);
    if (seen || closed_ || handshake_sent_) co_return;
    // A client that reads first (not a login process): no -PLUS for it.
    log::debug("auth-client {}: no VERSION within {} ms: handshake without channel binding mechanisms", peer_,
               std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakeGrace).count());
    send_handshake(false);
}

asio::awaitable<void> AuthClientSession::reader() {
    auto self = shared_from_this();
    protocol::LineBuffer lines(protocol::kAuthClientMaxLine);
    char buf[16384];
    while (!closed_) {
        asio::error_code ec;
        const std::size_t n = co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            close("");
            co_return;
        }
        lines.append(std::string_view(buf, n));
        while (!closed_) {
            auto line = lines.next_line();
            if (!line) break;
            if (line->size() > protocol::kAuthClientMaxLine) {
                close("line too long");
                co_return;
            }
            on_line(*line);
        }
        if (!closed_ && lines.overflowed()) {
            log::warning("auth-client {}: sent more than {} bytes without a newline", peer_, protocol::kAuthClientMaxLine);
            close("line too long");
            co_return;
        }
    }
}

void AuthClientSession::on_line(const std::string& line) {
    auto cmd = protocol::parse_client_line(line);
    if (auto* v = std::get_if<protocol::ProtocolViolation>(&cmd)) {
        close(v->message);
        return;
    }
    if (auto* v = std::get_if<protocol::VersionCmd>(&cmd)) {
        if (got_version_) return close("VERSION sent twice");
        if (v->major != 1) return close("client speaks protocol major version " + std::to_string(v->major));
        got_version_ = true;
        minor_ = v->minor;
        version_seen_.set();
        if (!handshake_sent_) send_handshake(minor_ >= protocol::kMinorChannelBinding);
        return;
    }
    if (!got_version_) return close("command before VERSION");
    if (auto* c = std::get_if<protocol::CpidCmd>(&cmd)) return on_cpid(c->pid);
    if (!got_cpid_) return close("command before CPID");
    if (auto* a = std::get_if<protocol::AuthCmd>(&cmd)) return on_auth(std::move(*a));
    if (auto* c = std::get_if<protocol::ContCmd>(&cmd)) return on_cont(std::move(*c));
    if (auto* c = std::get_if<protocol::CancelCmd>(&cmd)) {
        if (auto it = requests_.find(c->id); it != requests_.end()) {
            it->second->cancel();
            requests_.erase(it);
        }
        // Dovecot 2.4.4+ clients (minor 4) wait for the server to confirm.
        if (minor_ >= protocol::kMinorCancelled) send(protocol::format_cancelled(c->id));
        return;
    }
}

void AuthClientSession::on_cpid(unsigned long pid) {
    if (got_cpid_) return close("CPID sent twice");
    got_cpid_ = true;
    handshake_done_.set();
    // On plain client sockets the pid means nothing (TCP clients on other
    // hosts); it only identifies login clients for REQUEST.
    if (listener_.role != config::Role::Login) return;
    origin_.client_pid = pid;
    // One live connection per login process: a second one with the same pid
    // could replace the first one's pending logins.
    std::string holder;
    if (!engine_->logins().claim_cpid(pid, peer_, holder)) {
        log::warning("auth-client {}: CPID {} is already in use by connection {}; refusing the new connection", peer_,
                     pid, holder);
        return close("");
    }
    owns_cpid_ = true;
}

void AuthClientSession::on_auth(protocol::AuthCmd cmd) {
    if (requests_.count(cmd.id)) return close("AUTH with an id already in use");
    if (requests_.size() >= kMaxRequestsPerConnection) return close("too many requests in flight");
    const mech::MechInfo* mech = engine_->enabled_mech(cmd.mechanism);
    // -PLUS only where it was offered (never to 2.3 clients, Postfix, Exim).
    if (mech && !channel_binding_ && mech::has_flag(*mech, mech::flag::kChannelBinding)) mech = nullptr;
    if (!mech) {
        log::info("auth-client {}: unsupported mechanism \"{}\"", peer_, log::safe(cmd.mechanism, 32));
        engine_->metrics().protocol_error(listener_.role, "auth_mech_invalid");
        send(protocol::format_fail(cmd.id, {{"code", "auth_mech_invalid"}, {"reason", "Unsupported authentication mechanism"}}));
        return;
    }
    std::optional<std::string> initial;
    if (cmd.resp && !(cmd.resp->empty() && minor_ < protocol::kMinorEmptyResp)) {
        // An empty resp= from a minor-0 client (Postfix, Exim) means "none".
        auto decoded = base64_decode(*cmd.resp);
        if (!decoded) {
            engine_->metrics().protocol_error(listener_.role, "invalid_base64");
            send(protocol::format_fail(cmd.id, {{"code", "invalid_base64"}, {"reason", "Invalid base64 data in initial response"}}));
            return;
        }
        initial = std::move(*decoded);
    }
    // The login process offers -PLUS to its client only over TLS; then a
    // SCRAM "y" means the -PLUS name was stripped on the way.
    auth::Origin origin = origin_;
    origin.channel_binding_offered = channel_binding_ && cmd.params.secured_value == "tls" &&
                                     engine_->enabled_mech(std::string(mech->name) + "-PLUS") != nullptr;
    auto req = std::make_shared<auth::Request>(socket_.get_executor(), *engine_, shared_from_this(), origin, cmd.id,
                                               *mech, std::move(cmd.params));
    requests_[cmd.id] = req;
    req->start(std::move(initial));
}

void AuthClientSession::on_cont(protocol::ContCmd cmd) {
    auto it = requests_.find(cmd.id);
    if (it == requests_.end()) {
        send(protocol::format_fail(cmd.id, {{"reason", "Authentication request timed out"}}));
        return;
    }
    auto req = it->second;
    if (!req->awaiting_cont()) {
        send(protocol::format_fail(cmd.id, {{"reason", "Unexpected continuation"}}));
        return;
    }
    // Parameters after the data only from clients that speak minor 3 (as Dovecot).
    auto decoded = cmd.extra_fields && minor_ < protocol::kMinorChannelBinding ? std::nullopt : base64_decode(cmd.data);
    std::optional<std::string> cbind;
    if (decoded && cmd.channel_binding) {
        cbind = base64_decode(*cmd.channel_binding);
        if (!cbind) decoded.reset();
    }
    if (!decoded) {
        req->cancel();
        requests_.erase(it);
        engine_->metrics().protocol_error(listener_.role, "invalid_base64");
        send(protocol::format_fail(cmd.id, {{"code", "invalid_base64"}, {"reason", "Invalid base64 data in continued response"}}));
        return;
    }
    req->on_cont(std::move(*decoded), std::move(cbind));
}

}  // namespace postern::server
