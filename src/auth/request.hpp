// One authentication request, from its AUTH to its OK or FAIL: the
// mechanism and its step loop, the master-user split, the passdb chain, the
// per-IP penalty wait, the failure delay (with jitter), the failure reason
// and the result log line. It talks to its connection only through a
// ReplyPort; the connection keeps framing, handshake and ids.
//
// Deadlines (auth.request_timeout): a request waiting for the client's
// continuation longer than that is dropped without a reply (a later CONT
// is answered "timed out" by the connection); one still in the passdb chain
// that long after the client's last message is answered with a temporary
// failure at once, and the chain's late answer is dropped.
#pragma once

#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/engine.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/deadline.hpp"
#include "util/timeout.hpp"

namespace postern::auth {

// What a request says to its connection.
class ReplyPort {
public:
    virtual ~ReplyPort() = default;
    // A challenge (raw bytes; the connection encodes them for the wire);
    // channel_binding: a type whose data the client is asked to send with
    // its response (SCRAM-*-PLUS), "" for none.
    virtual void cont(std::uint32_t id, std::string_view data, std::string_view channel_binding) = 0;
    virtual void ok(std::uint32_t id, const std::string& user, const backend::Fields& fields) = 0;
    virtual void fail(std::uint32_t id, const backend::Fields& fields) = 0;
    // The request is over, answered or dropped: the id is free again.
    virtual void done(std::uint32_t id) = 0;
};

// What a request knows about its connection.
struct Origin {
    config::Role role = config::Role::Client;
    bool trusted = false;           // the listener's clients may say no-penalty
    unsigned long client_pid = 0;   // login listeners: the CPID (REQUEST)
    std::string cookie;             // login listeners: the connection's COOKIE
    std::string peer;               // for log lines
    std::string log_mech;           // mech= of the result line ("" = the mechanism's name)
    // Set per request by the connection: the -PLUS variant of the request's
    // mechanism was offered to the end client (SCRAM downgrade check).
    bool channel_binding_offered = false;
};

class Request : public std::enable_shared_from_this<Request> {
public:
    Request(asio::any_io_executor ex, Engine& engine, std::shared_ptr<ReplyPort> port, const Origin& origin,
            std::uint32_t id, const mech::MechInfo& mech, RequestParams params);

    // The AUTH: starts the exchange with the client's initial response.
    void start(std::optional<std::string> initial);
    // Whether the request waits for the client's continuation now.
    bool awaiting_cont() const { return awaiting_cont_; }
    // The client's continuation, base64-decoded; only while awaiting_cont().
    // channel_binding: decoded channel binding data sent with it, taken only
    // when the challenge asked for it (anything else fails the request).
    void on_cont(std::string data, std::optional<std::string> channel_binding = std::nullopt);
    // CANCEL, or the connection is gone: nothing more is said or done for it.
    void cancel();

private:
    asio::awaitable<void> run(mech::Step step);
    // The penalty, once per request: penalty_at_once() decides without
    // suspending when it can (no group, the local rule, or the shared counters
    // fresh in the cluster's cache) and answers true when nothing is to wait;
    // else wait_penalty() asks Redis if needed and waits the delay.
    bool penalty_at_once();
    asio::awaitable<void> wait_penalty();
    struct PassdbOutcome {
        backend::PassStatus status = backend::PassStatus::TempFail;
        mech::PassdbAnswer answer;
        backend::Fields extra, userdb;
    };
    asio::awaitable<PassdbOutcome> passdb_call(mech::Step step);
    asio::awaitable<backend::PassResult> verify_step(std::string login, std::string target, Secret password);
    asio::awaitable<backend::PassResult> master_login(std::string master_name, std::string target, Secret password);
    RequestPtr info(std::string user, std::string original) const;
    void send_cont(std::string_view data, std::string_view channel_binding = {});
    void on_timeout();  // request_timeout passed (see the top of this file)
    asio::awaitable<void> finish_fail(std::string reason, bool temp, bool nodelay);
    void finish_ok(const std::string& user, const std::string& final_data);
    void reply_fail(bool temp);
    std::string fail_reason(const mech::Step& step) const;
    void log_result(std::string_view result, std::string_view reason) const;
    void spawn_run(mech::Step step);

    asio::any_io_executor ex_;
    Engine& engine_;
    // The generation this request started on stays alive (a reload does not
    // change a request in flight); null when the engine is not shared-owned.
    std::shared_ptr<Engine> engine_pin_;
    // Weak: the connection keeps its requests, not the other way round, so
    // a request still in a backend when the daemon stops leaves no cycle.
    // A connection that is gone hears nothing.
    std::weak_ptr<ReplyPort> port_;
    Origin origin_;
    std::uint32_t id_;
    const mech::MechInfo& info_;
    std::unique_ptr<mech::Mechanism> mech_;
    RequestParams params_;
    std::string user_;  // last known user name (for FAIL user=)
    std::string typed_user_;  // the name as the client sent it (OK original_user= when it differs)
    // From a credentials lookup, kept for a success a later step reports.
    backend::Fields extra_, userdb_;
    // Why a credentials lookup said no, while the mechanism goes on with a
    // fake credential; the log reason when the exchange then fails.
    std::string lookup_reason_;
    // Authenticated, the final server data sent as a CONT; the OK goes out
    // when the client answers it with an empty response.
    std::optional<std::string> success_user_;
    bool awaiting_cont_ = false;
    bool cbind_asked_ = false;  // the challenge awaiting its answer asked for channel binding data
    bool over_ = false;  // answered, dropped or cancelled
    // Armed while the request waits for the client's continuation or for
    // the passdb chain: a heap entry, not a timer of its own.
    Timeout timeout_;
    Clock::time_point started_, last_input_;
    bool penalty_checked_ = false;  // the per-IP penalty wait is done once per request
    std::string penalty_group_;     // "" = no penalty applies
    std::string password_digest_;   // keyed hash of the password tried (penalty)
    std::string shared_digest_;     // the same for the shared penalty ([cluster])
    Cluster::Keys cluster_keys_;    // with [cluster]: the shared penalty's keys (account: the normalized name typed)
    std::string penalty_rule_;      // the penalty rule that delayed this request ("" none)
    std::optional<Cluster::Verdict> verdict_;  // penalty_at_once()'s verdict (none: Redis must be asked)
    std::string fail_code_;         // code= of a FAIL (authz_fail...), "" for none
    std::string master_user_;       // a master user's login as user_: the master's name
};

}  // namespace postern::auth
