// pam passdb: settings, the daemon's pool of worker connections, and the
// per-request exchange (one request per worker at a time, with a deadline).
#include "backends/pam/pam.hpp"

#include <asio/co_spawn.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <unistd.h>

#include <deque>
#include <map>

#include "util/var_expand.hpp"
#include "backends/pam/wire.hpp"
#include "backends/pam/worker.hpp"
#include "util/deadline.hpp"
#include "util/spawn.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace pam {
namespace {

// Defaults and limits, with their reasons.
constexpr long long kDefaultWorkers = 4;   // PAM logins are rare next to hashing; a few in parallel suffice
constexpr long long kMaxWorkers = 128;
constexpr auto kDefaultTimeout = std::chrono::seconds(20);  // well under Postfix's 60 s auth timeout
// The daemon waits this much longer than the worker's own PAM deadline
// before it gives up on the worker itself.
constexpr auto kWorkerGrace = std::chrono::seconds(5);
// Requests waiting for a free worker; beyond this, temp-fail at once.
constexpr std::size_t kMaxWaiting = 1024;

struct Settings {
    std::string service = "smtp";
    unsigned workers = kDefaultWorkers;
    config::Duration timeout = kDefaultTimeout;
    bool session = false;
    bool setcred = false;
    std::string tty = "postern";
};

Settings read_settings(const config::Section& s) {
    s.reject_unknown({"driver", "service", "workers", "timeout", "session", "setcred", "tty"});
    Settings st;
    st.service = s.string("service", "smtp");
    auto probe = util::expand(st.service, [](std::string_view n) {
        auth::RequestInfo probe_info;
        return probe_info.var(n);
    });
    if (!probe) s.error("service", probe.error().message);
    if (st.service.find('%') == std::string::npos && !valid_service_name(st.service))
        s.error("service", "not a PAM service name (letters, digits, '.', '_', '-')");
    st.workers = static_cast<unsigned>(s.integer("workers", kDefaultWorkers, 1, kMaxWorkers));
    st.timeout = s.duration("timeout", kDefaultTimeout, std::chrono::hours(1));
    if (st.timeout <= config::Duration::zero()) s.error("timeout", "must be positive");
    st.session = s.boolean("session", false);
    st.setcred = s.boolean("setcred", false);
    st.tty = s.string("tty", "postern");
    return st;
}

// Workers and spawner forked at start-up, by passdb section ("passdb[1]").
struct Started {
    std::vector<SpawnedWorker> workers;
    SpawnedWorker spawner;
};
std::map<std::string, Started>& spawned() {
    static std::map<std::string, Started> m;
    return m;
}

using Stream = asio::local::stream_protocol::socket;

struct Worker {
    pid_t pid;
    std::shared_ptr<Stream> socket;  // shared: a cancelled exchange may still hold it
    bool busy = false;
    bool dead = false;
};

class Pool : public std::enable_shared_from_this<Pool> {
public:
    Pool(asio::any_io_executor ex, const Started& started, config::Duration timeout) : ex_(ex), timeout_(timeout) {
        for (const auto& w : started.workers) attach(w);
        if (started.spawner.fd >= 0) {
            spawner_ = std::make_unique<asio::posix::stream_descriptor>(ex);
            asio::error_code ec;
            spawner_->assign(started.spawner.fd, ec);
            if (ec) spawner_.reset();
        }
    }

    // Sends the request to a free worker and awaits its reply.
    static asio::awaitable<WorkerReply> run(std::shared_ptr<Pool> self, std::string payload) {
        WorkerReply fail;
        fail.status = PassStatus::TempFail;
        const auto deadline = std::chrono::steady_clock::now() + self->wait_limit();
        Worker* w = nullptr;
        for (;;) {
            w = self->free_worker();
            if (w) break;
            if (self->live() == 0 && self->refilling_ == 0) {
                wipe(payload);
                fail.detail = "no PAM worker processes are left";
                co_return fail;
            }
            if (self->waiting_.size() >= kMaxWaiting || std::chrono::steady_clock::now() >= deadline) {
                wipe(payload);
                fail.detail = "every PAM worker is busy";
                co_return fail;
            }
            auto timer = std::make_shared<asio::steady_timer>(self->ex_, deadline);
            self->waiting_.push_back(timer);
            asio::error_code ec;
            co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
            std::erase(self->waiting_, timer);
        }
        w->busy = true;
        std::string frame = encode_frame(payload);
        wipe(payload);
        // At the deadline the exchange is cancelled and the worker written
        // off below (closing our end makes a stuck one exit).
        auto exchanged = co_await with_deadline(exchange(w->socket, std::move(frame)),
                                                std::chrono::steady_clock::now() + self->reply_limit());
        const bool expired = !exchanged;
        asio::error_code ec = exchanged ? exchanged->first : asio::error::timed_out;
        std::string reply_bytes = exchanged ? std::move(exchanged->second) : std::string();
        std::optional<WorkerReply> reply;
        if (!ec) reply = decode_reply(reply_bytes);
        if (!reply) {
            // The worker process itself is gone or stuck: write it off
            // (closing our end makes a stuck one exit) and ask the spawner
            // for a replacement.
            w->dead = true;
            w->busy = false;
            asio::error_code ignored;
            w->socket->close(ignored);
            fail.detail = expired ? "PAM worker " + std::to_string(w->pid) + " did not answer in time"
                                  : "PAM worker " + std::to_string(w->pid) + " failed: " +
                                        (ec ? ec.message() : std::string("malformed reply"));
            log::error("pam: {}; {} worker(s) left, starting a new one", fail.detail, self->live());
            asio::co_spawn(self->ex_, refill(self, w->pid), LogExceptions{"pam refill"});
            self->wake_one();
            co_return fail;
        }
        w->busy = false;
        self->wake_one();
        co_return std::move(*reply);
    }

    // One request frame out, one reply frame back: the error, and the reply's bytes.
    static asio::awaitable<std::pair<asio::error_code, std::string>> exchange(std::shared_ptr<Stream> sock,
                                                                              std::string frame) {
        asio::error_code ec;
        co_await asio::async_write(*sock, asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
        wipe(frame);
        std::string reply_bytes;
        if (!ec) {
            unsigned char len[4];
            co_await asio::async_read(*sock, asio::buffer(len), asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) {
                const std::size_t n = (std::size_t(len[0]) << 24) | (std::size_t(len[1]) << 16) |
                                      (std::size_t(len[2]) << 8) | std::size_t(len[3]);
                if (n > kMaxFrame) {
                    ec = asio::error::message_size;
                } else {
                    reply_bytes.resize(n);
                    co_await asio::async_read(*sock, asio::buffer(reply_bytes),
                                              asio::redirect_error(asio::use_awaitable, ec));
                }
            }
        }
        co_return std::make_pair(ec, std::move(reply_bytes));
    }

    // Asks the spawner for a worker to replace `gone`.
    static asio::awaitable<void> refill(std::shared_ptr<Pool> self, pid_t gone) {
        if (!self->spawner_) co_return;
        // Requests wait for the replacement instead of failing at once.
        ++self->refilling_;
        struct Done {
            Pool* pool;
            ~Done() {
                --pool->refilling_;
                pool->wake_one();
            }
        } done{self.get()};
        const char one = 'W';
        asio::error_code ec;
        co_await asio::async_write(*self->spawner_, asio::buffer(&one, 1), asio::redirect_error(asio::use_awaitable, ec));
        for (int tries = 0; !ec && tries < 100; ++tries) {
            co_await self->spawner_->async_wait(asio::posix::stream_descriptor::wait_read,
                                                asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            auto got = receive_worker(self->spawner_->native_handle());
            if (!got) {
                log::error("pam: no replacement for worker {}: {}", gone, got.error().message);
                co_return;
            }
            if (!*got) continue;  // another refill's answer was taken first
            self->attach(**got);
            log::info("pam: worker {} replaces worker {}; {} worker(s)", (*got)->pid, gone, self->live());
            self->wake_one();
            co_return;
        }
        log::error("pam: no replacement for worker {}: the spawner process does not answer ({})", gone,
                   ec ? ec.message() : std::string("no answer"));
    }

    std::size_t live() const {
        std::size_t n = 0;
        for (const auto& w : workers_)
            if (!w.dead) ++n;
        return n;
    }

private:
    std::chrono::steady_clock::duration wait_limit() const { return timeout_; }
    std::chrono::steady_clock::duration reply_limit() const { return wait_limit() + kWorkerGrace; }

    // Takes a worker's socket; reuses the slot of a dead worker (no request
    // refers to it any more) so the list does not grow.
    void attach(const SpawnedWorker& w) {
        auto s = std::make_unique<Stream>(ex_);
        asio::error_code ec;
        s->assign(asio::local::stream_protocol(), w.fd, ec);
        if (ec) {
            log::error("pam: worker {}: {}", w.pid, ec.message());
            ::close(w.fd);
            return;
        }
        for (auto& slot : workers_)
            if (slot.dead && !slot.busy) {
                slot = Worker{w.pid, std::move(s)};
                return;
            }
        workers_.push_back(Worker{w.pid, std::move(s)});
    }

    Worker* free_worker() {
        for (auto& w : workers_)
            if (!w.dead && !w.busy) return &w;
        return nullptr;
    }
    void wake_one() {
        if (!waiting_.empty()) waiting_.front()->cancel();
    }

    asio::any_io_executor ex_;
    config::Duration timeout_;
    std::deque<Worker> workers_;  // stable addresses
    std::unique_ptr<asio::posix::stream_descriptor> spawner_;
    int refilling_ = 0;  // replacements asked for and not yet arrived
    std::vector<std::shared_ptr<asio::steady_timer>> waiting_;
};

class PamPassdb final : public Passdb {
public:
    PamPassdb(Settings st, std::shared_ptr<Pool> pool) : st_(std::move(st)), pool_(std::move(pool)) {}
    std::string_view driver() const override { return "pam"; }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        if (!pool_) co_return PassResult::temp_fail("PAM workers were not started");
        std::string service = st_.service;
        if (service.find('%') != std::string::npos) {
            auto e = util::expand(st_.service, [&req](std::string_view n) { return req->var(n); });
            service = e ? *e : std::string();
        }
        if (!valid_service_name(service)) {
            // The name comes from the client's service= (through %s).
            auto r = PassResult::mismatch("refusing PAM service name \"" + log::safe(service, 64) + "\"");
            log::info("pam: user \"{}\": {}", log::safe(req->user), r.detail);
            co_return r;
        }
        WorkerRequest wr;
        wr.service = service;
        wr.user = req->user;
        wr.password = std::move(password);
        wr.rhost = req->params.rip;
        wr.tty = st_.tty;
        wr.setcred = st_.setcred;
        wr.session = st_.session;
        WorkerReply reply = co_await Pool::run(pool_, encode_request(wr));
        PassResult r = PassResult::of(reply.status, std::move(reply.detail));
        r.user = req->user;
        // Why PAM said no (temporary failures are logged by the engine).
        if (r.status != PassStatus::Ok && r.status != PassStatus::TempFail && !r.detail.empty())
            log::info("pam: user \"{}\" service {}: {}", log::safe(req->user), service, log::safe(r.detail, 256));
        // A module may change the user name (PAM_USER); adopt it when sane.
        if (reply.status == PassStatus::Ok && !reply.user.empty() && reply.user.find_first_of("\t\n\r") == std::string::npos)
            r.user = reply.user;
        co_return r;
    }

private:
    Settings st_;
    std::shared_ptr<Pool> pool_;
};

}  // namespace

Result<void> start_workers(const config::Config& cfg) {
    for (const auto& d : cfg.passdbs) {
        if (d.driver != "pam") continue;
        const Settings st = read_settings(d.settings);
        auto w = spawn_workers(st.workers, st.timeout);
        if (!w) return fail(w.error().message);
        auto sp = spawn_spawner(st.timeout);
        if (!sp) return fail(sp.error().message);
        spawned()[d.settings.path()] = Started{std::move(*w), *sp};
    }
    return {};
}

}  // namespace pam

std::unique_ptr<Passdb> make_pam_passdb(const config::Section& s, Services& services) {
    pam::Settings st = pam::read_settings(s);
    std::shared_ptr<pam::Pool> pool;
    auto it = pam::spawned().find(s.path());
    if (it != pam::spawned().end()) {
        pool = std::make_shared<pam::Pool>(services.executor, it->second, st.timeout);
        pam::spawned().erase(it);
    }
    return std::make_unique<pam::PamPassdb>(std::move(st), std::move(pool));
}

}  // namespace postern::backend
