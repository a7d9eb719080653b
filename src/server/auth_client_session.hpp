// One auth-client connection (Postfix, Exim, doveadm, IMAP login processes):
// a reader coroutine that parses lines and starts a coroutine per request
// (many ids in flight), and a writer that drains the reply queue.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/mech/mechanism.hpp"

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

class AuthClientSession : public std::enable_shared_from_this<AuthClientSession> {
public:
    // slot: held for the session's lifetime so the listener can count its connections.
    AuthClientSession(Socket socket, auth::Engine& engine, const config::Listener& listener, std::string peer,
                      std::shared_ptr<const void> slot);
    void start();
    void close(std::string_view why);

private:
    struct Request {
        std::uint32_t id = 0;
        const mech::MechInfo* info = nullptr;
        std::unique_ptr<mech::Mechanism> mech;
        protocol::RequestParams params;
        std::string user;  // last known user name (for FAIL user=)
        // From a credentials lookup, kept for a success a later step reports.
        backend::Fields extra, userdb;
        // Why a credentials lookup said no, while the mechanism goes on with
        // a fake credential; the log reason when the exchange then fails.
        std::string lookup_reason;
        // Authenticated, the final server data sent as a CONT; the OK goes
        // out when the client answers it with an empty response.
        std::optional<std::string> success_user;
        bool awaiting_cont = false;
        bool finished = false;
        std::chrono::steady_clock::time_point started;
        std::chrono::steady_clock::time_point last_input;
        bool penalty_checked = false;  // the per-IP penalty wait is done once per request
        std::string penalty_group;     // "" = no penalty applies
        std::string password_digest;   // keyed hash of the password tried (penalty)
        std::string fail_code;         // code= of the FAIL reply (authz_fail...), "" for none
        std::string master_user;       // a master user's login as `user`: the master's name
    };
    using RequestPtr = std::shared_ptr<Request>;

    asio::awaitable<void> reader();
    asio::awaitable<void> writer();
    asio::awaitable<void> sweeper();
    void on_line(const std::string& line);
    void on_auth(protocol::AuthCmd cmd);
    void on_cont(protocol::ContCmd cmd);
    asio::awaitable<void> run(RequestPtr req, mech::Step step);
    asio::awaitable<void> wait_penalty(RequestPtr req);
    struct PassdbOutcome {
        backend::PassStatus status = backend::PassStatus::TempFail;
        mech::PassdbAnswer answer;
        backend::Fields extra, userdb;
    };
    // Runs a VerifyPlain or LookupCredentials step against the passdbs.
    asio::awaitable<PassdbOutcome> passdb_call(RequestPtr req, mech::Step step);
    // Passdb part of a VerifyPlain step, master users included; fills answer/extra/userdb.
    asio::awaitable<backend::PassResult> verify_step(RequestPtr req, std::string login, std::string target,
                                                     Secret password);
    auth::RequestPtr request_info(const RequestPtr& req, const std::string& user, const std::string& original) const;
    asio::awaitable<void> finish_fail(RequestPtr req, std::string reason, bool temp, bool nodelay);
    void finish_ok(const RequestPtr& req, const std::string& user, const backend::Fields& extra,
                   const backend::Fields& userdb, const std::string& final_data);
    void send(std::string line);
    static std::string fail_reason(const Request& req, const mech::Step& step);
    void log_result(const Request& req, std::string_view result, std::string_view reason) const;

    Socket socket_;
    auth::Engine& engine_;
    const config::Listener& listener_;
    std::string peer_;
    std::shared_ptr<const void> slot_;
    asio::steady_timer wake_;
    std::deque<std::string> outq_;
    std::size_t queued_bytes_ = 0;
    bool closed_ = false;
    bool got_version_ = false;
    bool got_cpid_ = false;
    unsigned long minor_ = 0;
    unsigned long cpid_ = 0;
    bool owns_cpid_ = false;  // cpid_ is registered with the engine (login listeners)
    unsigned long cuid_ = 0;
    std::string cookie_;
    std::unordered_map<std::uint32_t, RequestPtr> requests_;
};

}  // namespace postern::server
