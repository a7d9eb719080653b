// Auth-client session: handshake, AUTH/CONT/CANCEL, mechanism driving,
// failure delay (a per-request timer) and replies.
#include "server/auth_client_session.hpp"

#include <unistd.h>

#include <asio/detached.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <openssl/rand.h>

#include <random>

#include "auth/fields.hpp"
#include "protocol/line.hpp"
#include "server/spawn.hpp"
#include "util/encoding.hpp"
#include "util/log.hpp"

namespace postern::server {

using protocol::has_field;

namespace {

// Uniform in [0, 1), for the failure-delay jitter (not a secret).
double random_unit() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string make_cookie() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
    return hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace

AuthClientSession::AuthClientSession(Socket socket, auth::Engine& engine, const config::Listener& listener,
                                     std::string peer, std::shared_ptr<const void> slot)
    : socket_(std::move(socket)), engine_(engine), listener_(listener), peer_(std::move(peer)), slot_(std::move(slot)),
      wake_(socket_.get_executor()) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
    cuid_ = engine_.next_cuid();
    cookie_ = make_cookie();
}

void AuthClientSession::start() {
    // The whole handshake goes out at once, without waiting for the client:
    // Exim waits for DONE before it says anything.
    send(protocol::format_handshake(engine_.adverts(), static_cast<unsigned long>(::getpid()), cuid_, cookie_));
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), [self] { return self->writer(); }, LogExceptions{"auth-client writer"});
    asio::co_spawn(socket_.get_executor(), [self] { return self->reader(); }, LogExceptions{"auth-client reader"});
    asio::co_spawn(socket_.get_executor(), [self] { return self->sweeper(); }, LogExceptions{"auth-client sweeper"});
}

void AuthClientSession::close(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    if (!why.empty()) log::info("auth-client {}: closing connection: {}", peer_, why);
    if (owns_cpid_) {
        engine_.release_cpid(cpid_);
        owns_cpid_ = false;
    }
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.close(ec);
    wake_.cancel();
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

asio::awaitable<void> AuthClientSession::writer() {
    auto self = shared_from_this();
    while (!closed_) {
        if (outq_.empty()) {
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

asio::awaitable<void> AuthClientSession::sweeper() {
    auto self = shared_from_this();
    const auto started = std::chrono::steady_clock::now();
    const auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(engine_.config().request_timeout));
    const auto handshake_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(engine_.config().handshake_timeout));
    asio::steady_timer t(socket_.get_executor());
    while (!closed_) {
        t.expires_after(std::chrono::seconds(1));
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (closed_) break;
        const auto now = std::chrono::steady_clock::now();
        if (!got_cpid_ && now - started > handshake_timeout) {
            close("handshake not completed in time");
            break;
        }
        // Requests waiting for a client CONT longer than the request timeout
        // are dropped; a later CONT gets "timed out". Requests stuck in the
        // passdb chain (or queued for hashing) that long are answered with a
        // temporary failure now; their late result is dropped.
        for (auto it = requests_.begin(); it != requests_.end();) {
            Request& r = *it->second;
            if (r.awaiting_cont && now - r.started > timeout) {
                it = requests_.erase(it);
            } else if (!r.awaiting_cont && !r.finished && now - r.last_input > timeout) {
                r.finished = true;
                log_result(r, "tempfail", "request_timeout");
                backend::Fields f;
                if (engine_.valid_name(r.user)) f.emplace_back("user", r.user);
                f.emplace_back("code", "temp_fail");
                send(protocol::format_fail(r.id, f));
                it = requests_.erase(it);
            } else {
                ++it;
            }
        }
    }
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
        return;
    }
    if (!got_version_) return close("command before VERSION");
    if (auto* c = std::get_if<protocol::CpidCmd>(&cmd)) {
        if (got_cpid_) return close("CPID sent twice");
        got_cpid_ = true;
        // On plain client sockets the pid means nothing (TCP clients on other
        // hosts); it only identifies login clients for REQUEST.
        cpid_ = listener_.role == config::Role::Login ? c->pid : 0;
        if (listener_.role == config::Role::Login) {
            // One live connection per login process: a second one with the
            // same pid could replace the first one's pending logins.
            std::string holder;
            if (!engine_.claim_cpid(cpid_, peer_, holder)) {
                log::warning("auth-client {}: CPID {} is already in use by connection {}; refusing the new connection",
                             peer_, cpid_, holder);
                return close("");
            }
            owns_cpid_ = true;
        }
        return;
    }
    if (!got_cpid_) return close("command before CPID");
    if (auto* a = std::get_if<protocol::AuthCmd>(&cmd)) return on_auth(std::move(*a));
    if (auto* c = std::get_if<protocol::ContCmd>(&cmd)) return on_cont(std::move(*c));
    if (auto* c = std::get_if<protocol::CancelCmd>(&cmd)) {
        requests_.erase(c->id);
        return;
    }
}

void AuthClientSession::on_auth(protocol::AuthCmd cmd) {
    if (requests_.count(cmd.id)) return close("AUTH with an id already in use");
    if (requests_.size() >= kMaxRequestsPerConnection) return close("too many requests in flight");
    auto req = std::make_shared<Request>();
    req->id = cmd.id;
    req->params = std::move(cmd.params);
    req->started = std::chrono::steady_clock::now();
    req->last_input = req->started;
    req->info = engine_.enabled_mech(cmd.mechanism);
    if (!req->info) {
        log::info("auth-client {}: unsupported mechanism \"{}\"", peer_, log::safe(cmd.mechanism, 32));
        send(protocol::format_fail(cmd.id, {{"code", "auth_mech_invalid"}, {"reason", "Unsupported authentication mechanism"}}));
        return;
    }
    std::optional<std::string> initial;
    if (cmd.resp && !(cmd.resp->empty() && minor_ < 2)) {
        // An empty resp= from a minor-0 client (Postfix, Exim) means "none".
        auto decoded = base64_decode(*cmd.resp);
        if (!decoded) {
            send(protocol::format_fail(cmd.id, {{"code", "invalid_base64"}, {"reason", "Invalid base64 data in initial response"}}));
            return;
        }
        initial = std::move(*decoded);
    }
    if (initial && !req->info->allows_nul && initial->find('\0') != std::string::npos) {
        requests_[req->id] = req;
        auto self = shared_from_this();
        asio::co_spawn(socket_.get_executor(), finish_fail(req, "nul_in_data", false, false), LogExceptions{"auth request"});
        return;
    }
    mech::MechContext mctx;
    mctx.settings = engine_.mech_settings();
    mctx.service = req->params.service;
    mctx.valid_client_cert = req->params.valid_client_cert;
    mctx.cert_username = req->params.cert_username;
    req->mech = req->info->make(mctx);
    requests_[req->id] = req;
    mech::Step step = req->mech->start(std::move(initial));
    asio::co_spawn(socket_.get_executor(), run(req, std::move(step)), LogExceptions{"auth request"});
}

void AuthClientSession::on_cont(protocol::ContCmd cmd) {
    auto it = requests_.find(cmd.id);
    if (it == requests_.end()) {
        send(protocol::format_fail(cmd.id, {{"reason", "Authentication request timed out"}}));
        return;
    }
    RequestPtr req = it->second;
    if (!req->awaiting_cont) {
        send(protocol::format_fail(cmd.id, {{"reason", "Unexpected continuation"}}));
        return;
    }
    auto decoded = base64_decode(cmd.data);
    if (!decoded) {
        requests_.erase(it);
        send(protocol::format_fail(cmd.id, {{"code", "invalid_base64"}, {"reason", "Invalid base64 data in continued response"}}));
        return;
    }
    req->awaiting_cont = false;
    req->last_input = std::chrono::steady_clock::now();
    if (!req->info->allows_nul && decoded->find('\0') != std::string::npos) {
        asio::co_spawn(socket_.get_executor(), finish_fail(req, "nul_in_data", false, false), LogExceptions{"auth request"});
        return;
    }
    if (req->success_user) {
        // The answer to the final server data: empty, or the exchange fails.
        if (decoded->empty()) {
            const std::string user = *req->success_user;
            finish_ok(req, user, req->extra, req->userdb, std::string());
            return;
        }
        req->success_user.reset();
        mech::Step bad = mech::Step::fail(*decoded == "*" ? mech::FailReason::Aborted : mech::FailReason::OutOfOrder);
        asio::co_spawn(socket_.get_executor(), run(req, std::move(bad)), LogExceptions{"auth request"});
        return;
    }
    mech::Step step;
    if (*decoded == "*") step = mech::Step::fail(mech::FailReason::Aborted);
    else step = req->mech->on_response(std::move(*decoded));
    asio::co_spawn(socket_.get_executor(), run(req, std::move(step)), LogExceptions{"auth request"});
}

asio::awaitable<void> AuthClientSession::run(RequestPtr req, mech::Step step) {
    auto self = shared_from_this();
    for (;;) {
        if (closed_) co_return;
        // CANCEL (or a request timeout) dropped it while the backend worked.
        auto live = requests_.find(req->id);
        if (live == requests_.end() || live->second != req) co_return;
        switch (step.kind) {
            case mech::Step::Kind::Challenge:
                req->awaiting_cont = true;
                send(protocol::format_cont(req->id, base64_encode(step.data)));
                co_return;
            case mech::Step::Kind::Fail:
                co_await finish_fail(req, fail_reason(*req, step), false, has_field(req->extra, "nodelay"));
                co_return;
            case mech::Step::Kind::Success:
                finish_ok(req, step.user, req->extra, req->userdb, step.data);
                co_return;
            case mech::Step::Kind::VerifyPlain:
            case mech::Step::Kind::LookupCredentials: {
                req->user = step.user;
                if (!req->penalty_checked) {
                    co_await wait_penalty(req);
                    if (closed_) co_return;
                    auto after = requests_.find(req->id);
                    if (after == requests_.end() || after->second != req) co_return;
                }
                if (step.kind == mech::Step::Kind::VerifyPlain && !req->penalty_group.empty())
                    req->password_digest = engine_.password_digest(step.password.view());
                const bool verify = step.kind == mech::Step::Kind::VerifyPlain;
                PassdbOutcome out = co_await passdb_call(req, std::move(step));
                mech::PassdbAnswer& answer = out.answer;
                backend::Fields& extra = out.extra;
                backend::Fields& userdb = out.userdb;
                const backend::PassStatus status = out.status;
                if (closed_) co_return;
                auto still = requests_.find(req->id);
                if (still == requests_.end() || still->second != req) co_return;
                if (engine_.valid_name(answer.user)) req->user = answer.user;
                if (status == backend::PassStatus::TempFail) {
                    co_await finish_fail(req, "temp_fail", true, false);
                    co_return;
                }
                const bool negative = status == backend::PassStatus::UnknownUser ||
                                      status == backend::PassStatus::Mismatch ||
                                      status == backend::PassStatus::SchemeUnavailable;
                if (status != backend::PassStatus::Ok && (verify || !negative)) {
                    std::string reason = verify && answer.user.empty() ? std::string("invalid_username")
                                                                       : std::string(backend::to_string(status));
                    const bool nodelay = has_field(extra, "nodelay");
                    co_await finish_fail(req, reason, false, nodelay);
                    co_return;
                }
                if (status == backend::PassStatus::Ok) {
                    answer.ok = true;
                    req->extra = std::move(extra);
                    req->userdb = std::move(userdb);
                } else {
                    req->lookup_reason = engine_.valid_name(answer.user) ? std::string(backend::to_string(status))
                                                                         : std::string("invalid_username");
                }
                step = req->mech->on_passdb(answer);
                break;
            }
        }
    }
}

asio::awaitable<void> AuthClientSession::wait_penalty(RequestPtr req) {
    auto self = shared_from_this();
    req->penalty_checked = true;
    // no-penalty is a promise from the client; only trusted listeners' clients may make it.
    if (req->params.no_penalty && listener_.trusted) co_return;
    req->penalty_group = engine_.penalty_group(req->params.rip);
    const auto delay = engine_.penalty_delay(req->penalty_group);
    if (delay <= std::chrono::steady_clock::duration::zero()) co_return;
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(delay);
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<AuthClientSession::PassdbOutcome> AuthClientSession::passdb_call(RequestPtr req, mech::Step step) {
    auto self = shared_from_this();
    PassdbOutcome out;
    if (step.kind == mech::Step::Kind::VerifyPlain) {
        backend::PassResult r = co_await verify_step(req, step.user, step.authzid, std::move(step.password));
        out.status = r.status;
        out.answer.user = std::move(r.user);
        out.extra = std::move(r.extra);
        out.userdb = std::move(r.userdb);
        co_return out;
    }
    auto user = engine_.normalize_user(step.user);
    if (!user) {
        // Same path as an unknown user: the mechanism goes on with a fake credential.
        out.status = backend::PassStatus::UnknownUser;
        out.answer.user = step.user;
        co_return out;
    }
    auth::RequestPtr info = request_info(req, *user, step.user);
    backend::CredResult r = co_await engine_.lookup_credentials(info, step.scheme);
    out.status = r.status;
    out.answer.user = r.user.empty() ? *user : r.user;
    out.answer.credentials = std::move(r.credentials);
    out.extra = std::move(r.extra);
    out.userdb = std::move(r.userdb);
    co_return out;
}

auth::RequestPtr AuthClientSession::request_info(const RequestPtr& req, const std::string& user,
                                                 const std::string& original) const {
    auto info = std::make_shared<auth::RequestInfo>();
    info->user = user;
    info->original_user = original;
    info->mech = std::string(req->info->name);
    info->client_pid = cpid_;
    info->params = req->params;
    return info;
}

asio::awaitable<backend::PassResult> AuthClientSession::verify_step(RequestPtr req, std::string login,
                                                                    std::string target, Secret password) {
    auto self = shared_from_this();
    backend::PassResult out;
    out.status = backend::PassStatus::UnknownUser;
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
        if (!user) co_return out;  // user stays empty: never a valid name
        auth::RequestPtr info = request_info(req, *user, login);
        backend::PassResult r = co_await engine_.verify_plain(info, std::move(password));
        if (r.user.empty()) r.user = *user;
        co_return r;
    }
    if (!engine_.has_master_passdb()) {
        log::info("auth-client {}: authorization identity refused: no master passdb configured", peer_);
        out.status = backend::PassStatus::Mismatch;
        out.user = engine_.valid_name(target) ? target : std::string();
        co_return out;
    }
    auto master = engine_.normalize_user(login);
    auto tgt = engine_.normalize_user(target);
    if (!master || !tgt) co_return out;
    auth::RequestPtr info = request_info(req, *master, login);
    backend::PassResult r = co_await engine_.verify_master(info, std::move(password));
    out.user = *tgt;
    if (r.status != backend::PassStatus::Ok) {
        out.status = r.status == backend::PassStatus::TempFail ? backend::PassStatus::TempFail : backend::PassStatus::Mismatch;
        co_return out;
    }
    // The master's password is right; the target must be a user the normal
    // passdb chain knows and lets in, looked up without a password. Its
    // fields (userdb_* prefetch...) are the target's; the master passdb's
    // fields belong to the master and never apply.
    backend::PassResult t = co_await engine_.lookup_pass(request_info(req, *tgt, target));
    using backend::PassStatus;
    switch (t.status) {
        case PassStatus::Ok:
            if (has_field(t.extra, "nologin")) {
                log::info("auth-client {}: master user \"{}\" refused: target \"{}\" may not log in (nologin)", peer_,
                          log::safe(*master), log::safe(*tgt));
                req->fail_code = "authz_fail";
                out.status = PassStatus::Disabled;
                co_return out;
            }
            log::info("auth-client {}: master user \"{}\" logs in as \"{}\"", peer_, log::safe(*master), log::safe(*tgt));
            req->master_user = *master;
            if (t.user.empty() || !engine_.valid_name(t.user)) t.user = *tgt;
            t.scheme.clear();
            t.source = -1;  // never rehashed: the password typed was the master's
            co_return t;
        case PassStatus::TempFail:
            out.status = PassStatus::TempFail;
            co_return out;
        case PassStatus::Disabled:
        case PassStatus::Expired:
            log::info("auth-client {}: master user \"{}\" refused: target \"{}\": {}", peer_, log::safe(*master),
                      log::safe(*tgt), backend::to_string(t.status));
            req->fail_code = t.status == PassStatus::Disabled ? "user_disabled" : "pass_expired";
            out.status = t.status;
            co_return out;
        case PassStatus::SchemeUnavailable:
            log::warning("auth-client {}: master user \"{}\" refused: no passdb can look up the target \"{}\" "
                         "without a password (pam cannot)", peer_, log::safe(*master), log::safe(*tgt));
            req->fail_code = "authz_fail";
            out.status = PassStatus::UnknownUser;
            co_return out;
        case PassStatus::UnknownUser:
        case PassStatus::Mismatch:
            log::info("auth-client {}: master user \"{}\" refused: target \"{}\" does not exist", peer_,
                      log::safe(*master), log::safe(*tgt));
            req->fail_code = "authz_fail";
            out.status = PassStatus::UnknownUser;
            co_return out;
    }
    co_return out;
}

std::string AuthClientSession::fail_reason(const Request& req, const mech::Step& step) {
    std::string reason(mech::to_string(step.reason));
    // A challenge-response exchange that ran on a fake credential fails at
    // the proof; the log says why the lookup said no. A proof that does not
    // match the real credential is logged like a wrong PLAIN password.
    if (step.reason == mech::FailReason::Credentials)
        reason = req.lookup_reason.empty() ? "password_mismatch" : req.lookup_reason;
    if (!step.detail.empty()) reason += " detail=\"" + log::safe(step.detail, 200) + "\"";
    return reason;
}

void AuthClientSession::log_result(const Request& req, std::string_view result, std::string_view reason) const {
    // Stable format, documented in posternd(8): log watchers match on it.
    if (reason.empty())
        log::info("auth: result={} user=\"{}\" service={} rip={} mech={}", result, log::safe(req.user),
                  log::token(req.params.service, 32), log::token(req.params.rip, 64), req.info ? req.info->name : "-");
    else
        log::info("auth: result={} user=\"{}\" service={} rip={} mech={} reason={}", result, log::safe(req.user),
                  log::token(req.params.service, 32), log::token(req.params.rip, 64), req.info ? req.info->name : "-", reason);
}

void AuthClientSession::finish_ok(const RequestPtr& req, const std::string& user, const backend::Fields& extra,
                                  const backend::Fields& userdb, const std::string& final_data) {
    if (!final_data.empty() && !req->params.final_resp_ok) {
        // The client cannot take final data in OK: it goes out as a CONT, and
        // the OK follows the client's empty answer (as Postfix expects).
        if (&extra != &req->extra) req->extra = extra;
        if (&userdb != &req->userdb) req->userdb = userdb;
        req->success_user = user;
        req->awaiting_cont = true;
        send(protocol::format_cont(req->id, base64_encode(final_data)));
        return;
    }
    req->user = user;
    req->finished = true;
    requests_.erase(req->id);
    log_result(*req, "ok", "");
    if (!req->penalty_group.empty()) engine_.penalty_success(req->penalty_group);
    backend::Fields out;
    for (const auto& [k, v] : extra)
        if (!auth::internal_passdb_field(k)) out.emplace_back(k, v);
    if (!final_data.empty() && req->params.final_resp_ok) out.emplace_back("resp", base64_encode(final_data));
    if (listener_.role == config::Role::Login && !req->params.nologin && !has_field(extra, "nologin")) {
        auth::PendingLogin p;
        p.cookie = cookie_;
        p.user = user;
        p.mech = std::string(req->info->name);
        p.userdb = userdb;
        p.params = req->params;
        p.master_user = req->master_user;
        engine_.remember_login(cpid_, req->id, std::move(p));
    }
    send(protocol::format_ok(req->id, user, out));
}

asio::awaitable<void> AuthClientSession::finish_fail(RequestPtr req, std::string reason, bool temp, bool nodelay) {
    auto self = shared_from_this();
    req->finished = true;
    req->awaiting_cont = false;
    log_result(*req, temp ? "tempfail" : "fail", reason);
    // A guess counts against the address once the backend has been asked
    // (not for aborts or malformed input before that point).
    if (!temp && !req->penalty_group.empty() && reason != "aborted")
        engine_.penalty_failure(req->penalty_group, req->password_digest);
    // Every failure waits the same delay whatever the cause, so timing does
    // not tell an unknown user from a wrong password. Each request has its
    // own timer: no shared tick, no work while waiting.
    double delay = engine_.config().failure_delay;
    if (const double jitter = engine_.config().failure_delay_jitter; jitter > 0 && delay > 0)
        delay += jitter * (2.0 * random_unit() - 1.0);
    if (delay > 0 && !nodelay && !temp) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        // Measured from the client's last message, so the time spent in the
        // backend (hashing or not, user known or not) is hidden inside it.
        t.expires_at(req->last_input + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(delay)));
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (closed_) co_return;
    auto it = requests_.find(req->id);
    if (it == requests_.end() || it->second != req) co_return;  // cancelled meanwhile
    requests_.erase(it);
    backend::Fields f;
    // A name that can never be valid (control bytes, too long) is not echoed.
    if (engine_.valid_name(req->user)) f.emplace_back("user", req->user);
    if (temp) f.emplace_back("code", "temp_fail");
    else if (!req->fail_code.empty()) f.emplace_back("code", req->fail_code);
    send(protocol::format_fail(req->id, f));
}

}  // namespace postern::server
