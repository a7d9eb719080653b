// PostgreSQL connection on libpq's asynchronous API: PQconnectStartParams /
// PQconnectPoll, PQsendQueryParams (every value a bound parameter),
// PQflush, PQconsumeInput / PQisBusy / PQgetResult, with the socket (a dup
// awaited with Asio) telling the loop when to go on.
#include <libpq-fe.h>

#include "backends/sql/connection.hpp"
#include "util/log.hpp"

namespace postern::backend::sql {

namespace {

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
        if (!PQsendQueryParams(c_, st->text.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0))
            co_return lost();
        if (sink && !PQsetSingleRowMode(c_)) co_return lost();
        // Send everything; the server may answer while we still write.
        for (;;) {
            const int f = PQflush(c_);
            if (f == 0) break;
            if (f < 0) co_return lost();
            const int got = co_await sock_.wait(true, true, deadline);
            if (got == 0) co_return timed_out();
            if (got == 1 && !PQconsumeInput(c_)) co_return lost();
        }
        QueryResult r;
        bool error = false;
        bool stopped = false;
        for (;;) {
            while (PQisBusy(c_)) {
                const int got = co_await sock_.wait(true, false, deadline);
                if (got == 0) co_return timed_out();
                if (!PQconsumeInput(c_)) co_return lost();
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
        r.status = error ? QueryResult::Status::QueryError : QueryResult::Status::Ok;
        co_return r;
    }

private:
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
};

}  // namespace

std::unique_ptr<Connection> make_pgsql_connection(asio::any_io_executor ex, const ConnectSettings& settings) {
    return std::make_unique<PgsqlConnection>(ex, settings);
}

}  // namespace postern::backend::sql
