// sql passdb and userdb over the connection pool.
#include "backends/sql/sql.hpp"

#include <algorithm>

#include "backends/sql/database.hpp"
#include "backends/sql/fields.hpp"
#include "backends/verify.hpp"
#include "password/scheme.hpp"
#include "util/cache_key.hpp"
#include "util/log.hpp"

namespace postern::backend {

namespace {

using sql::QueryResult;

// Longest driver error text quoted in the log.
constexpr std::size_t kMaxLoggedError = 300;
// Upper bound for query_timeout: past this a client has long given up.
constexpr auto kMaxQueryTimeout = std::chrono::seconds(300);

struct SqlSettings {
    sql::SqlFile file;
    sql::PoolSettings pool;
};

// The settings of a passdb/userdb table: from the dovecot-sql.conf.ext-style
// file named in args, or written inline with Dovecot 2.4's names.
SqlSettings read_settings(const config::Section& s, bool passdb) {
    SqlSettings st;
    st.file = sql::read_sql_section(s, passdb);
    if (!sql::driver_available(st.file.driver))
        s.error(s.has("args") ? "args" : "sql_driver",
                st.file.path + ": driver " + (st.file.driver == sql::DriverKind::Mysql ? "mysql" : "pgsql") +
                    " is not compiled in");
    st.pool.size = static_cast<unsigned>(s.integer("pool_size", st.file.connect.maxconns, 1, 1024));
    st.pool.query_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        s.duration("query_timeout", std::chrono::seconds(5), kMaxQueryTimeout));
    if (st.pool.query_timeout.count() <= 0) s.error("query_timeout", "must be positive");
    return st;
}

util::VarLookup request_vars(auth::RequestPtr req) {
    return [req](std::string_view n) { return req->var(n); };
}

std::string safe_error(const QueryResult& r) { return log::safe(r.error, kMaxLoggedError); }

bool unavailable(const QueryResult& r) {
    return r.status == QueryResult::Status::ConnectionLost || r.status == QueryResult::Status::Timeout;
}

// What a lookup query's result comes to: its one row, no row, or a failure
// (unreachable, refused, or more than one row: never guess which user).
enum class RowCount { One, None, Failed };

RowCount one_row(const sql::Database& db, const QueryResult& q, const char* what, const std::string& user,
                 std::string& detail) {
    if (unavailable(q)) {
        detail = "sql " + db.describe() + ": " + q.error;
        return RowCount::Failed;
    }
    if (q.status == QueryResult::Status::QueryError) {
        detail = std::string(what) + " failed";
        log::error("sql {}: {} for user \"{}\" failed: {}", db.describe(), what, log::safe(user), safe_error(q));
        return RowCount::Failed;
    }
    if (q.rows.empty()) return RowCount::None;
    if (q.rows.size() > 1) {
        detail = std::string(what) + " returned more than one row";
        log::error("sql {}: {} returned {} rows for user \"{}\"; refusing to pick one", db.describe(), what,
                   q.rows.size(), log::safe(user));
        return RowCount::Failed;
    }
    return RowCount::One;
}

// The password_query's single row, or the status it comes to.
struct Lookup {
    PassStatus status = PassStatus::TempFail;
    sql::PassRow row;
    std::string detail;
};

// The inputs a query's answer depends on: the user name, the name as typed
// (DIGEST-MD5 hashes include it) and every %-variable of the query, so that
// repeat logins with different ports or sessions still share a cache entry.
std::string query_cache_key(const std::string& query, const auth::RequestInfo& req) {
    util::CacheKey key;
    key.add(req.user).add(req.original_user);
    std::vector<std::string> names;
    util::VarLookup record = [&names](std::string_view n) -> std::optional<std::string> {
        names.emplace_back(n);
        return std::string();
    };
    (void)util::expand(query, record);
    for (const auto& n : names) key.add(n).add(n == "password" ? std::string() : req.var(n).value_or(std::string()));
    return key.str();
}

// The fields' templates, for the cache key: an answer depends on the
// request variables they read as much as on the query's.
std::string fields_text(const sql::SqlFile& f) {
    std::string t;
    for (const auto& x : f.fields) t += "\n" + x.tmpl;
    return t;
}

// The %-variables a template uses, by long name.
std::vector<std::string> variables_of(const std::string& tmpl) {
    std::vector<std::string> names;
    util::VarLookup record = [&names](std::string_view n) -> std::optional<std::string> {
        names.emplace_back(n);
        return std::string();
    };
    (void)util::expand(tmpl, record);
    return names;
}

// Whether update_query can serve rehash on login: it must write the new
// value and compare the old one, or a password changed meanwhile (by the
// user in a web panel) could be overwritten with the old one's rehash.
bool usable_update_query(const sql::SqlFile& f) {
    if (f.update_query.empty()) return false;
    const auto names = variables_of(f.update_query);
    const bool writes = std::find(names.begin(), names.end(), "password") != names.end();
    const bool compares = std::find(names.begin(), names.end(), "old_password") != names.end();
    if (!writes || !compares)
        log::warning("sql {}:{}: update_query is not used for rehash on login: it needs %{{password}} (the new "
                     "hash) and %{{old_password}} in its WHERE clause (e.g. AND password = '%{{old_password}}')",
                     f.path, f.line_of("update_query"));
    return writes && compares;
}

// Server error text with the values of a statement taken out.
std::string redacted(std::string text, const std::vector<std::string_view>& values) {
    for (auto v : values) {
        if (v.size() < 4) continue;
        for (auto pos = text.find(v); pos != std::string::npos; pos = text.find(v, pos + 3))
            text.replace(pos, v.size(), "***");
    }
    return log::safe(text, kMaxLoggedError);
}

class SqlPassdb final : public Passdb {
public:
    SqlPassdb(sql::SqlFile file, std::shared_ptr<sql::Database> db, BlockingPool* pool)
        : file_(std::move(file)), db_(std::move(db)), pool_(pool), can_update_(usable_update_query(file_)) {}
    bool can_update_password() const override { return can_update_; }

    asio::awaitable<bool> update_password(auth::RequestPtr req, std::string stored, std::string old_stored) override {
        if (!can_update_ || old_stored.empty()) co_return false;
        util::VarLookup vars = [req, stored, old_stored](std::string_view n) -> std::optional<std::string> {
            if (n == "password") return stored;
            if (n == "old_password") return old_stored;
            return req->var(n);
        };
        QueryResult q = co_await db_->run(file_.update_query, vars);
        bool ok = false;
        if (q.status != QueryResult::Status::Ok)
            log::warning("sql {}: update_query for user \"{}\" failed: {}", db_->describe(), log::safe(req->user),
                         redacted(std::move(q.error), {stored, old_stored}));
        else if (q.affected == 0)
            log::warning("sql {}: update_query for user \"{}\" changed no row: the stored password changed since "
                         "the login (or the row is gone); it is not overwritten", db_->describe(), log::safe(req->user));
        else
            ok = true;
        wipe(stored);
        wipe(old_stored);
        co_return ok;
    }
    std::string_view driver() const override { return "sql"; }
    bool can_lookup() const override { return true; }
    bool can_lookup_credentials() const override { return true; }
    std::string cache_key(const auth::RequestInfo& req) const override {
        return query_cache_key(file_.password_query + fields_text(file_), req);
    }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        Lookup l = co_await find(req, std::make_shared<Secret>(password.clone()));
        auto r = take_row<PassResult>(l, *req);
        if (r.status != PassStatus::Ok || auth::has_field(r.extra, "nopassword")) co_return r;
        if (!l.row.password || l.row.password->empty()) {
            r.status = PassStatus::Mismatch;
            r.detail = "no password in the password_query result";
            log::error("sql {}: user \"{}\": password_query returned {} password and no nopassword field",
                       db_->describe(), log::safe(req->user), l.row.password ? "an empty" : "a NULL");
            co_return r;
        }
        std::string stored = l.row.stored();
        const auto v = co_await verify_stored(*pool_, std::move(stored), std::move(password), context(*req));
        r.status = v.status;
        r.detail = v.detail;
        r.scheme = v.scheme;
        r.weak = v.weak;
        // With noscheme the column holds no {SCHEME} prefix: a rehash would
        // write one the next read misunderstands. No compare value, no rehash.
        if (r.status == PassStatus::Ok && can_update_ && !l.row.noscheme) r.stored = *l.row.password;
        if (v.operator_error)
            log::error("sql {}: user \"{}\": {}", db_->describe(), log::safe(req->user), v.detail);
        co_return r;
    }

    asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr req, std::string scheme) override {
        Lookup l = co_await find(req);
        auto r = take_row<CredResult>(l, *req);
        if (r.status != PassStatus::Ok) co_return r;
        if (!l.row.password || l.row.password->empty())
            co_return CredResult::unavailable("no password in the password_query result");
        std::string stored = l.row.stored();
        CredResult d = co_await derive_credentials(*pool_, std::move(stored), std::move(scheme), context(*req));
        r.status = d.status;
        r.detail = std::move(d.detail);
        r.credentials = std::move(d.credentials);
        co_return r;
    }

    asio::awaitable<PassResult> lookup(auth::RequestPtr req) override {
        Lookup l = co_await find(req);
        // Where the user may log in from does not matter to a lookup.
        co_return take_row<PassResult>(l, *req, false);
    }

private:
    // The lookup's answer: Ok with the row's user name and fields moved in,
    // or why not (the lookup failed, allow_nets refuses).
    template <class R>
    static R take_row(Lookup& l, const auth::RequestInfo& req, bool check_nets = true) {
        if (l.status != PassStatus::Ok) return R::of(l.status, l.detail);
        return found_user<R>(l.row, req, l.detail, check_nets);
    }

    password::StoredContext context(const auth::RequestInfo& req) const {
        password::StoredContext ctx;
        ctx.default_scheme = file_.default_pass_scheme;
        ctx.user = req.original_user.empty() ? req.user : req.original_user;
        return ctx;
    }

    // `typed`: the password the client typed, for %w / %{password} in the
    // query (plaintext mechanisms only).
    asio::awaitable<Lookup> find(auth::RequestPtr req, std::shared_ptr<Secret> typed = {}) {
        Lookup l;
        auto used_password = std::make_shared<bool>(false);
        util::VarLookup vars = [req, typed, used_password](std::string_view n) -> std::optional<std::string> {
            if (n == "password") {
                *used_password = true;
                return typed ? std::string(typed->view()) : std::string();
            }
            return req->var(n);
        };
        QueryResult q = co_await db_->run(file_.password_query, vars);
        if (*used_password) q.error = "(server text not shown: the query carries the password)";
        switch (one_row(*db_, q, "password_query", req->user, l.detail)) {
            case RowCount::Failed: l.status = PassStatus::TempFail; co_return l;
            case RowCount::None: l.status = PassStatus::UnknownUser; co_return l;
            case RowCount::One: break;
        }
        l.row = sql::pass_row(q.columns, q.rows.front(), req->user, file_.fields_import_all);
        if (auto r = sql::apply_pass_fields(l.row, file_.fields, q.columns, q.rows.front(), request_vars(req),
                                            file_.fields_import_all);
            !r) {
            log::error("sql {}: user \"{}\": fields: {}", db_->describe(), log::safe(req->user),
                       log::safe(r.error().message));
            l.status = PassStatus::TempFail;
            l.detail = "fields could not be expanded";
            co_return l;
        }
        if (!l.row.password_column && !auth::has_field(l.row.extra, "nopassword")) {
            log::error("sql {}: password_query returned no password column", db_->describe());
        }
        l.status = PassStatus::Ok;
        co_return l;
    }

    sql::SqlFile file_;  // the queries (the database may be shared with other passdbs/userdbs)
    std::shared_ptr<sql::Database> db_;
    BlockingPool* pool_;
    bool can_update_ = false;
};

// Dovecot's default user_query.
constexpr const char* kDefaultUserQuery = "SELECT home, uid, gid FROM users WHERE userid = '%u'";

class SqlUserdb final : public Userdb {
public:
    SqlUserdb(sql::SqlFile file, std::shared_ptr<sql::Database> db) : file_(std::move(file)), db_(std::move(db)) {}
    std::string_view driver() const override { return "sql"; }
    std::string cache_key(const auth::RequestInfo& req) const override {
        return query_cache_key(
            (file_.user_query.empty() ? std::string(kDefaultUserQuery) : file_.user_query) + fields_text(file_), req);
    }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        const std::string& q = file_.user_query.empty() ? std::string(kDefaultUserQuery) : file_.user_query;
        QueryResult res = co_await db_->run(q, request_vars(req));
        std::string detail;
        switch (one_row(*db_, res, "user_query", req->user, detail)) {
            case RowCount::Failed: co_return UserResult::temp_fail(std::move(detail));
            case RowCount::None: co_return UserResult::not_found(std::move(detail));
            case RowCount::One: break;
        }
        auto row = sql::user_row(res.columns, res.rows.front(), file_.fields_import_all);
        if (auto r = sql::apply_user_fields(row, file_.fields, res.columns, res.rows.front(), request_vars(req)); !r) {
            log::error("sql {}: user \"{}\": fields: {}", db_->describe(), log::safe(req->user),
                       log::safe(r.error().message));
            co_return UserResult::temp_fail("fields could not be expanded");
        }
        co_return UserResult::found(row.user.empty() ? req->user : row.user, std::move(row.fields));
    }

    asio::awaitable<IterStatus> iterate(IterSink each) override {
        if (file_.iterate_query.empty()) co_return IterStatus::Unsupported;
        auto state = std::make_shared<IterState>();
        state->each = std::move(each);
        sql::RowSink sink = [state](const std::vector<std::string>& columns, sql::Row row) {
            return feed(state, columns, std::move(row));
        };
        auto none = [](std::string_view) -> std::optional<std::string> { return std::string(); };
        QueryResult res = co_await db_->run(file_.iterate_query, none, sink);
        if (state->stopped) co_return IterStatus::Stopped;
        if (res.status != QueryResult::Status::Ok) {
            log::error("sql {}: iterate_query failed: {}", db_->describe(), safe_error(res));
            co_return IterStatus::TempFail;
        }
        co_return IterStatus::Done;
    }

private:
    struct IterState {
        IterSink each;
        bool stopped = false;
        bool warned = false;
    };

    static asio::awaitable<bool> feed(std::shared_ptr<IterState> state, std::vector<std::string> columns, sql::Row row) {
        auto user = sql::iterate_user(columns, row);
        if (!user) {
            if (!state->warned) log::error("sql: iterate_query row without a user (or username) column");
            state->warned = true;
            co_return true;
        }
        const bool more = co_await state->each(std::move(*user));
        if (!more) state->stopped = true;
        co_return more;
    }

    sql::SqlFile file_;
    std::shared_ptr<sql::Database> db_;
};

}  // namespace

std::unique_ptr<Passdb> make_sql_passdb(const config::Section& s, Services& services) {
    auto st = read_settings(s, true);
    auto db = sql::shared_database(services.executor, st.file, st.pool);
    return std::make_unique<SqlPassdb>(std::move(st.file), std::move(db), services.pool);
}

std::unique_ptr<Userdb> make_sql_userdb(const config::Section& s, Services& services) {
    auto st = read_settings(s, false);
    auto db = sql::shared_database(services.executor, st.file, st.pool);
    return std::make_unique<SqlUserdb>(std::move(st.file), std::move(db));
}

}  // namespace postern::backend
