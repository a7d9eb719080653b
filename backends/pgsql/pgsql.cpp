// PostgreSQL connection on libpq's asynchronous API: PQconnectStartParams /
// PQconnectPoll, PQsendPrepare / PQsendQueryPrepared (every value a bound
// parameter), PQflush, PQconsumeInput / PQisBusy / PQgetResult, with the
// socket (a dup awaited with Asio) telling the loop when to go on.
//
// Each distinct statement text is prepared once per connection, lazily (one
// extra round trip the first time), and then only executed: the server
// parses and plans it once. A new connection (after a reconnect) starts with
// none prepared. Iterate queries (rows streamed, run once) and texts past
// kMaxStatements go unnamed through PQsendQueryParams.
//
// Pipeline mode is not used: the pool runs one statement per connection at a
// time, so there is nothing to pipeline but the first Prepare with its
// Execute, once per connection and statement.
#include <libpq-fe.h>

#include <unordered_map>

#include "backends/sql/connection.hpp"
#include "util/log.hpp"

namespace postern::backend::sql {

namespace {

// Distinct statement texts prepared per connection; beyond, statements go
// unnamed (a template whose text changes with the values cannot fill the
// server's memory).
constexpr std::size_t kMaxStatements = 32;

// A libpq message without its trailing newline.
std::string message(const char* text) {
    std::string out = text;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

class PgsqlConnection final : public Connection {
public:
    PgsqlConnection(asio::any_io_executor ex, const ConnectSettings& s) : sock_(ex), settings_(s) {}
    ~PgsqlConnection() override { close(); }

    bool connected() const override { return c_ != nullptr && ok_; }

    void close() override {
        sock_.close();
        if (c_) {
            if (!ok_) break_socket(PQsocket(c_));
            PQfinish(c_);  // sends Terminate without waiting for an answer
            c_ = nullptr;
        }
        prepared_.clear();  // the server forgets them with the session
        ok_ = false;
    }

    asio::awaitable<Result<void>> connect(Host host, std::string address, Deadline deadline) override {
        close();
        std::vector<std::pair<std::string, std::string>> kv;
        if (!host.name.empty()) kv.emplace_back("host", host.name);
        if (!address.empty()) kv.emplace_back("hostaddr", address);
        if (!settings_.port.empty()) kv.emplace_back("port", settings_.port);
        if (!settings_.dbname.empty()) kv.emplace_back("dbname", settings_.dbname);
        if (!settings_.user.empty()) kv.emplace_back("user", settings_.user);
        if (!settings_.password.empty()) kv.emplace_back("password", settings_.password);
        bool encoding = false;
        for (const auto& [k, v] : settings_.options) {
            if (k == "client_encoding") encoding = true;
            kv.emplace_back(k, v);
        }
        if (!encoding) kv.emplace_back("client_encoding", "UTF8");
        std::vector<const char*> keys, values;
        for (const auto& [k, v] : kv) {
            keys.push_back(k.c_str());
            values.push_back(v.c_str());
        }
        keys.push_back(nullptr);
        values.push_back(nullptr);
        c_ = PQconnectStartParams(keys.data(), values.data(), 0);
        if (!c_) co_return fail("out of memory");
        if (PQstatus(c_) == CONNECTION_BAD) co_return fail_connect();
        // Server notices go to our log, not straight to stderr.
        PQsetNoticeProcessor(c_, [](void*, const char* message) {
            log::debug("pgsql notice: {}", log::safe(message ? message : "", 300));
        }, nullptr);
        PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
        for (;;) {
            if (poll == PGRES_POLLING_OK) break;
            if (poll == PGRES_POLLING_FAILED) co_return fail_connect();
            // The socket may change between steps (another address, SSL
            // retry), so watch the current one each time.
            if (!sock_.watch(PQsocket(c_))) co_return fail_connect();
            const int got = co_await sock_.wait(poll == PGRES_POLLING_READING, poll == PGRES_POLLING_WRITING, deadline);
            if (got == 0) {
                close();
                co_return fail("connect timed out");
            }
            poll = PQconnectPoll(c_);
        }
        if (PQsetnonblocking(c_, 1) != 0) co_return fail_connect();
        if (!sock_.watch(PQsocket(c_))) co_return fail_connect();
        ok_ = true;
        co_return Result<void>{};
    }

    asio::awaitable<QueryResult> query(Marked statement, Deadline deadline, RowSink sink) override {
        if (!connected()) co_return QueryResult::failure(QueryResult::Status::ConnectionLost, "not connected");
        auto st = render_pgsql(statement);
        if (!st) co_return QueryResult::failure(QueryResult::Status::QueryError, st.error().message);
        // Parameter types are left to the server to infer from where each one
        // stands, exactly as for the quoted literal the template had there.
        std::vector<const char*> values;
        for (const auto& p : st->params) values.push_back(p.c_str());
        const std::string* name = nullptr;
        if (!sink) {
            auto failure = co_await prepare(*st, deadline, name);
            if (failure) co_return std::move(*failure);
        }
        const int sent = name ? PQsendQueryPrepared(c_, name->c_str(), static_cast<int>(values.size()), values.data(),
                                                    nullptr, nullptr, 0)
                              : PQsendQueryParams(c_, st->text.c_str(), static_cast<int>(values.size()), nullptr,
                                                  values.data(), nullptr, nullptr, 0);
        if (!sent) co_return lost();
        if (sink && !PQsetSingleRowMode(c_)) co_return lost();
        {
            auto failure = co_await flush(deadline);
            if (failure) co_return std::move(*failure);
        }
        QueryResult r;
        bool error = false;
        bool stopped = false;
        for (;;) {
            {
                auto failure = co_await until_result(deadline);
                if (failure) co_return std::move(*failure);
            }
            PGresult* res = PQgetResult(c_);
            if (!res) break;
            const auto status = PQresultStatus(res);
            if (stopped) {
                PQclear(res);
                continue;
            }
            if (status == PGRES_TUPLES_OK || status == PGRES_SINGLE_TUPLE) {
                const int nf = PQnfields(res);
                if (r.columns.empty())
                    for (int i = 0; i < nf; ++i) r.columns.emplace_back(PQfname(res, i));
                const int nt = PQntuples(res);
                for (int t = 0; t < nt; ++t) {
                    Row row;
                    row.reserve(static_cast<std::size_t>(nf));
                    for (int i = 0; i < nf; ++i) {
                        if (PQgetisnull(res, t, i)) row.emplace_back(std::nullopt);
                        else row.emplace_back(std::string(PQgetvalue(res, t, i), static_cast<std::size_t>(PQgetlength(res, t, i))));
                    }
                    if (sink) {
                        PQclear(res);
                        res = nullptr;
                        const bool more = co_await sink(r.columns, std::move(row));
                        if (!more) {
                            // Unread rows would have to be drained; dropping the
                            // connection is simpler.
                            ok_ = false;
                            close();
                            r.status = QueryResult::Status::Ok;
                            co_return r;
                        }
                        break;  // single-row mode: one row per result
                    }
                    r.rows.push_back(std::move(row));
                }
            } else if (status == PGRES_COMMAND_OK) {
                const char* n = PQcmdTuples(res);
                r.affected = n && *n ? std::strtoull(n, nullptr, 10) : 0;
            } else {
                error = true;
                r.error = message(PQresultErrorMessage(res));
            }
            if (res) PQclear(res);
        }
        if (PQstatus(c_) == CONNECTION_BAD) co_return lost();
        // A prepared statement that failed is prepared anew next time (a
        // table changed under it: "cached plan must not change result type").
        if (error && name) prepared_.erase(st->text);
        r.status = error ? QueryResult::Status::QueryError : QueryResult::Status::Ok;
        co_return r;
    }

private:
    // Sends everything queued; the server may answer while we still write.
    // A failure result, or nullopt once all is sent.
    asio::awaitable<std::optional<QueryResult>> flush(Deadline deadline) {
        for (;;) {
            const int f = PQflush(c_);
            if (f == 0) co_return std::nullopt;
            if (f < 0) co_return lost();
            const int got = co_await sock_.wait(true, true, deadline);
            if (got == 0) co_return timed_out();
            if (got == 1 && !PQconsumeInput(c_)) co_return lost();
        }
    }

    // Waits until the next result has arrived whole (PQgetResult will not
    // wait). A failure result, or nullopt.
    asio::awaitable<std::optional<QueryResult>> until_result(Deadline deadline) {
        while (PQisBusy(c_)) {
            const int got = co_await sock_.wait(true, false, deadline);
            if (got == 0) co_return timed_out();
            if (!PQconsumeInput(c_)) co_return lost();
        }
        co_return std::nullopt;
    }

    // Points `name` at the prepared statement for `st` on this connection,
    // preparing it first when it is new (null: run it unnamed). A failure
    // result (the server refused the statement, as it would have refused
    // the query), or nullopt.
    asio::awaitable<std::optional<QueryResult>> prepare(const PgStatement& st, Deadline deadline,
                                                       const std::string*& name) {
        if (auto it = prepared_.find(st.text); it != prepared_.end()) {
            name = &it->second;
            co_return std::nullopt;
        }
        if (prepared_.size() >= kMaxStatements) co_return std::nullopt;
        // Names are never reused on a connection, so one that failed half way
        // cannot clash with a later one.
        std::string fresh = "postern_" + std::to_string(++statements_);
        if (!PQsendPrepare(c_, fresh.c_str(), st.text.c_str(), static_cast<int>(st.params.size()), nullptr))
            co_return lost();
        {
            auto failure = co_await flush(deadline);
            if (failure) co_return std::move(*failure);
        }
        std::string error;
        for (;;) {
            {
                auto failure = co_await until_result(deadline);
                if (failure) co_return std::move(*failure);
            }
            PGresult* res = PQgetResult(c_);
            if (!res) break;
            if (PQresultStatus(res) != PGRES_COMMAND_OK && error.empty()) error = message(PQresultErrorMessage(res));
            PQclear(res);
        }
        if (PQstatus(c_) == CONNECTION_BAD) co_return lost();
        if (!error.empty()) co_return QueryResult::failure(QueryResult::Status::QueryError, std::move(error));
        name = &prepared_.emplace(st.text, std::move(fresh)).first->second;
        co_return std::nullopt;
    }

    Result<void> fail_connect() {
        std::string err = c_ ? message(PQerrorMessage(c_)) : "connect failed";
        ok_ = false;
        close();
        return fail(err);
    }

    QueryResult lost() {
        std::string error = c_ ? message(PQerrorMessage(c_)) : "connection lost";
        ok_ = false;
        close();
        return QueryResult::failure(QueryResult::Status::ConnectionLost, std::move(error));
    }

    QueryResult timed_out() {
        ok_ = false;
        close();
        return QueryResult::timeout();
    }

    LibrarySocket sock_;
    ConnectSettings settings_;
    PGconn* c_ = nullptr;
    bool ok_ = false;
    std::unordered_map<std::string, std::string> prepared_;  // statement text -> its name on this connection
    unsigned long statements_ = 0;                            // names handed out on this connection
};

}  // namespace

std::unique_ptr<Connection> make_pgsql_connection(asio::any_io_executor ex, const ConnectSettings& settings) {
    return std::make_unique<PgsqlConnection>(ex, settings);
}

}  // namespace postern::backend::sql
