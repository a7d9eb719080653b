// libldap connection driven through its descriptor, and the ldap connection pool.
#include "backends/ldap/connection.hpp"

#include <fcntl.h>
#include <strings.h>
#include <ldap.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

std::string err_text(int code) { return ldap_err2string(code); }

// The connect step's inputs, owned by the job on the blocking pool.
struct ConnectJob {
    std::shared_ptr<const LdapFile> file;
    std::string uri;
    std::chrono::milliseconds timeout;
    bool sasl_bind = false;  // authenticate with the file's SASL settings
};

struct ConnectOutcome {
    LDAP* ld = nullptr;
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
    out.ld = ld;
    return out;
}

asio::awaitable<bool> readable(asio::posix::stream_descriptor& sd) {
    auto r = co_await sd.async_wait(asio::posix::descriptor_base::wait_read, kTuple);
    co_return !std::get<0>(r);
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

}  // namespace

Connection::Connection(asio::any_io_executor ex) : sd_(std::move(ex)) {}

Connection::~Connection() { close(); }

void Connection::close() {
    if (sd_.is_open()) {
        asio::error_code ignored;
        sd_.close(ignored);
    }
    if (ld_) {
        // Sends an unbind without waiting for anything.
        ldap_unbind_ext(ld_, nullptr, nullptr);
        ld_ = nullptr;
    }
}

OpResult Connection::drop(OpResult::Status status, std::string error) {
    close();
    OpResult r;
    r.status = status;
    r.error = std::move(error);
    return r;
}

asio::awaitable<Result<void>> Connection::connect(BlockingPool& pool, std::shared_ptr<const LdapFile> file,
                                                  std::string uri, Deadline deadline, bool sasl_bind) {
    close();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto cap = std::max(kMinConnectTime, file->connect_timeout);
    ConnectJob job{std::move(file), std::move(uri), std::clamp(left, kMinConnectTime, cap), sasl_bind};
    // A named closure: g++ 12 mishandles closure temporaries in co_await.
    auto step = [job = std::move(job)]() { return connect_blocking(job); };
    auto outcome = co_await run_blocking(pool, std::move(step));
    if (!outcome) co_return fail("the blocking pool is full");
    if (!outcome->ld) co_return fail(outcome->error);
    ld_ = outcome->ld;
    int fd = -1;
    if (ldap_get_option(ld_, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) {
        close();
        co_return fail("no descriptor after connecting");
    }
    // A dup, so Asio may close its copy while libldap keeps its own.
    const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        close();
        co_return fail(std::string("dup: ") + std::strerror(errno));
    }
    asio::error_code ec;
    sd_.assign(dup, ec);
    if (ec) {
        ::close(dup);
        close();
        co_return fail("assign: " + ec.message());
    }
    co_return Result<void>{};
}

asio::awaitable<OpResult> Connection::collect(int msgid, Deadline deadline) {
    OpResult r;
    r.status = OpResult::Status::Ok;
    for (;;) {
        LDAPMessage* msg = nullptr;
        timeval zero{0, 0};
        const int type = ldap_result(ld_, msgid, LDAP_MSG_ONE, &zero, &msg);
        if (type < 0) {
            int err = LDAP_SERVER_DOWN;
            ldap_get_option(ld_, LDAP_OPT_RESULT_CODE, &err);
            co_return drop(OpResult::Status::Lost, err_text(err));
        }
        if (type == 0) {
            // Nothing complete yet: wait for the socket.
            if (Clock::now() >= deadline) {
                ldap_abandon_ext(ld_, msgid, nullptr, nullptr);
                co_return drop(OpResult::Status::Timeout, "operation timed out");
            }
            auto wait = readable(sd_);
            std::optional<bool> ready = co_await with_deadline(std::move(wait), deadline);
            if (!ready) {
                ldap_abandon_ext(ld_, msgid, nullptr, nullptr);
                co_return drop(OpResult::Status::Timeout, "operation timed out");
            }
            if (!*ready) co_return drop(OpResult::Status::Lost, "socket wait failed");
            continue;
        }
        if (type == LDAP_RES_SEARCH_ENTRY) {
            r.entries.push_back(read_entry(ld_, msg));
            ldap_msgfree(msg);
            continue;
        }
        if (type == LDAP_RES_SEARCH_REFERENCE || type == LDAP_RES_INTERMEDIATE) {
            // Referrals are not chased (LDAP_OPT_REFERRALS off).
            ldap_msgfree(msg);
            continue;
        }
        int code = LDAP_OTHER;
        char* matched = nullptr;
        char* text = nullptr;
        LDAPControl** ctrls = nullptr;
        const int rc = ldap_parse_result(ld_, msg, &code, &matched, &text, nullptr, &ctrls, 0);
        if (rc != LDAP_SUCCESS) code = rc;
        r.code = code;
        if (code != LDAP_SUCCESS) r.error = err_text(code) + (text && *text ? std::string(" (") + text + ")" : "");
        if (ctrls) {
            if (LDAPControl* c = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, nullptr)) {
                ber_int_t estimate = 0;
                berval cookie{0, nullptr};
                if (ldap_parse_pageresponse_control(ld_, c, &estimate, &cookie) == LDAP_SUCCESS && cookie.bv_val) {
                    r.cookie.assign(cookie.bv_val, cookie.bv_len);
                    ber_memfree(cookie.bv_val);
                }
            }
            ldap_controls_free(ctrls);
        }
        ldap_memfree(matched);
        ldap_memfree(text);
        ldap_msgfree(msg);
        co_return r;
    }
}

asio::awaitable<OpResult> Connection::answer(int rc, int msgid, Deadline deadline) {
    if (rc == LDAP_SUCCESS) co_return co_await collect(msgid, deadline);
    // Not sent: a broken connection, or a request the library refused.
    if (connection_error(rc)) co_return drop(OpResult::Status::Lost, err_text(rc));
    OpResult r;
    r.status = OpResult::Status::Ok;
    r.code = rc;
    r.error = err_text(rc);
    co_return r;
}

asio::awaitable<OpResult> Connection::bind(std::string dn, std::shared_ptr<const Secret> password, Deadline deadline) {
    if (!ld_) co_return drop(OpResult::Status::Lost, "not connected");
    berval cred{};
    cred.bv_len = password ? password->size() : 0;
    cred.bv_val = password ? const_cast<char*>(password->view().data()) : nullptr;
    int msgid = -1;
    const int rc = ldap_sasl_bind(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, &msgid);
    co_return co_await answer(rc, msgid, deadline);
}

asio::awaitable<OpResult> Connection::search(SearchRequest req, Scope scope, Deadline deadline) {
    if (!ld_) co_return drop(OpResult::Status::Lost, "not connected");
    std::vector<char*> attrs;
    static char kNoAttrs[] = "1.1";  // RFC 4511 4.5.1.8: no attributes
    for (auto& a : req.attrs) attrs.push_back(a.data());
    if (attrs.empty()) attrs.push_back(kNoAttrs);
    attrs.push_back(nullptr);
    LDAPControl* page = nullptr;
    LDAPControl* ctrls[2] = {nullptr, nullptr};
    if (req.page_size > 0) {
        berval cookie{req.cookie.size(), req.cookie.data()};
        const int prc = ldap_create_page_control(ld_, static_cast<ber_int_t>(req.page_size),
                                                 req.cookie.empty() ? nullptr : &cookie, 0, &page);
        if (prc != LDAP_SUCCESS) co_return drop(OpResult::Status::Lost, "paged results control: " + err_text(prc));
        ctrls[0] = page;
    }
    const int lscope = scope == Scope::Base ? LDAP_SCOPE_BASE : scope == Scope::OneLevel ? LDAP_SCOPE_ONELEVEL
                                                                                         : LDAP_SCOPE_SUBTREE;
    int msgid = -1;
    const int rc = ldap_search_ext(ld_, req.base.c_str(), lscope, req.filter.c_str(), attrs.data(), 0,
                                   page ? ctrls : nullptr, nullptr, nullptr, req.size_limit, &msgid);
    if (page) ldap_control_free(page);
    co_return co_await answer(rc, msgid, deadline);
}

asio::awaitable<OpResult> Connection::modify(std::string dn, std::vector<Modification> mods, Deadline deadline) {
    if (!ld_) co_return drop(OpResult::Status::Lost, "not connected");
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
    const int rc = ldap_modify_ext(ld_, dn.c_str(), lmod_ptrs.data(), nullptr, nullptr, &msgid);
    co_return co_await answer(rc, msgid, deadline);
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

asio::awaitable<Pool::Opened> Pool::open(std::size_t index, Deadline deadline) {
    Opened o;
    o.label = file_->uris[index];
    auto conn = std::make_unique<Connection>(executor());
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
    OpResult r;
    // A pooled connection may have been closed by the server while idle
    // (restart, idletimeout): one more try on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        Slot* s = co_await acquire(deadline);
        if (!s) co_return unavailable(Clock::now() >= deadline);
        auto pending = op(*s->conn, deadline);
        r = co_await std::move(pending);
        if (r.status != OpResult::Status::Ok) s->conn.reset();
        release(s);
        if (r.status == OpResult::Status::Lost) {
            lost(r.error);
            if (retry && attempt == 0 && Clock::now() < deadline) continue;
        }
        if (r.status == OpResult::Status::Timeout) health().timed_out(describe(), what, settings_.timeout);
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
