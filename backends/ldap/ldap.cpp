// ldap passdb and userdb over the connection pools.
#include "backends/ldap/ldap.hpp"

#include <ldap.h>

#include <algorithm>
#include <map>

#include "backends/ldap/connection.hpp"
#include "backends/ldap/entry.hpp"
#include "backends/ldap/ldap_config.hpp"
#include "backends/ldap/lookup.hpp"
#include "backends/fields.hpp"
#include "backends/verify.hpp"
#include "password/scheme.hpp"
#include "util/cache_key.hpp"
#include "util/log.hpp"

namespace postern::backend {

namespace {

using ldap::OpResult;

// Upper bound for timeout: past this a client has long given up.
constexpr auto kMaxTimeout = std::chrono::seconds(300);
// Longest server text quoted in the log.
constexpr std::size_t kMaxLoggedError = 300;

struct LdapSettings {
    std::shared_ptr<const ldap::LdapFile> file;
    ldap::PoolSettings pool;
    unsigned page_size = 500;
};

LdapSettings read_settings(const config::Section& s) {
    s.reject_unknown({"driver", "args", "pool_size", "pipeline", "timeout", "page_size"});
    LdapSettings st;
    const std::string path = s.required_string("args");
    if (path.front() != '/') s.error("args", "must be the absolute path of a dovecot-ldap.conf.ext-style file");
    try {
        st.file = std::make_shared<const ldap::LdapFile>(ldap::parse_ldap_file(path));
    } catch (const config::ConfigError& e) {
        // Name both files: where the ldap file is referenced and what is wrong in it.
        s.error("args", e.what());
    }
    st.pool.size = static_cast<unsigned>(s.integer("pool_size", 5, 1, 1024));
    st.pool.pipeline = static_cast<unsigned>(s.integer("pipeline", 8, 1, 256));
    st.pool.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        s.duration("timeout", std::chrono::seconds(5), kMaxTimeout));
    if (st.pool.timeout.count() <= 0) s.error("timeout", "must be positive");
    // slapd's default size limit is 500 entries per search (and per page).
    st.page_size = static_cast<unsigned>(s.integer("page_size", 500, 1, 100000));
    return st;
}

// Passdb and userdb on the same file and pool settings share their pools.
// Start-up only (factories run on the loop thread).
std::shared_ptr<ldap::Pool> shared_pool(Services& services, const LdapSettings& st, ldap::Pool::Role role) {
    static std::map<std::string, std::weak_ptr<ldap::Pool>> pools;
    const std::string key = st.file->path + "\n" + std::to_string(st.pool.size) + "\n" +
                            std::to_string(st.pool.pipeline) + "\n" +
                            std::to_string(st.pool.timeout.count()) + "\n" +
                            (role == ldap::Pool::Role::Bind ? "bind" : "lookup");
    if (auto p = pools[key].lock()) return p;
    auto p = std::make_shared<ldap::Pool>(services.executor, services.pool, st.file, st.pool, role);
    pools[key] = p;
    return p;
}

util::VarLookup request_vars(auth::RequestPtr req) {
    return [req](std::string_view n) { return req->var(n); };
}

// The request variables (not %{ldap:...}) a template reads, by long name.
void request_variables(const std::string& tmpl, std::vector<std::string>& names) {
    util::VarLookup record = [&names](std::string_view n) -> std::optional<std::string> {
        if (n.substr(0, 5) != "ldap:" && n.substr(0, 11) != "ldap_multi:") names.emplace_back(n);
        return std::string();
    };
    std::string t = tmpl;
    for (std::size_t p = t.find("%$"); p != std::string::npos; p = t.find("%$", p)) t.replace(p, 2, "");
    (void)util::expand(t, record);
}

// The inputs an answer depends on: the user name, the name as typed
// (DIGEST-MD5 hashes include it) and every variable the filter, the DN
// template and the attribute templates read.
std::string templates_cache_key(const std::vector<const std::string*>& templates,
                                const std::vector<ldap::AttrMapping>& map, const auth::RequestInfo& req) {
    std::vector<std::string> names;
    for (const auto* t : templates) request_variables(*t, names);
    for (const auto& m : map)
        if (m.has_template) request_variables(m.tmpl, names);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    util::CacheKey key;
    key.add(req.user).add(req.original_user);
    for (const auto& n : names) key.add(n).add(req.var(n).value_or(std::string()));
    return key.str();
}

// A passdb user's entry after pass_attrs, or the status the search comes to.
struct PassLookup {
    PassStatus status = PassStatus::TempFail;
    std::string detail;
    std::string dn;
    PassFields fields;
};

using ldap::Found;
using ldap::log_warnings;

asio::awaitable<Found> find_one(std::shared_ptr<ldap::Pool> pool, std::string filter_tmpl,
                                std::vector<std::string> attrs, auth::RequestPtr req, const char* what) {
    return ldap::find_one(std::move(pool), std::move(filter_tmpl), std::move(attrs), request_vars(req), req->user, what);
}

class LdapPassdb final : public Passdb {
public:
    LdapPassdb(std::shared_ptr<ldap::Pool> lookup, std::shared_ptr<ldap::Pool> binds, BlockingPool* pool)
        : lookup_(std::move(lookup)), binds_(std::move(binds)), pool_(pool),
          password_attr_(ldap::password_attribute(file().pass_attrs)),
          // Rehash on login writes as the file's dn: lookup mode only (a bind
          // mode login never reads the stored value to compare), a service
          // account, and a password attribute mapped as it is.
          can_update_(!file().auth_bind && !file().dn.empty() && !password_attr_.empty()) {}

    bool can_update_password() const override { return can_update_; }

    // Compare-and-set: one modify that deletes the value the login verified
    // and adds the new one; the server refuses it whole (noSuchAttribute)
    // when the value changed meanwhile.
    asio::awaitable<bool> update_password(auth::RequestPtr req, std::string stored, std::string old_stored) override {
        if (!can_update_ || old_stored.empty()) co_return false;
        std::vector<std::string> dn_only;
        Found f = co_await find_one(lookup_, file().pass_filter, std::move(dn_only), req, "pass_filter");
        bool ok = false;
        if (f.status != PassStatus::Ok) {
            log::warning("ldap {}: rehash of user \"{}\": entry not found again: {}", lookup_->describe(),
                         log::safe(req->user), log::safe(f.detail));
        } else {
            std::vector<ldap::Modification> mods = {
                {ldap::Modification::Op::Delete, password_attr_, {std::move(old_stored)}},
                {ldap::Modification::Op::Add, password_attr_, {ldap::directory_form(stored)}}};
            OpResult r = co_await lookup_->modify(f.entry.dn, std::move(mods));
            ok = r.ok();
            if (!ok)
                log::warning("ldap {}: rehash of user \"{}\" not written to {}: {}", lookup_->describe(),
                             log::safe(req->user), password_attr_, ldap::write_failure(r, file(), password_attr_));
        }
        wipe(stored);
        wipe(old_stored);
        co_return ok;
    }

    std::string_view driver() const override { return "ldap"; }
    bool can_lookup() const override { return file().auth_bind_userdn.empty() || !file().auth_bind; }
    bool can_lookup_credentials() const override { return !file().auth_bind; }
    std::string cache_key(const auth::RequestInfo& req) const override {
        return templates_cache_key({&file().pass_filter, &file().auth_bind_userdn}, file().pass_attrs, req);
    }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        if (file().auth_bind) co_return co_await bind_check(req, std::move(password));
        PassLookup l = co_await find(req);
        auto r = take<PassResult>(l, *req);
        if (r.status != PassStatus::Ok || auth::has_field(r.extra, "nopassword")) co_return r;
        const auto& e = l.fields;
        if (!e.password || e.password->empty()) {
            r.status = PassStatus::Mismatch;
            r.detail = "no password in the entry";
            log::error("ldap {}: user \"{}\": the entry has no password attribute (pass_attrs maps none, or the "
                       "service account may not read it)", lookup_->describe(), log::safe(req->user));
            co_return r;
        }
        std::string stored = e.stored();
        const auto v = co_await verify_stored(*pool_, std::move(stored), std::move(password), context(*req));
        r.status = v.status;
        r.detail = v.detail;
        r.scheme = v.scheme;
        r.weak = v.weak;
        // The value as read, for update_password's compare-and-set; a
        // password_noscheme value has no {SCHEME} a rewrite could keep.
        if (r.status == PassStatus::Ok && can_update_ && !e.noscheme) r.stored = *e.password;
        if (v.operator_error) log::error("ldap {}: user \"{}\": {}", lookup_->describe(), log::safe(req->user), v.detail);
        co_return r;
    }

    asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr req, std::string scheme) override {
        if (file().auth_bind) co_return CredResult::unavailable("auth_bind: the ldap passdb cannot look up credentials");
        PassLookup l = co_await find(req);
        auto r = take<CredResult>(l, *req);
        if (r.status != PassStatus::Ok) co_return r;
        const auto& e = l.fields;
        if (!e.password || e.password->empty()) co_return CredResult::unavailable("no password in the entry");
        std::string stored = e.stored();
        CredResult d = co_await derive_credentials(*pool_, std::move(stored), std::move(scheme), context(*req));
        r.status = d.status;
        r.detail = std::move(d.detail);
        r.credentials = std::move(d.credentials);
        co_return r;
    }

    asio::awaitable<PassResult> lookup(auth::RequestPtr req) override {
        if (!can_lookup()) co_return PassResult::unavailable("auth_bind_userdn: the ldap passdb cannot look a user up");
        PassLookup l = co_await find(req);
        // Where the user may log in from does not matter to a lookup.
        co_return take<PassResult>(l, *req, false);
    }

private:
    const ldap::LdapFile& file() const { return lookup_->file(); }

    password::StoredContext context(const auth::RequestInfo& req) const {
        password::StoredContext ctx;
        ctx.default_scheme = file().default_pass_scheme;
        ctx.user = req.original_user.empty() ? req.user : req.original_user;
        return ctx;
    }

    // The pass_filter's entry for the user, mapped through pass_attrs, or
    // the status the search comes to. Without `with_password` the password
    // attribute is not asked for (auth binds: only the DN and fields).
    asio::awaitable<PassLookup> find(auth::RequestPtr req, bool with_password = true) {
        std::vector<ldap::AttrMapping> wanted;
        for (const auto& m : file().pass_attrs)
            if (with_password || (m.field != "password" && m.field != "password_noscheme")) wanted.push_back(m);
        auto attrs = ldap::attributes_of(wanted);
        Found f = co_await find_one(lookup_, file().pass_filter, std::move(attrs), req, "pass_filter");
        PassLookup l;
        l.status = f.status;
        l.detail = std::move(f.detail);
        if (f.status != PassStatus::Ok) co_return l;
        auto mapped = ldap::map_entry(f.entry, file().pass_attrs, request_vars(req));
        log_warnings(*lookup_, req->user, mapped.warnings);
        l.dn = std::move(f.entry.dn);
        l.fields = PassFields(req->user);
        for (auto& [k, v] : mapped.fields) l.fields.add(k, std::move(v));
        co_return l;
    }

    // The lookup's answer (backends/fields.hpp), or why not.
    template <class R>
    static R take(PassLookup& l, const auth::RequestInfo& req, bool check_nets = true) {
        if (l.status != PassStatus::Ok) return R::of(l.status, l.detail);
        return found_user<R>(l.fields, req, l.detail, check_nets);
    }

    // auth_bind = yes: the user's DN (built, or found with pass_filter),
    // then a bind as it on the bind pool.
    asio::awaitable<PassResult> bind_check(auth::RequestPtr req, Secret password) {
        PassResult r;
        std::string dn;
        if (!file().auth_bind_userdn.empty()) {
            auto built = ldap::expand_dn(file().auth_bind_userdn, request_vars(req));
            if (!built) {
                r.status = PassStatus::TempFail;
                r.detail = "auth_bind_userdn: " + built.error().message;
                log::error("ldap {}: {}", binds_->describe(), log::safe(r.detail, kMaxLoggedError));
                co_return r;
            }
            dn = std::move(*built);
            r.user = req->user;
        } else {
            PassLookup l = co_await find(req, false);
            r = take<PassResult>(l, *req);
            if (r.status != PassStatus::Ok) co_return r;
            dn = std::move(l.dn);
        }
        // An empty password would make a simple bind an unauthenticated one
        // (RFC 4513 5.1.2), which servers accept: never a login.
        if (password.empty()) {
            r.status = PassStatus::Mismatch;
            r.detail = "empty password";
            co_return r;
        }
        auto secret = std::make_shared<const Secret>(std::move(password));
        OpResult b = co_await binds_->bind(dn, secret);
        if (b.unavailable()) {
            r.status = PassStatus::TempFail;
            r.detail = "ldap " + binds_->describe() + ": " + b.error;
        } else if (b.code == LDAP_SUCCESS) {
            r.status = PassStatus::Ok;
        } else if (b.code == LDAP_INVALID_CREDENTIALS) {
            // Wrong password, or (auth_bind_userdn) no such DN: servers say 49 for both.
            r.status = PassStatus::Mismatch;
            r.detail = "bind refused: invalid credentials";
        } else {
            r.status = PassStatus::TempFail;
            r.detail = "bind failed";
            log::error("ldap {}: bind as \"{}\" failed: {}", binds_->describe(), log::safe(dn), log::safe(b.error, kMaxLoggedError));
        }
        co_return r;
    }

    std::shared_ptr<ldap::Pool> lookup_;
    std::shared_ptr<ldap::Pool> binds_;
    BlockingPool* pool_;
    std::string password_attr_;  // "" = no attribute to write
    bool can_update_ = false;
};

class LdapUserdb final : public Userdb {
public:
    LdapUserdb(std::shared_ptr<ldap::Pool> pool, unsigned page_size) : pool_(std::move(pool)), page_size_(page_size) {}
    std::string_view driver() const override { return "ldap"; }
    std::string cache_key(const auth::RequestInfo& req) const override {
        return templates_cache_key({&file().user_filter}, file().user_attrs, req);
    }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        UserResult r;
        auto attrs = ldap::attributes_of(file().user_attrs);
        Found f = co_await find_one(pool_, file().user_filter, std::move(attrs), req, "user_filter");
        r.detail = f.detail;
        if (f.status == PassStatus::UnknownUser) {
            r.status = UserStatus::NotFound;
            co_return r;
        }
        if (f.status != PassStatus::Ok) {
            r.status = UserStatus::TempFail;
            co_return r;
        }
        auto mapped = ldap::map_entry(f.entry, file().user_attrs, request_vars(req), ldap::MapFor::Userdb);
        log_warnings(*pool_, req->user, mapped.warnings);
        r.status = UserStatus::Found;
        r.user = req->user;
        for (auto& [k, v] : mapped.fields) {
            if (k == "user") {
                if (!v.empty()) r.user = v;
                continue;
            }
            r.fields.emplace_back(k, std::move(v));
        }
        co_return r;
    }

    asio::awaitable<IterStatus> iterate(IterSink each) override {
        auto state = std::make_shared<IterState>();
        state->each = std::move(each);
        state->map = file().iterate_attrs;
        ldap::SearchRequest sr;
        sr.base = file().base;
        // The iterate filter's variables have no request to come from.
        util::VarLookup none = [](std::string_view) -> std::optional<std::string> { return std::string(); };
        auto filter = ldap::expand_filter(file().iterate_filter, none);
        if (!filter) {
            log::error("ldap {}: iterate_filter: {}", pool_->describe(), filter.error().message);
            co_return IterStatus::TempFail;
        }
        sr.filter = std::move(*filter);
        sr.attrs = ldap::attributes_of(state->map);
        ldap::Pool::EntrySink sink = [state](ldap::Entry e) { return feed(state, std::move(e)); };
        OpResult r = co_await pool_->search_all(std::move(sr), page_size_, sink);
        if (state->stopped) co_return IterStatus::Stopped;
        if (r.unavailable() || r.code != LDAP_SUCCESS) {
            log::error("ldap {}: iteration failed: {}", pool_->describe(), log::safe(r.error, kMaxLoggedError));
            co_return IterStatus::TempFail;
        }
        co_return IterStatus::Done;
    }

private:
    struct IterState {
        IterSink each;
        std::vector<ldap::AttrMapping> map;
        bool stopped = false;
    };

    // Every value of the attribute mapped to "user" is a user (Dovecot
    // lists each); a template gives one.
    static asio::awaitable<bool> feed(std::shared_ptr<IterState> state, ldap::Entry e) {
        std::vector<std::string> users = ldap::iterate_users(e, state->map);
        for (auto& u : users) {
            const bool more = co_await state->each(std::move(u));
            if (!more) {
                state->stopped = true;
                co_return false;
            }
        }
        co_return true;
    }

    const ldap::LdapFile& file() const { return pool_->file(); }

    std::shared_ptr<ldap::Pool> pool_;
    unsigned page_size_;
};

}  // namespace

std::unique_ptr<Passdb> make_ldap_passdb(const config::Section& s, Services& services) {
    auto st = read_settings(s);
    auto lookup = shared_pool(services, st, ldap::Pool::Role::Lookup);
    std::shared_ptr<ldap::Pool> binds;
    if (st.file->auth_bind) binds = shared_pool(services, st, ldap::Pool::Role::Bind);
    return std::make_unique<LdapPassdb>(std::move(lookup), std::move(binds), services.pool);
}

std::unique_ptr<Userdb> make_ldap_userdb(const config::Section& s, Services& services) {
    auto st = read_settings(s);
    return std::make_unique<LdapUserdb>(shared_pool(services, st, ldap::Pool::Role::Lookup), st.page_size);
}

}  // namespace postern::backend
