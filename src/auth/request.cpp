// One authentication request: mechanism steps, passdb chain, master users,
// penalty, failure delay, result line (see request.hpp).
#include "auth/request.hpp"

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <random>

#include "auth/fields.hpp"
#include "util/encoding.hpp"
#include "util/log.hpp"
#include "util/spawn.hpp"

namespace postern::auth {

using backend::PassStatus;

namespace {

// Uniform in [0, 1), for the failure-delay jitter (not a secret).
double random_unit() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// A refused login reported for `user` (a master login's target).
backend::PassResult refusal(PassStatus status, std::string user) {
    auto r = backend::PassResult::of(status);
    r.user = std::move(user);
    return r;
}

}  // namespace

Request::Request(asio::any_io_executor ex, Engine& engine, std::shared_ptr<ReplyPort> port, const Origin& origin,
                 std::uint32_t id, const mech::MechInfo& mech, RequestParams params)
    : ex_(std::move(ex)), engine_(engine), engine_pin_(engine.weak_from_this().lock()), port_(std::move(port)),
      origin_(origin), id_(id), info_(mech), params_(std::move(params)), timeout_(ex_, [this] { on_timeout(); }),
      started_(Clock::now()), last_input_(started_) {}

void Request::spawn_run(mech::Step step) {
    asio::co_spawn(ex_, run(std::move(step)), LogExceptions{"auth request"});
}

void Request::start(std::optional<std::string> initial) {
    if (initial && !info_.allows_nul && initial->find('\0') != std::string::npos) {
        asio::co_spawn(ex_, finish_fail("nul_in_data", false, false), LogExceptions{"auth request"});
        return;
    }
    mech::MechContext mctx;
    mctx.settings = engine_.mech_settings();
    mctx.service = params_.service;
    mctx.valid_client_cert = params_.valid_client_cert;
    mctx.cert_username = params_.cert_username;
    mctx.channel_binding_offered = origin_.channel_binding_offered;
    mech_ = info_.make(mctx);
    spawn_run(mech_->start(std::move(initial)));
}

void Request::on_cont(std::string data, std::optional<std::string> channel_binding) {
    if (over_ || !awaiting_cont_) return;
    awaiting_cont_ = false;
    timeout_.cancel();
    last_input_ = Clock::now();
    if (!info_.allows_nul && data.find('\0') != std::string::npos) {
        asio::co_spawn(ex_, finish_fail("nul_in_data", false, false), LogExceptions{"auth request"});
        return;
    }
    if (channel_binding && !std::exchange(cbind_asked_, false)) {
        auto f = mech::Step::fail(mech::FailReason::ChannelBinding);
        f.detail = "channel binding data with a response that was not asked for it";
        spawn_run(std::move(f));
        return;
    }
    if (success_user_) {
        // The answer to the final server data: empty, or the exchange fails.
        if (data.empty()) {
            finish_ok(*success_user_, std::string());
            return;
        }
        success_user_.reset();
        spawn_run(mech::Step::fail(data == "*" ? mech::FailReason::Aborted : mech::FailReason::OutOfOrder));
        return;
    }
    if (data == "*") spawn_run(mech::Step::fail(mech::FailReason::Aborted));
    else {
        if (channel_binding) mech_->set_channel_binding(std::move(*channel_binding));
        spawn_run(mech_->on_response(std::move(data)));
    }
}

void Request::cancel() {
    over_ = true;
    awaiting_cont_ = false;
    timeout_.cancel();
}

void Request::send_cont(std::string_view data, std::string_view channel_binding) {
    awaiting_cont_ = true;
    cbind_asked_ = !channel_binding.empty();
    // A client that does not answer within request_timeout (counted from
    // the AUTH) loses the request.
    timeout_.arm(started_ + engine_.config().request_timeout);
    if (auto port = port_.lock()) port->cont(id_, data, channel_binding);
}

void Request::on_timeout() {
    auto self = shared_from_this();  // the reply may end the connection's hold on it
    if (over_) return;
    over_ = true;
    if (awaiting_cont_) {
        // The client never answered the challenge: dropped without a reply.
        awaiting_cont_ = false;
        if (auto port = port_.lock()) port->done(id_);
        return;
    }
    // Still in the passdb chain: a temporary failure now; run() drops the
    // chain's late answer when it comes.
    log_result("tempfail", "request_timeout");
    reply_fail(true);
}

asio::awaitable<void> Request::run(mech::Step step) {
    auto self = shared_from_this();
    for (;;) {
        if (over_) co_return;
        switch (step.kind) {
            case mech::Step::Kind::Challenge:
                send_cont(step.data, step.channel_binding);
                co_return;
            case mech::Step::Kind::Fail:
                co_await finish_fail(fail_reason(step), false, has_field(extra_, "nodelay"));
                co_return;
            case mech::Step::Kind::Success:
                finish_ok(step.user, step.data);
                co_return;
            case mech::Step::Kind::VerifyToken: {
                if (!step.user.empty()) user_ = step.user;
                if (!penalty_checked_ && !penalty_at_once()) {
                    co_await wait_penalty();
                    if (over_) co_return;
                }
                if (!penalty_group_.empty()) password_digest_ = engine_.password_digest(step.password.view());
                timeout_.arm(last_input_ + engine_.config().request_timeout);
                backend::oauth2::TokenAnswer a = co_await engine_.verify_token(std::move(step.password));
                timeout_.cancel();
                if (over_) co_return;
                if (a.status == backend::oauth2::TokenAnswer::Status::TempFail) {
                    log::debug("auth-client {}: token check: {}", origin_.peer, log::safe(a.why, 300));
                    co_await finish_fail("temp_fail", true, false);
                    co_return;
                }
                mech::TokenAnswer t;
                t.valid = a.status == backend::oauth2::TokenAnswer::Status::Valid;
                if (t.valid && engine_.valid_name(a.user)) user_ = a.user;
                t.user = std::move(a.user);
                t.why = std::move(a.why);
                step = mech_->on_token(t);
                break;
            }
            case mech::Step::Kind::VerifyPlain:
            case mech::Step::Kind::LookupCredentials: {
                user_ = step.user;
                if (!penalty_checked_ && !penalty_at_once()) {
                    co_await wait_penalty();
                    if (over_) co_return;
                }
                if (step.kind == mech::Step::Kind::VerifyPlain && !penalty_group_.empty()) {
                    password_digest_ = engine_.password_digest(step.password.view());
                    shared_digest_ = engine_.shared_password_digest(step.password.view());
                }
                const bool verify = step.kind == mech::Step::Kind::VerifyPlain;
                // The chain gets until request_timeout after the client's last
                // message; past that on_timeout() answers with a temporary
                // failure and the chain's late answer is dropped here
                // (backends end their own work by their own timeouts).
                timeout_.arm(last_input_ + engine_.config().request_timeout);
                PassdbOutcome out = co_await passdb_call(std::move(step));
                timeout_.cancel();
                if (over_) co_return;
                if (engine_.valid_name(out.answer.user)) user_ = out.answer.user;
                if (out.status == PassStatus::TempFail) {
                    co_await finish_fail("temp_fail", true, false);
                    co_return;
                }
                const bool negative = out.status == PassStatus::UnknownUser || out.status == PassStatus::Mismatch ||
                                      out.status == PassStatus::SchemeUnavailable;
                if (out.status != PassStatus::Ok && (verify || !negative)) {
                    std::string reason = verify && out.answer.user.empty() ? std::string("invalid_username")
                                                                           : std::string(backend::to_string(out.status));
                    co_await finish_fail(reason, false, has_field(out.extra, "nodelay"));
                    co_return;
                }
                if (out.status == PassStatus::Ok) {
                    out.answer.ok = true;
                    extra_ = std::move(out.extra);
                    userdb_ = std::move(out.userdb);
                } else {
                    lookup_reason_ = engine_.valid_name(out.answer.user) ? std::string(backend::to_string(out.status))
                                                                         : std::string("invalid_username");
                }
                step = mech_->on_passdb(out.answer);
                break;
            }
        }
    }
}

bool Request::penalty_at_once() {
    penalty_checked_ = true;
    // no-penalty is a promise from the client; only trusted listeners' clients may make it.
    if (params_.no_penalty && origin_.trusted) return true;
    penalty_group_ = engine_.penalty_group(params_.rip);
    if (penalty_group_.empty()) return true;
    // Without [cluster] the local rule answers, and needs no account name
    // (only the shared account rule reads it); with it, the cluster's cache
    // answers when it holds every counter fresh, else Redis is asked.
    if (Cluster* cluster = engine_.cluster()) {
        auto account = engine_.normalize_user(user_);
        cluster_keys_ = cluster->keys_of(penalty_group_, params_.rip, account ? *account : std::string());
        // Redis unreachable: the local rule at once.
        verdict_ = cluster->up() ? cluster->cached(cluster_keys_)
                                 : std::optional<Cluster::Verdict>(engine_.local_penalty(penalty_group_));
    } else {
        verdict_ = engine_.local_penalty(penalty_group_);
    }
    const bool nothing_to_wait = verdict_ && verdict_->delay <= Clock::duration::zero();
    if (nothing_to_wait) verdict_.reset();
    return nothing_to_wait;
}

asio::awaitable<void> Request::wait_penalty() {
    auto self = shared_from_this();
    Cluster::Verdict verdict;
    if (verdict_) verdict = std::move(*verdict_);
    else verdict = co_await engine_.penalty_check(penalty_group_, cluster_keys_);
    verdict_.reset();
    const auto delay = verdict.delay;
    if (delay <= Clock::duration::zero()) co_return;
    penalty_rule_ = std::move(verdict.rule);
    engine_.metrics().penalty_delay(delay);
    asio::steady_timer t(ex_);
    t.expires_after(delay);
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<Request::PassdbOutcome> Request::passdb_call(mech::Step step) {
    auto self = shared_from_this();
    PassdbOutcome out;
    typed_user_ = step.user;
    if (step.kind == mech::Step::Kind::VerifyPlain) {
        backend::PassResult r =
            co_await verify_step(std::move(step.user), std::move(step.authzid), std::move(step.password));
        out.status = r.status;
        out.answer.user = std::move(r.user);
        out.extra = std::move(r.extra);
        out.userdb = std::move(r.userdb);
        co_return out;
    }
    auto user = engine_.normalize_user(step.user);
    if (!user) {
        // Same path as an unknown user: the mechanism goes on with a fake credential.
        out.status = PassStatus::UnknownUser;
        out.answer.user = step.user;
        co_return out;
    }
    backend::CredResult r = co_await engine_.lookup_credentials(info(*user, step.user), step.scheme);
    out.status = r.status;
    out.answer.user = r.user.empty() ? *user : r.user;
    out.answer.credentials = std::move(r.credentials);
    out.extra = std::move(r.extra);
    out.userdb = std::move(r.userdb);
    co_return out;
}

RequestPtr Request::info(std::string user, std::string original) const {
    auto i = std::make_shared<RequestInfo>();
    i->user = std::move(user);
    i->original_user = std::move(original);
    i->mech = std::string(info_.name);
    i->client_pid = origin_.client_pid;
    i->params = params_;
    return i;
}

asio::awaitable<backend::PassResult> Request::verify_step(std::string login, std::string target, Secret password) {
    auto self = shared_from_this();
    // Master users: "target" logged in with the master's own password, as a
    // PLAIN authzid or (with auth.master_user_separator) "target*master".
    const std::string& sep = engine_.config().master_user_separator;
    if (target.empty() && !sep.empty() && engine_.has_master_passdb()) {
        const auto pos = login.find(sep);
        if (pos != std::string::npos && pos > 0 && pos + sep.size() < login.size()) {
            target = login.substr(0, pos);
            login = login.substr(pos + sep.size());
        }
    }
    if (target.empty()) {
        auto user = engine_.normalize_user(login);
        if (!user) co_return backend::PassResult::unknown_user();  // user stays empty: never a valid name
        RequestPtr req = info(std::move(*user), std::move(login));
        backend::PassResult r = co_await engine_.verify_plain(req, std::move(password));
        if (r.user.empty()) r.user = req->user;
        co_return r;
    }
    if (!engine_.has_master_passdb()) {
        log::info("auth-client {}: authorization identity refused: no master passdb configured", origin_.peer);
        // Reported for the name that authenticated, as Dovecot does.
        auto who = engine_.normalize_user(login);
        co_return refusal(PassStatus::Mismatch, who ? *who : std::string());
    }
    backend::PassResult r = co_await master_login(std::move(login), std::move(target), std::move(password));
    co_return r;
}

asio::awaitable<backend::PassResult> Request::master_login(std::string login, std::string target, Secret password) {
    auto self = shared_from_this();
    auto master = engine_.normalize_user(login);
    auto tgt = engine_.normalize_user(target);
    if (!master || !tgt) co_return backend::PassResult::unknown_user();
    backend::PassResult r = co_await engine_.verify_master(info(*master, login), std::move(password));
    if (r.status != PassStatus::Ok)
        co_return refusal(r.status == PassStatus::TempFail ? PassStatus::TempFail : PassStatus::Mismatch, *tgt);
    // The master's password is right; the target must be a user the normal
    // passdb chain knows and lets in, looked up without a password. Its
    // fields (userdb_* prefetch...) are the target's; the master passdb's
    // fields belong to the master and never apply.
    backend::PassResult t = co_await engine_.lookup_pass(info(*tgt, target));
    const std::string& peer = origin_.peer;
    switch (t.status) {
        case PassStatus::Ok:
            if (has_field(t.extra, "nologin")) {
                log::info("auth-client {}: master user \"{}\" refused: target \"{}\" may not log in (nologin)", peer,
                          log::safe(*master), log::safe(*tgt));
                fail_code_ = "authz_fail";
                co_return refusal(PassStatus::Disabled, *tgt);
            }
            log::info("auth-client {}: master user \"{}\" logs in as \"{}\"", peer, log::safe(*master), log::safe(*tgt));
            master_user_ = *master;
            if (t.user.empty() || !engine_.valid_name(t.user)) t.user = *tgt;
            t.scheme.clear();
            t.source = -1;  // never rehashed: the password typed was the master's
            co_return t;
        case PassStatus::TempFail: co_return refusal(PassStatus::TempFail, *tgt);
        case PassStatus::Disabled:
        case PassStatus::Expired:
            log::info("auth-client {}: master user \"{}\" refused: target \"{}\": {}", peer, log::safe(*master),
                      log::safe(*tgt), backend::to_string(t.status));
            fail_code_ = t.status == PassStatus::Disabled ? "user_disabled" : "pass_expired";
            co_return refusal(t.status, *tgt);
        case PassStatus::SchemeUnavailable:
            log::warning("auth-client {}: master user \"{}\" refused: no passdb can look up the target \"{}\" "
                         "without a password (pam cannot)", peer, log::safe(*master), log::safe(*tgt));
            fail_code_ = "authz_fail";
            co_return refusal(PassStatus::UnknownUser, *tgt);
        case PassStatus::UnknownUser:
        case PassStatus::Mismatch:
            log::info("auth-client {}: master user \"{}\" refused: target \"{}\" does not exist", peer,
                      log::safe(*master), log::safe(*tgt));
            fail_code_ = "authz_fail";
            co_return refusal(PassStatus::UnknownUser, *tgt);
    }
    co_return refusal(PassStatus::UnknownUser, *tgt);
}

std::string Request::fail_reason(const mech::Step& step) const {
    std::string reason(mech::to_string(step.reason));
    // A challenge-response exchange that ran on a fake credential fails at
    // the proof; the log says why the lookup said no. A proof that does not
    // match the real credential is logged like a wrong PLAIN password.
    if (step.reason == mech::FailReason::Credentials)
        reason = lookup_reason_.empty() ? "password_mismatch" : lookup_reason_;
    if (!step.detail.empty()) reason += " detail=\"" + log::safe(step.detail, 200) + "\"";
    return reason;
}

void Request::log_result(std::string_view result, std::string_view reason) const {
    // Stable format, documented in posternd(8): log watchers match on it.
    const std::string_view mech = origin_.log_mech.empty() ? info_.name : std::string_view(origin_.log_mech);
    // Every finished request logs exactly one result line: counted here.
    engine_.metrics().auth_result(mech, params_.service, origin_.role, result, reason, Clock::now() - started_);
    // The arguments below (escaped copies) cost even when the line is not written.
    if (log::level() > log::Level::Info) return;
    if (reason.empty())
        log::info("auth: result={} user=\"{}\" service={} rip={} mech={}", result, log::safe(user_),
                  log::token(params_.service, 32), log::token(params_.rip, 64), mech);
    else if (penalty_rule_.empty())
        log::info("auth: result={} user=\"{}\" service={} rip={} mech={} reason={}", result, log::safe(user_),
                  log::token(params_.service, 32), log::token(params_.rip, 64), mech, reason);
    else  // which penalty rule made it wait (address, network, account)
        log::info("auth: result={} user=\"{}\" service={} rip={} mech={} reason={} penalty={}", result,
                  log::safe(user_), log::token(params_.service, 32), log::token(params_.rip, 64), mech, reason,
                  penalty_rule_);
}

void Request::finish_ok(const std::string& user, const std::string& final_data) {
    if (over_) return;
    if (!final_data.empty() && !params_.final_resp_ok) {
        // The client cannot take final data in OK: it goes out as a CONT, and
        // the OK follows the client's empty answer (as Postfix expects).
        success_user_ = user;
        send_cont(final_data);
        return;
    }
    user_ = user;
    over_ = true;
    log_result("ok", "");
    if (!penalty_group_.empty()) engine_.penalty_success(penalty_group_, cluster_keys_);
    backend::Fields out;
    for (const auto& [k, v] : extra_)
        if (!internal_passdb_field(k)) out.emplace_back(k, v);
    // As Dovecot: the name the client typed, when it is not the one logged in.
    if (master_user_.empty() && !typed_user_.empty() && typed_user_ != user && !has_field(out, "original_user"))
        out.emplace_back("original_user", typed_user_);
    if (!final_data.empty() && params_.final_resp_ok) out.emplace_back("resp", base64_encode(final_data));
    if (origin_.role == config::Role::Login && !params_.nologin && !has_field(extra_, "nologin")) {
        PendingLogin p;
        p.cookie = origin_.cookie;
        p.user = user;
        p.mech = std::string(info_.name);
        p.userdb = userdb_;
        p.params = params_;
        p.master_user = master_user_;
        engine_.logins().remember(origin_.client_pid, id_, std::move(p));
    }
    if (auto port = port_.lock()) {
        port->done(id_);
        port->ok(id_, user, out);
    }
}

void Request::reply_fail(bool temp) {
    backend::Fields f;
    // A name that can never be valid (control bytes, too long) is not echoed.
    if (engine_.valid_name(user_)) f.emplace_back("user", user_);
    if (temp) f.emplace_back("code", "temp_fail");
    else if (!fail_code_.empty()) f.emplace_back("code", fail_code_);
    if (auto port = port_.lock()) {
        port->done(id_);
        port->fail(id_, f);
    }
}

asio::awaitable<void> Request::finish_fail(std::string reason, bool temp, bool nodelay) {
    auto self = shared_from_this();
    if (over_) co_return;
    awaiting_cont_ = false;
    log_result(temp ? "tempfail" : "fail", reason);
    // A guess counts against the address once the backend has been asked
    // (not for aborts or malformed input before that point).
    if (!temp && !penalty_group_.empty() && reason != "aborted")
        engine_.penalty_failure(penalty_group_, cluster_keys_, password_digest_, shared_digest_);
    // Every failure waits the same delay whatever the cause, so timing does
    // not tell an unknown user from a wrong password. Each request has its
    // own timer: no shared tick, no work while waiting.
    Clock::duration delay = engine_.config().failure_delay;
    if (const auto jitter = engine_.config().failure_delay_jitter; jitter > Clock::duration::zero() && delay > Clock::duration::zero())
        delay += std::chrono::duration_cast<Clock::duration>(jitter * (2.0 * random_unit() - 1.0));
    if (delay > Clock::duration::zero() && !nodelay && !temp) {
        asio::steady_timer t(ex_);
        // Measured from the client's last message, so the time spent in the
        // backend (hashing or not, user known or not) is hidden inside it.
        t.expires_at(last_input_ + delay);
        asio::error_code ec;
        engine_.metrics().failure_delay_begin();
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        engine_.metrics().failure_delay_end();
    }
    if (over_) co_return;  // cancelled meanwhile
    over_ = true;
    reply_fail(temp);
}

}  // namespace postern::auth
