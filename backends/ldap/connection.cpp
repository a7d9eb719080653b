// libldap connection driven through its descriptor, and the ldap connection pool.
#include "backends/ldap/connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <ldap.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <unordered_map>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "util/log.hpp"

namespace postern::backend::ldap {

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr PoolHealth::Words kWords{"ldap", "no server usable, answering temp-fail until one is back", "cannot use"};
// The connect step is never given less than this, even late in a deadline:
// a TCP connect plus StartTLS on a healthy server needs a few round trips.
constexpr std::chrono::milliseconds kMinConnectTime{200};
// Calls of ldap_result in a row that complete nothing while data is still
// waiting (a search's entries, dropped answers) before the reader waits for
// the socket again: a bound on one wake-up's work, far above one answer's
// messages.
constexpr int kMaxEmptyReads = 4096;
// How long a request waits for its answer before reading the connection
// itself, in case the reader missed a readiness edge.
constexpr std::chrono::milliseconds kReadTick{100};

std::string err_text(int code) { return ldap_err2string(code); }

// The connect step's inputs, owned by the job on the blocking pool.
struct ConnectJob {
    std::shared_ptr<const LdapFile> file;
    std::string uri;
    std::chrono::milliseconds timeout;
    bool sasl_bind = false;  // authenticate with the file's SASL settings
};

// Requests gathered for one write. A Sockbuf layer on top of every other
// (above TLS, so one TLS record carries them all): while `gather` is set,
// libldap's writes land in `pending` and count as sent; the connection's
// flush, posted to run after the handlers that are ready now, writes them to
// the layers below in one call. Requests made in the same turn of the event
// loop thus cost slapd and posternd one write and one wake-up between them.
// Lives as long as the Sockbuf (freed by its remove hook, i.e. by
// ldap_unbind_ext).
struct WriteGather {
    Sockbuf_IO_Desc* below = nullptr;  // this layer's descriptor; writes go to its next
    std::string pending;
    bool gather = true;

    // Writes everything pending to the layers below (blocking socket, as
    // libldap's own writes); false when the connection broke.
    bool flush() {
        std::size_t done = 0;
        while (done < pending.size()) {
            const ber_slen_t n = LBER_SBIOD_WRITE_NEXT(below, pending.data() + done, pending.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            done += static_cast<std::size_t>(n);
        }
        pending.clear();
        return true;
    }

    static int setup(Sockbuf_IO_Desc* d, void* arg) {
        auto* g = new (std::nothrow) WriteGather;
        if (!g) return -1;
        g->below = d;
        d->sbiod_pvt = g;
        *static_cast<WriteGather**>(arg) = g;
        return 0;
    }
    static int remove(Sockbuf_IO_Desc* d) {
        delete static_cast<WriteGather*>(d->sbiod_pvt);
        d->sbiod_pvt = nullptr;
        return 0;
    }
    static int ctrl(Sockbuf_IO_Desc* d, int opt, void* arg) { return LBER_SBIOD_CTRL_NEXT(d, opt, arg); }
    static ber_slen_t read(Sockbuf_IO_Desc* d, void* buf, ber_len_t len) { return LBER_SBIOD_READ_NEXT(d, buf, len); }
    static ber_slen_t write(Sockbuf_IO_Desc* d, void* buf, ber_len_t len) {
        auto* g = static_cast<WriteGather*>(d->sbiod_pvt);
        if (!g || !g->gather) return LBER_SBIOD_WRITE_NEXT(d, buf, len);
        g->pending.append(static_cast<const char*>(buf), len);
        return static_cast<ber_slen_t>(len);
    }
};

Sockbuf_IO gather_io = {WriteGather::setup, WriteGather::remove, WriteGather::ctrl,
                        WriteGather::read,  WriteGather::write,  nullptr};

struct ConnectOutcome {
    LDAP* ld = nullptr;
    WriteGather* gather = nullptr;
    std::string error;
};

std::string diagnostic(LDAP* ld, int rc) {
    std::string out = err_text(rc);
    char* msg = nullptr;
    if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg) {
        if (*msg) out += std::string(" (") + msg + ")";
        ldap_memfree(msg);
    }
    return out;
}

int require_cert_value(RequireCert r) {
    switch (r) {
        case RequireCert::Never: return LDAP_OPT_X_TLS_NEVER;
        case RequireCert::Allow: return LDAP_OPT_X_TLS_ALLOW;
        case RequireCert::Try: return LDAP_OPT_X_TLS_TRY;
        case RequireCert::Demand: return LDAP_OPT_X_TLS_DEMAND;
        case RequireCert::Hard: return LDAP_OPT_X_TLS_HARD;
    }
    return LDAP_OPT_X_TLS_DEMAND;
}

int deref_value(Deref d) {
    switch (d) {
        case Deref::Never: return LDAP_DEREF_NEVER;
        case Deref::Searching: return LDAP_DEREF_SEARCHING;
        case Deref::Finding: return LDAP_DEREF_FINDING;
        case Deref::Always: return LDAP_DEREF_ALWAYS;
    }
    return LDAP_DEREF_NEVER;
}

// Cyrus SASL's interaction record and callback ids (<sasl/sasl.h>, whose
// values are part of its ABI; the header is not needed otherwise).
struct SaslInteract {
    unsigned long id;
    const char* challenge;
    const char* prompt;
    const char* defresult;
    const void* result;
    unsigned len;
};
constexpr unsigned long kSaslCbListEnd = 0, kSaslCbUser = 0x4001, kSaslCbAuthname = 0x4002, kSaslCbPass = 0x4004,
                        kSaslCbGetrealm = 0x4008;

// Answers the SASL library's questions from the file: dn is the
// authentication id, dnpass its password, sasl_authz_id the identity to
// act as, sasl_realm the realm; anything else gets its default.
int sasl_interact(LDAP*, unsigned, void* defaults, void* in) {
    const auto& f = *static_cast<const LdapFile*>(defaults);
    for (auto* i = static_cast<SaslInteract*>(in); i->id != kSaslCbListEnd; ++i) {
        const std::string* v = nullptr;
        if (i->id == kSaslCbAuthname) v = &f.dn;
        else if (i->id == kSaslCbPass) v = &f.dnpass;
        else if (i->id == kSaslCbUser) v = &f.sasl_authz_id;
        else if (i->id == kSaslCbGetrealm) v = &f.sasl_realm;
        const char* text = v && !v->empty() ? v->c_str() : (i->defresult ? i->defresult : "");
        i->result = text;
        i->len = static_cast<unsigned>(std::strlen(text));
    }
    return LDAP_SUCCESS;
}

// Runs on the blocking pool: everything libldap cannot do without blocking.
ConnectOutcome connect_blocking(const ConnectJob& job) {
    ConnectOutcome out;
    const LdapFile& f = *job.file;
    LDAP* ld = nullptr;
    int rc = ldap_initialize(&ld, job.uri.c_str());
    if (rc != LDAP_SUCCESS || !ld) {
        out.error = err_text(rc);
        return out;
    }
    auto fail = [&](std::string what) {
        out.error = std::move(what);
        ldap_unbind_ext(ld, nullptr, nullptr);
        return out;
    };
    int version = f.ldap_version;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    int deref = deref_value(f.deref);
    ldap_set_option(ld, LDAP_OPT_DEREF, &deref);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(job.timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((job.timeout.count() % 1000) * 1000);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);  // bounds ldap_start_tls_s
    const bool ldaps = job.uri.size() >= 8 && ::strncasecmp(job.uri.c_str(), "ldaps://", 8) == 0;
    if (ldaps || f.starttls) {
        // Per-connection TLS settings, then a fresh context that uses them.
        const std::pair<int, const std::string*> files[] = {
            {LDAP_OPT_X_TLS_CACERTFILE, &f.tls_ca_cert_file}, {LDAP_OPT_X_TLS_CACERTDIR, &f.tls_ca_cert_dir},
            {LDAP_OPT_X_TLS_CERTFILE, &f.tls_cert_file},      {LDAP_OPT_X_TLS_KEYFILE, &f.tls_key_file},
            {LDAP_OPT_X_TLS_CIPHER_SUITE, &f.tls_cipher_suite}};
        for (const auto& [opt, value] : files)
            if (!value->empty() && ldap_set_option(ld, opt, value->c_str()) != LDAP_OPT_SUCCESS)
                return fail("cannot set TLS option for " + *value);
        int req = require_cert_value(f.tls_require_cert);
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req);
        int is_server = 0;
        rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server);
        if (rc != LDAP_OPT_SUCCESS) return fail("cannot create the TLS context: " + diagnostic(ld, rc));
    }
    rc = ldap_connect(ld);
    if (rc != LDAP_SUCCESS) return fail(diagnostic(ld, rc));
    if (f.starttls && !ldaps) {
        rc = ldap_start_tls_s(ld, nullptr, nullptr);
        if (rc != LDAP_SUCCESS) return fail("StartTLS: " + diagnostic(ld, rc));
    }
    if (job.sasl_bind) {
        // libldap's SASL bind is a loop of round trips without an
        // asynchronous form; here it is bounded by LDAP_OPT_TIMEOUT.
        rc = ldap_sasl_interactive_bind_s(ld, nullptr, f.sasl_mech.c_str(), nullptr, nullptr, LDAP_SASL_QUIET,
                                          sasl_interact, const_cast<LdapFile*>(&f));
        if (rc != LDAP_SUCCESS)
            return fail("SASL " + f.sasl_mech + " bind (sasl_bind of " + f.path + ") refused: " + diagnostic(ld, rc));
    }
    // A read-ahead buffer between libldap and the socket (under TLS when
    // there is TLS): without it liblber reads every message in two
    // read(2)s, its header and then its body, and libldap polls before each
    // message; with it one read takes whatever answers have arrived and the
    // next ones are parsed from the buffer.
    Sockbuf* sb = nullptr;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || !sb ||
        ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, nullptr) != 0)
        return fail("cannot add a read buffer to the connection");
    if (ber_sockbuf_add_io(sb, &gather_io, LBER_SBIOD_LEVEL_APPLICATION, &out.gather) != 0)
        return fail("cannot add a write buffer to the connection");
    out.ld = ld;
    return out;
}

// Whether a client-side error code means the connection is unusable.
bool connection_error(int rc) {
    return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE;
}

Entry read_entry(LDAP* ld, LDAPMessage* msg) {
    Entry e;
    if (char* dn = ldap_get_dn(ld, msg)) {
        e.dn = dn;
        ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* a = ldap_first_attribute(ld, msg, &ber); a; a = ldap_next_attribute(ld, msg, ber)) {
        std::vector<std::string> values;
        if (berval** vals = ldap_get_values_len(ld, msg, a)) {
            for (int i = 0; vals[i]; ++i) values.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
            ldap_value_free_len(vals);
        }
        e.attrs.emplace_back(a, std::move(values));
        ldap_memfree(a);
    }
    if (ber) ber_free(ber, 0);
    return e;
}

OpResult lost_result(std::string error) {
    OpResult r;
    r.status = OpResult::Status::Lost;
    r.error = std::move(error);
    return r;
}

// The final message of an answer (search done, bind, modify) into `r`.
void read_result(LDAP* ld, LDAPMessage* msg, OpResult& r) {
    int code = LDAP_OTHER;
    char* matched = nullptr;
    char* text = nullptr;
    LDAPControl** ctrls = nullptr;
    const int rc = ldap_parse_result(ld, msg, &code, &matched, &text, nullptr, &ctrls, 0);
    if (rc != LDAP_SUCCESS) code = rc;
    r.code = code;
    if (code != LDAP_SUCCESS) r.error = err_text(code) + (text && *text ? std::string(" (") + text + ")" : "");
    if (ctrls) {
        if (LDAPControl* c = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, nullptr)) {
            ber_int_t estimate = 0;
            berval cookie{0, nullptr};
            if (ldap_parse_pageresponse_control(ld, c, &estimate, &cookie) == LDAP_SUCCESS && cookie.bv_val) {
                r.cookie.assign(cookie.bv_val, cookie.bv_len);
                ber_memfree(cookie.bv_val);
            }
        }
        ldap_controls_free(ctrls);
    }
    ldap_memfree(matched);
    ldap_memfree(text);
}

// A request waiting for the answer to its message id; lives in its
// coroutine and is listed, by message id, in its connection's `waiting` map
// until it is done. A coroutine destroyed while suspended (posternd shutting
// down under a request) takes its Waiter off the list, so that closing the
// connection afterwards never writes into a frame that is gone.
struct Waiter {
    using Registry = std::unordered_map<int, Waiter*>;
    Waiter(const asio::any_io_executor& ex, Deadline deadline, Registry& registry, int msgid)
        : timer(ex, deadline), registry_(&registry), msgid_(msgid) {
        registry.emplace(msgid, this);
    }
    ~Waiter() {
        if (done || !registry_) return;
        auto it = registry_->find(msgid_);
        if (it != registry_->end() && it->second == this) registry_->erase(it);
    }
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    asio::steady_timer timer;  // the deadline; cancelled when the answer is in
    bool done = false;
    OpResult result;

private:
    Registry* registry_;
    int msgid_;
};

}  // namespace

struct Connection::Core {
    Core(asio::any_io_executor ex, std::shared_ptr<WireCounts> c) : sd(std::move(ex)), counts(std::move(c)) {}
    ~Core() { shut("connection closed"); }

    asio::posix::stream_descriptor sd;
    LDAP* ld = nullptr;
    WriteGather* gather = nullptr;  // ld's write layer; valid while ld is
    std::shared_ptr<WireCounts> counts;  // may be null
    Waiter::Registry waiting;  // by message id
    bool reading = false;                       // the reader runs
    bool flush_posted = false;                  // requests wait in `gather` for the posted flush
    bool closed = false;                        // shut() ran: never opened again
    bool loss_seen = false;

    // Closes the connection; every request on it gets Lost with `why`.
    void shut(const std::string& why) {
        closed = true;
        if (sd.is_open()) {
            asio::error_code ignored;
            sd.close(ignored);
        }
        if (ld) {
            // Sends an unbind without waiting for anything (straight through:
            // the requests still gathered are failed below anyway); frees
            // what libldap holds for the requests still outstanding.
            if (gather) gather->gather = false;
            ldap_unbind_ext(ld, nullptr, nullptr);
            ld = nullptr;
            gather = nullptr;
        }
        auto failed = std::move(waiting);
        waiting.clear();
        for (auto& [msgid, w] : failed) finish(*w, lost_result(why));
    }

    static void finish(Waiter& w, OpResult r) {
        w.result = std::move(r);
        w.done = true;
        w.timer.cancel();
    }

    // One complete answer (a chain for a search): to the request waiting
    // for its message id, if any (an abandoned one's is dropped).
    void deliver(LDAPMessage* chain) {
        const int msgid = ldap_msgid(chain);
        if (msgid == 0) {
            // An unsolicited notification (RFC 4511 4.4). Read here, with
            // LDAP_RES_ANY, a notice of disconnection reaches us as a
            // message; libldap 2.5/2.6 handles one itself only when asked
            // for a given message id, and then leaks it (try_read1msg
            // returns -1 without ber_free).
            char* oid = nullptr;
            ldap_parse_extended_result(ld, chain, &oid, nullptr, 0);
            const bool nod = oid && std::strcmp(oid, LDAP_NOTICE_OF_DISCONNECTION) == 0;
            ldap_memfree(oid);
            ldap_msgfree(chain);
            if (nod) shut("the server sent a notice of disconnection");
            return;
        }
        auto it = waiting.find(msgid);
        if (it != waiting.end()) {
            OpResult r;
            r.status = OpResult::Status::Ok;
            for (LDAPMessage* m = ldap_first_message(ld, chain); m; m = ldap_next_message(ld, m)) {
                const int type = ldap_msgtype(m);
                if (type == LDAP_RES_SEARCH_ENTRY) r.entries.push_back(read_entry(ld, m));
                // Referrals are not chased (LDAP_OPT_REFERRALS off).
                else if (type != LDAP_RES_SEARCH_REFERENCE && type != LDAP_RES_INTERMEDIATE) read_result(ld, m, r);
            }
            Waiter* w = it->second;
            waiting.erase(it);
            finish(*w, std::move(r));
        }
        ldap_msgfree(chain);
    }

    // Called after each request libldap accepted: its bytes wait in the
    // gather layer for a flush that runs once the handlers ready now have
    // run (they may add more requests to the same write).
    static void sent(const std::shared_ptr<Core>& self) {
        if (self->counts) ++self->counts->messages;
        if (self->flush_posted) return;
        self->flush_posted = true;
        asio::post(self->sd.get_executor(), [self] {
            self->flush_posted = false;
            if (!self->ld || !self->gather || self->gather->pending.empty()) return;
            if (!self->gather->flush()) return self->shut(std::string("write: ") + std::strerror(errno));
            if (self->counts) ++self->counts->writes;
        });
    }

    // Takes every answer libldap has complete; false when the connection broke.
    bool drain() {
        int empty_reads = 0;
        while (ld && !waiting.empty()) {
            LDAPMessage* chain = nullptr;
            timeval zero{0, 0};
            const int type = ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ALL, &zero, &chain);
            if (type < 0) {
                int err = LDAP_SERVER_DOWN;
                ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
                shut(err_text(err));
                return false;
            }
            if (type == 0) {
                // Nothing complete: with a zero timeout libldap reads one
                // message per call (a search's entry, an abandoned answer
                // it drops), so more may wait in its buffer or the socket.
                // Asio's wait is edge-triggered, and data libldap already
                // read never makes the socket readable again: wait only
                // once both are empty.
                if (++empty_reads > kMaxEmptyReads || !(buffered() || socket_readable())) break;
                continue;
            }
            deliver(chain);
        }
        return true;
    }

    // libldap holds bytes it read from the socket but has not parsed yet.
    bool buffered() {
        Sockbuf* sb = nullptr;
        return ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb &&
               ber_sockbuf_ctrl(sb, LBER_SB_OPT_DATA_READY, nullptr) > 0;
    }

    bool socket_readable() {
        pollfd p{sd.native_handle(), POLLIN, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
    }

    static asio::awaitable<void> read(std::shared_ptr<Core> self) {
        Core& c = *self;
        while (c.drain() && c.ld && !c.waiting.empty()) {
            auto r = co_await c.sd.async_wait(asio::posix::descriptor_base::wait_read, kTuple);
            if (std::get<0>(r) && c.ld) c.shut("socket wait failed: " + std::get<0>(r).message());
        }
        c.reading = false;
    }

    // The answer to `msgid`, sent just now, by `deadline`.
    static asio::awaitable<OpResult> await(std::shared_ptr<Core> self, int msgid, Deadline deadline) {
        Core& c = *self;
        Waiter w(c.sd.get_executor(), deadline, c.waiting, msgid);
        if (!c.reading) {
            c.reading = true;
            asio::co_spawn(c.sd.get_executor(), read(self), asio::detached);
        }
        for (;;) {
            // The reader may have started inline and delivered already;
            // the timer's cancel then came before this wait.
            if (w.done) co_return std::move(w.result);
            // The answer normally comes through the reader. A short tick
            // reads here too, so that an answer libldap or the socket holds
            // without a fresh readiness edge is picked up all the same.
            w.timer.expires_at(std::min(deadline, Clock::now() + kReadTick));
            asio::error_code ec;
            co_await w.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (w.done) co_return std::move(w.result);
            if (Clock::now() >= deadline) break;
            c.drain();
            if (w.done) co_return std::move(w.result);
        }
        // The deadline: this request alone is given up (its Waiter leaves
        // the list as the frame ends).
        if (c.ld && ldap_abandon_ext(c.ld, msgid, nullptr, nullptr) == LDAP_SUCCESS) sent(self);
        OpResult r;
        r.status = OpResult::Status::Timeout;
        r.error = "operation timed out";
        co_return r;
    }

    // The outcome of a request just sent: `rc` of the ldap_*_ext call, and
    // the answer to `msgid` when it went out.
    static asio::awaitable<OpResult> answer(std::shared_ptr<Core> self, int rc, int msgid, Deadline deadline) {
        if (rc == LDAP_SUCCESS) {
            sent(self);
            co_return co_await await(std::move(self), msgid, deadline);
        }
        // Not sent: a broken connection, or a request the library refused.
        if (connection_error(rc)) {
            self->shut(err_text(rc));
            co_return lost_result(err_text(rc));
        }
        OpResult r;
        r.status = OpResult::Status::Ok;
        r.code = rc;
        r.error = err_text(rc);
        co_return r;
    }
};

Connection::Connection(asio::any_io_executor ex, std::shared_ptr<WireCounts> counts)
    : core_(std::make_shared<Core>(std::move(ex), counts)), counts_(std::move(counts)) {}

Connection::~Connection() { close(); }

void Connection::close() { core_->shut("connection closed"); }

bool Connection::connected() const { return core_->ld != nullptr; }

bool Connection::gathering() const { return core_->flush_posted; }

bool Connection::first_to_see_loss() {
    if (connected() || core_->loss_seen) return false;
    core_->loss_seen = true;
    return true;
}

asio::awaitable<Result<void>> Connection::connect(BlockingPool& pool, std::shared_ptr<const LdapFile> file,
                                                  std::string uri, Deadline deadline, bool sasl_bind) {
    close();
    // A fresh core: a reader of the old one may not have seen it closed yet.
    // Only `core` is used past the co_await: the Connection may be gone.
    core_ = std::make_shared<Core>(core_->sd.get_executor(), counts_);
    auto core = core_;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto cap = std::max(kMinConnectTime, file->connect_timeout);
    ConnectJob job{std::move(file), std::move(uri), std::clamp(left, kMinConnectTime, cap), sasl_bind};
    // A named closure: g++ 12 mishandles closure temporaries in co_await.
    auto step = [job = std::move(job)]() { return connect_blocking(job); };
    auto outcome = co_await run_blocking(pool, std::move(step));
    if (!outcome) co_return fail("the blocking pool is full");
    if (!outcome->ld) co_return fail(outcome->error);
    if (core->closed) {
        // Closed meanwhile: this handle is nobody's.
        outcome->gather->gather = false;
        ldap_unbind_ext(outcome->ld, nullptr, nullptr);
        co_return fail("closed while connecting");
    }
    core->ld = outcome->ld;
    core->gather = outcome->gather;
    int fd = -1;
    if (ldap_get_option(core->ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) {
        core->shut("no descriptor");
        co_return fail("no descriptor after connecting");
    }
    // A dup, so Asio may close its copy while libldap keeps its own.
    const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        const std::string why = std::string("dup: ") + std::strerror(errno);
        core->shut(why);
        co_return fail(why);
    }
    asio::error_code ec;
    core->sd.assign(dup, ec);
    if (ec) {
        ::close(dup);
        core->shut("assign: " + ec.message());
        co_return fail("assign: " + ec.message());
    }
    co_return Result<void>{};
}

asio::awaitable<OpResult> Connection::bind(std::string dn, std::shared_ptr<const Secret> password, Deadline deadline) {
    auto core = core_;
    if (!core->ld) co_return lost_result("not connected");
    berval cred{};
    cred.bv_len = password ? password->size() : 0;
    cred.bv_val = password ? const_cast<char*>(password->view().data()) : nullptr;
    int msgid = -1;
    const int rc = ldap_sasl_bind(core->ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, &msgid);
    co_return co_await Core::answer(std::move(core), rc, msgid, deadline);
}

asio::awaitable<OpResult> Connection::search(SearchRequest req, Scope scope, Deadline deadline) {
    auto core = core_;
    if (!core->ld) co_return lost_result("not connected");
    std::vector<char*> attrs;
    static char kNoAttrs[] = "1.1";  // RFC 4511 4.5.1.8: no attributes
    for (auto& a : req.attrs) attrs.push_back(a.data());
    if (attrs.empty()) attrs.push_back(kNoAttrs);
    attrs.push_back(nullptr);
    LDAPControl* page = nullptr;
    LDAPControl* ctrls[2] = {nullptr, nullptr};
    if (req.page_size > 0) {
        berval cookie{req.cookie.size(), req.cookie.data()};
        const int prc = ldap_create_page_control(core->ld, static_cast<ber_int_t>(req.page_size),
                                                 req.cookie.empty() ? nullptr : &cookie, 0, &page);
        if (prc != LDAP_SUCCESS) {
            core->shut("paged results control: " + err_text(prc));
            co_return lost_result("paged results control: " + err_text(prc));
        }
        ctrls[0] = page;
    }
    const int lscope = scope == Scope::Base ? LDAP_SCOPE_BASE : scope == Scope::OneLevel ? LDAP_SCOPE_ONELEVEL
                                                                                         : LDAP_SCOPE_SUBTREE;
    int msgid = -1;
    const int rc = ldap_search_ext(core->ld, req.base.c_str(), lscope, req.filter.c_str(), attrs.data(), 0,
                                   page ? ctrls : nullptr, nullptr, nullptr, req.size_limit, &msgid);
    if (page) ldap_control_free(page);
    co_return co_await Core::answer(std::move(core), rc, msgid, deadline);
}

asio::awaitable<OpResult> Connection::modify(std::string dn, std::vector<Modification> mods, Deadline deadline) {
    auto core = core_;
    if (!core->ld) co_return lost_result("not connected");
    // libldap's LDAPMod points into `mods`, which outlives the call.
    std::vector<std::vector<berval>> vals(mods.size());
    std::vector<std::vector<berval*>> val_ptrs(mods.size());
    std::vector<LDAPMod> lmods(mods.size());
    std::vector<LDAPMod*> lmod_ptrs;
    for (std::size_t i = 0; i < mods.size(); ++i) {
        auto& m = mods[i];
        for (auto& v : m.values) vals[i].push_back(berval{v.size(), v.data()});
        for (auto& b : vals[i]) val_ptrs[i].push_back(&b);
        val_ptrs[i].push_back(nullptr);
        const int op = m.op == Modification::Op::Add ? LDAP_MOD_ADD
                       : m.op == Modification::Op::Delete ? LDAP_MOD_DELETE
                                                          : LDAP_MOD_REPLACE;
        lmods[i].mod_op = op | LDAP_MOD_BVALUES;
        lmods[i].mod_type = m.attr.data();
        lmods[i].mod_bvalues = val_ptrs[i].data();
        lmod_ptrs.push_back(&lmods[i]);
    }
    lmod_ptrs.push_back(nullptr);
    int msgid = -1;
    const int rc = ldap_modify_ext(core->ld, dn.c_str(), lmod_ptrs.data(), nullptr, nullptr, &msgid);
    co_return co_await Core::answer(std::move(core), rc, msgid, deadline);
}

// ---------------------------------------------------------------- the pool

Pool::Pool(asio::any_io_executor ex, BlockingPool* blocking, std::shared_ptr<const LdapFile> file,
           PoolSettings settings, Role role)
    : ConnectionPool(std::move(ex), settings.size, file->uris.size(), kWords), blocking_(blocking),
      file_(std::move(file)), settings_(settings), role_(role) {}

Pool::~Pool() = default;

std::string Pool::describe() const {
    std::string s;
    for (const auto& u : file_->uris) {
        if (!s.empty()) s += ',';
        s += u;
    }
    return s + (role_ == Role::Bind ? " (auth binds)" : "");
}

void Pool::add_stats(PoolStats& st) const {
    st.has_wire = true;
    st.messages = counts_->messages;
    st.writes = counts_->writes;
}

asio::awaitable<Pool::Opened> Pool::open(std::size_t index, Deadline deadline) {
    Opened o;
    o.label = file_->uris[index];
    auto conn = std::make_unique<Connection>(executor(), counts_);
    // The service account's SASL bind is part of the connect step.
    const bool sasl = role_ == Role::Lookup && file_->sasl_bind;
    auto r = co_await conn->connect(*blocking_, file_, o.label, deadline, sasl);
    if (r && role_ == Role::Lookup && !sasl && !file_->dn.empty()) {
        // The service account. Its password is only ever sent here.
        auto pw = std::make_shared<const Secret>(file_->dnpass);
        OpResult b = co_await conn->bind(file_->dn, pw, deadline);
        if (!b.ok()) {
            r = fail(b.status == OpResult::Status::Ok
                         ? "bind as " + file_->dn + " (dn/dnpass of " + file_->path + ") refused: " + b.error
                         : "bind as " + file_->dn + ": " + b.error);
            conn->close();
        }
    }
    if (!r) {
        o.error = o.label + ": " + r.error().message;
        co_return o;
    }
    o.conn = std::move(conn);
    co_return o;
}

namespace {

OpResult unavailable(bool late) {
    OpResult r;
    r.status = OpResult::Status::Unavailable;
    r.error = late ? "no connection free before the timeout" : "no LDAP server available";
    return r;
}

}  // namespace

template <class Op>
asio::awaitable<OpResult> Pool::run(Op op, const char* what, bool retry) {
    const Deadline deadline = Clock::now() + settings_.timeout;
    // Lookup connections carry several requests at once; a bind changes the
    // connection's identity, so bind connections carry one at a time.
    const bool shared = role_ == Role::Lookup;
    OpResult r;
    // A pooled connection may have been closed by the server while idle
    // (restart, idletimeout): one more try on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        Slot* s = nullptr;
        if (shared) s = co_await acquire_shared(deadline, settings_.pipeline);
        else s = co_await acquire(deadline);
        if (!s) co_return unavailable(Clock::now() >= deadline);
        auto pending = op(*s->conn, deadline);
        r = co_await std::move(pending);
        const bool first_loss = r.status == OpResult::Status::Lost && s->conn->first_to_see_loss();
        if (shared) {
            release_shared(s);
        } else {
            // A bind that timed out leaves the connection's identity unknown.
            if (r.status != OpResult::Status::Ok) s->conn.reset();
            release(s);
        }
        if (r.status == OpResult::Status::Lost) {
            if (first_loss) lost(r.error);
            if (retry && attempt == 0 && Clock::now() < deadline) continue;
        }
        if (r.status == OpResult::Status::Timeout) health().timed_out(describe(), what, settings_.timeout, !shared);
        co_return r;
    }
    co_return r;
}

asio::awaitable<OpResult> Pool::search(SearchRequest req) {
    // Searches and binds change nothing, so sending one again is safe.
    auto op = [req = std::move(req), scope = file_->scope](Connection& c, Deadline d) { return c.search(req, scope, d); };
    co_return co_await run(std::move(op), "search", true);
}

asio::awaitable<OpResult> Pool::bind(std::string dn, std::shared_ptr<const Secret> password) {
    auto op = [dn = std::move(dn), password = std::move(password)](Connection& c, Deadline d) {
        return c.bind(dn, password, d);
    };
    co_return co_await run(std::move(op), "bind", true);
}

asio::awaitable<OpResult> Pool::modify(std::string dn, std::vector<Modification> mods) {
    auto op = [dn = std::move(dn), mods = std::move(mods)](Connection& c, Deadline d) { return c.modify(dn, mods, d); };
    co_return co_await run(std::move(op), "modify", false);
}

asio::awaitable<OpResult> Pool::search_all(SearchRequest req, unsigned page_size, EntrySink each) {
    Slot* s = co_await acquire(Clock::now() + settings_.timeout);
    if (!s) co_return unavailable(false);
    req.page_size = page_size;
    req.cookie.clear();
    OpResult r;
    for (;;) {
        r = co_await s->conn->search(req, file_->scope, Clock::now() + settings_.timeout);
        if (r.status != OpResult::Status::Ok || r.code != LDAP_SUCCESS) break;
        bool stopped = false;
        for (auto& e : r.entries) {
            const bool more = co_await each(std::move(e));
            if (!more) {
                stopped = true;
                break;
            }
        }
        r.entries.clear();
        if (stopped) {
            // The server keeps the paged search's state: dropping the
            // connection ends it.
            s->conn.reset();
            break;
        }
        if (r.cookie.empty()) break;
        req.cookie = r.cookie;
    }
    if (r.status != OpResult::Status::Ok) s->conn.reset();
    release(s);
    co_return r;
}

}  // namespace postern::backend::ldap
