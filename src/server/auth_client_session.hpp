// One auth-client connection (Postfix, Exim, doveadm, IMAP login processes):
// framing, the handshake, and the ids of the requests in flight. Each AUTH
// becomes an auth::Request (src/auth/request.hpp), which answers through
// this session's ReplyPort side; many ids may be in flight at once.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "auth/engine.hpp"
#include "auth/request.hpp"
#include "config/config.hpp"
#include "protocol/auth_client.hpp"
#include "util/deadline.hpp"

namespace postern::server {

using Socket = asio::generic::stream_protocol::socket;

// Limits, each with its reason.
// Requests one connection may have in flight (Dovecot has no limit; a
// Postfix smtpd uses one at a time, a login process a few hundred at most).
inline constexpr std::size_t kMaxRequestsPerConnection = 1024;
// Replies queued for a client that does not read: past this it is dropped.
inline constexpr std::size_t kMaxQueuedOutput = 1 << 20;
// A client must finish VERSION+CPID within [auth] handshake_timeout (30 s
// by default); every request is answered within [auth] request_timeout.
// Login listeners with SCRAM-*-PLUS enabled send their handshake when the
// client's VERSION has come (its minor says whether the client can supply
// channel binding data); a client that waits for the server first gets the
// handshake without -PLUS after this long.
inline constexpr auto kHandshakeGrace = std::chrono::seconds(1);

class AuthClientSession : public auth::ReplyPort, public std::enable_shared_from_this<AuthClientSession> {
public:
    // slot: held for the session's lifetime so the listener can count its connections.
    AuthClientSession(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener, std::string peer,
                      std::shared_ptr<const void> slot);
    void start();
    void close(std::string_view why);

    // auth::ReplyPort
    void cont(std::uint32_t id, std::string_view data, std::string_view channel_binding) override;
    void ok(std::uint32_t id, const std::string& user, const backend::Fields& fields) override;
    void fail(std::uint32_t id, const backend::Fields& fields) override;
    void done(std::uint32_t id) override;

private:
    asio::awaitable<void> reader();
    asio::awaitable<void> writer();
    asio::awaitable<void> watch_handshake();
    asio::awaitable<void> handshake_grace();
    void send_handshake(bool channel_binding);
    void on_line(const std::string& line);
    void on_cpid(unsigned long pid);
    void on_auth(protocol::AuthCmd cmd);
    void on_cont(protocol::ContCmd cmd);
    void send(std::string line);

    Socket socket_;
    auth::CurrentEngine& engine_;  // each AUTH uses the engine current then
    const config::Listener& listener_;
    std::string peer_;
    std::shared_ptr<const void> slot_;
    asio::steady_timer wake_;
    Event handshake_done_;
    Event version_seen_;
    std::deque<std::string> outq_;
    std::size_t queued_bytes_ = 0;
    bool closed_ = false;
    // temp_fail = "disconnect": a temporary failure was answered by closing;
    // the writer closes once the replies queued before it are out.
    bool close_when_flushed_ = false;
    bool got_version_ = false;
    bool got_cpid_ = false;
    unsigned long minor_ = 0;
    bool handshake_sent_ = false;
    // SCRAM-*-PLUS were offered on this connection: a login listener's
    // client that speaks minor >= 3 (a Dovecot 2.4 login process).
    bool channel_binding_ = false;
    bool owns_cpid_ = false;  // origin_.client_pid is registered with the engine (login listeners)
    unsigned long cuid_ = 0;
    auth::Origin origin_;
    std::unordered_map<std::uint32_t, std::shared_ptr<auth::Request>> requests_;
};

}  // namespace postern::server
