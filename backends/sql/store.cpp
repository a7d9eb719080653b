// `postern user` on a PostfixAdmin database: mailbox rows written the way
// PostfixAdmin writes them (username, password, name, maildir
// "domain/local_part/", quota in bytes, local_part, domain, created,
// modified, active) plus the mailbox's alias to itself, refusing a mailbox
// for a domain that does not exist. Runs in the CLI process: the
// non-blocking connection is driven by a private io_context, one call at a
// time.
#include <asio/io_context.hpp>

#include <cctype>
#include <optional>

#include "backends/sql/database.hpp"
#include "backends/sql/fields.hpp"
#include "backends/sql/sql.hpp"
#include "backends/sync_call.hpp"
#include "password/scheme.hpp"
#include "util/encoding.hpp"

namespace postern::backend {

namespace {

using sql::QueryResult;

// A CLI command should not hang on an unreachable database.
constexpr std::chrono::seconds kStoreTimeout{30};
// PostfixAdmin's column width for addresses.
constexpr std::size_t kMaxAddress = 255;

class SqlStore final : public UserStore {
public:
    explicit SqlStore(sql::SqlFile file) {
        sql::PoolSettings ps;
        ps.size = 1;  // one connection: BEGIN ... COMMIT run on it
        ps.query_timeout = kStoreTimeout;
        db_ = std::make_unique<sql::Database>(io_.get_executor(), std::move(file), ps);
    }

    std::string describe() const override { return "sql " + db_->describe() + " (" + db_->file().path + ")"; }

    password::StoredContext read_context() const override {
        password::StoredContext ctx;
        ctx.default_scheme = db_->file().default_pass_scheme;
        return ctx;
    }
    // The iterate_query gives names; show() reads each one's password.
    bool lists_passwords() const override { return false; }

    std::string default_scheme() const override {
        // New passwords in the scheme the file reads bare values as, unless
        // that is one of the weak defaults.
        const auto& d = db_->file().default_pass_scheme;
        auto c = password::canonical_name(d);
        if (c && *c != "MD5" && *c != "MD5-CRYPT" && *c != "PLAIN" && *c != "CLEAR" && *c != "PLAIN-MD5") return *c;
        return "SHA512-CRYPT";
    }

    StoreResult add(const StoredUser& u) override {
        std::string user = lowercase(u.user);
        auto parts = split(user);
        if (!parts) return {StoreStatus::Invalid, "a PostfixAdmin mailbox name is local_part@domain"};
        const auto& [local, domain] = *parts;
        std::string name, quota = "0", maildir = domain + "/" + local + "/";
        for (const auto& [k, v] : u.fields) {
            if (k == "name") name = v;
            else if (k == "quota") {
                if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
                    return {StoreStatus::Invalid, "quota must be a number of bytes"};
                quota = v;
            } else if (k == "maildir") maildir = v;
            else return {StoreStatus::Invalid, "field \"" + k + "\" has no PostfixAdmin column (name, quota, maildir)"};
        }
        auto vars = sql::named_values({{"user", user}, {"local_part", local}, {"domain", domain}, {"name", name},
                                       {"maildir", maildir}, {"quota", quota}, {"password", stored_form(u.password)}});
        auto d = q("SELECT domain FROM domain WHERE domain = '%{domain}'", vars);
        if (!d.ok()) return d.result;
        if (d.r.rows.empty()) return {StoreStatus::Invalid, "domain " + domain + " does not exist in PostfixAdmin's domain table"};
        auto m = q("SELECT username FROM mailbox WHERE username = '%{user}'", vars);
        if (!m.ok()) return m.result;
        if (!m.r.rows.empty()) return {StoreStatus::Exists, "mailbox " + user + " exists"};
        auto a = q("SELECT address FROM alias WHERE address = '%{user}'", vars);
        if (!a.ok()) return a.result;
        if (!a.r.rows.empty()) return {StoreStatus::Exists, "an alias " + user + " exists"};
        return transaction({
            {"INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, created, modified, active) "
             "VALUES ('%{user}', '%{password}', '%{name}', '%{maildir}', '%{quota}', '%{local_part}', '%{domain}', "
             "NOW(), NOW(), '1')", false},
            {"INSERT INTO alias (address, goto, domain, created, modified, active) "
             "VALUES ('%{user}', '%{user}', '%{domain}', NOW(), NOW(), '1')", false},
        }, vars);
    }

    StoreResult set_password(std::string_view user_in, const std::string& stored) override {
        const std::string user = lowercase(user_in);
        auto vars = sql::named_values({{"user", user}, {"password", stored_form(stored)}});
        auto m = q("SELECT username FROM mailbox WHERE username = '%{user}'", vars);
        if (!m.ok()) return m.result;
        if (m.r.rows.empty()) return {StoreStatus::NotFound, "no mailbox " + user};
        auto u = q("UPDATE mailbox SET password = '%{password}', modified = NOW() WHERE username = '%{user}'", vars, true);
        if (!u.ok()) return u.result;
        return {};
    }

    StoreResult remove(std::string_view user_in) override {
        const std::string user = lowercase(user_in);
        auto vars = sql::named_values({{"user", user}});
        auto m = q("SELECT username FROM mailbox WHERE username = '%{user}'", vars);
        if (!m.ok()) return m.result;
        if (m.r.rows.empty()) return {StoreStatus::NotFound, "no mailbox " + user};
        return transaction({
            {"DELETE FROM alias WHERE address = '%{user}'", false},
            {"DELETE FROM mailbox WHERE username = '%{user}'", true},
        }, vars);
    }

    StoreResult show(std::string_view user_in, StoredUser& out) override {
        const std::string user = lowercase(user_in);
        auto vars = sql::named_values({{"user", user}});
        auto m = q("SELECT username, password, name, maildir, quota, domain, active FROM mailbox WHERE username = '%{user}'", vars);
        if (!m.ok()) return m.result;
        if (m.r.rows.empty()) return {StoreStatus::NotFound, "no mailbox " + user};
        const auto& row = m.r.rows.front();
        out = StoredUser{};
        for (std::size_t i = 0; i < m.r.columns.size() && i < row.size(); ++i) {
            const auto& c = m.r.columns[i];
            const std::string v = row[i] ? *row[i] : std::string();
            if (c == "username") out.user = v;
            else if (c == "password") out.password = v;
            else if (c == "active") out.fields.emplace_back("active", v == "t" || v == "1" ? "1" : "0");
            else out.fields.emplace_back(c, v);
        }
        return {};
    }

    StoreResult list(const std::function<bool(const StoredUser&)>& each) override {
        const auto& iq = db_->file().iterate_query;
        const std::string tmpl = iq.empty() ? std::string("SELECT username AS user FROM mailbox ORDER BY username") : iq;
        auto state = std::make_shared<ListState>();
        state->each = &each;
        sql::RowSink sink = [state](const std::vector<std::string>& columns, sql::Row row) {
            return feed(state, columns, std::move(row));
        };
        auto none = [](std::string_view) -> std::optional<std::string> { return std::string(); };
        QueryResult r = sync(db_->run(tmpl, none, sink));
        if (r.status != QueryResult::Status::Ok) return {StoreStatus::Unavailable, "iterate_query failed: " + r.error};
        return {};
    }

private:
    struct ListState {
        const std::function<bool(const StoredUser&)>* each = nullptr;
    };

    static asio::awaitable<bool> feed(std::shared_ptr<ListState> state, std::vector<std::string> columns, sql::Row row) {
        auto user = sql::iterate_user(columns, row);
        if (!user) co_return true;
        StoredUser u;
        u.user = std::move(*user);
        co_return (*state->each)(u);
    }

    struct Outcome {
        QueryResult r;
        StoreResult result;
        bool ok() const { return result.ok(); }
    };

    static std::optional<std::pair<std::string, std::string>> split(const std::string& user) {
        const auto at = user.find('@');
        if (at == std::string::npos || at == 0 || at + 1 >= user.size() || user.find('@', at + 1) != std::string::npos)
            return std::nullopt;
        if (user.size() > kMaxAddress) return std::nullopt;
        for (char c : user)
            if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return std::nullopt;
        return std::make_pair(user.substr(0, at), user.substr(at + 1));
    }

    // "{SCHEME}value" is kept bare when SCHEME is the file's default scheme,
    // as PostfixAdmin keeps crypt hashes ("$6$...").
    std::string stored_form(const std::string& stored) const {
        if (stored.size() > 2 && stored.front() == '{') {
            const auto close = stored.find('}');
            if (close != std::string::npos) {
                auto scheme = password::canonical_name(stored.substr(1, close - 1));
                auto def = password::canonical_name(db_->file().default_pass_scheme);
                if (scheme && def && *scheme == *def) return stored.substr(close + 1);
            }
        }
        return stored;
    }

    template <class T>
    T sync(asio::awaitable<T> aw) {
        return run_sync(io_, std::move(aw));
    }

    // Runs one statement. Server messages are quoted only for statements
    // that carry no password (a syntax error can echo the statement).
    Outcome q(const std::string& tmpl, const util::VarLookup& vars, bool quiet = false) {
        Outcome o;
        o.r = sync(db_->run(tmpl, vars));
        const bool secret = tmpl.find("%{password}") != std::string::npos;
        if (o.r.status == QueryResult::Status::Ok) return o;
        std::string why = secret || quiet ? std::string("the database refused the statement") : o.r.error;
        o.result = {StoreStatus::Unavailable, describe() + ": " + why};
        return o;
    }

    StoreResult transaction(std::vector<std::pair<std::string, bool>> steps, const util::VarLookup& vars) {
        auto b = q("BEGIN", vars);
        if (!b.ok()) return b.result;
        for (const auto& [tmpl, must_change] : steps) {
            auto s = q(tmpl, vars);
            if (!s.ok() || (must_change && s.r.affected == 0)) {
                q("ROLLBACK", vars);
                return s.ok() ? StoreResult{StoreStatus::NotFound, "nothing changed"} : s.result;
            }
        }
        auto c = q("COMMIT", vars);
        return c.ok() ? StoreResult{} : c.result;
    }

    asio::io_context io_;
    std::unique_ptr<sql::Database> db_;
};

}  // namespace

std::unique_ptr<UserStore> make_sql_store(const config::Section& s) {
    sql::SqlFile file = sql::read_sql_section(s, true);
    if (!sql::driver_available(file.driver))
        s.error(s.has("args") ? "args" : "sql_driver", file.path + ": this sql driver is not compiled in");
    return std::make_unique<SqlStore>(std::move(file));
}

}  // namespace postern::backend
