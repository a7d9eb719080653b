// MySQL/MariaDB connection on MariaDB Connector/C's non-blocking API
// (MYSQL_OPT_NONBLOCK, mysql_*_start/_cont): every library call returns at
// once with the socket events it waits for, and the loop resumes it when the
// socket (a dup awaited with Asio) is ready.
//
// Statements run as server-side prepared statements (mysql_stmt_*_start/_cont):
// each distinct statement text is prepared once per connection, lazily, and
// every value is a bound string parameter (query.hpp: render_mysql_params).
// The text protocol with mysql_real_escape_string remains for what a
// placeholder cannot express (a value in a literal whose own text has a
// backslash escape, or after an introducer such as _utf8'%u'), for
// statements the server will not prepare, for iterate queries (one-off, rows
// streamed) and past kMaxStatements distinct texts per connection.
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include <unordered_map>
#include <unordered_set>

#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/redirect_error.hpp>

#include "backends/sql/connection.hpp"
#include "util/log.hpp"

namespace postern::backend::sql {

namespace {

// ER_CANT_AGGREGATE_2COLLATIONS, _3COLLATIONS, _NCOLLATIONS: "Illegal mix of
// collations", the server's answer when a value cannot be converted to the
// character set of the column it is compared with.
constexpr unsigned kIllegalMix2 = 1267;
constexpr unsigned kIllegalMix3 = 1270;
constexpr unsigned kIllegalMixN = 1271;

// After a deadline, how many more library steps may run while the broken
// socket makes the pending operation fail.
constexpr int kAbortSteps = 16;

// Distinct statement texts prepared per connection; beyond, the text
// protocol (a template whose text changes with the values cannot fill the
// server's statement table).
constexpr std::size_t kMaxStatements = 32;
// Result buffer per column before a longer value is fetched on its own.
constexpr unsigned long kColumnBuffer = 256;

// The column names of a result (or of a statement's result metadata).
std::vector<std::string> column_names(MYSQL_RES* res) {
    const unsigned n = mysql_num_fields(res);
    const MYSQL_FIELD* fields = mysql_fetch_fields(res);
    std::vector<std::string> names;
    names.reserve(n);
    for (unsigned i = 0; i < n; ++i) names.emplace_back(fields[i].name);
    return names;
}

class MysqlConnection final : public Connection {
public:
    MysqlConnection(asio::any_io_executor ex, const ConnectSettings& s) : sock_(ex), settings_(s) {}
    ~MysqlConnection() override { close(); }

    bool connected() const override { return m_ != nullptr && ok_; }

    void close() override {
        sock_.close();
        if (m_) {
            // After a failure the socket is shut down first so that nothing
            // can wait.
            if (!ok_) break_socket(mysql_get_socket(m_));
            // The non-blocking close: if COM_QUIT cannot be written at once,
            // break the socket and let the close finish on the error.
            int st = mysql_close_start(m_);
            if (st) {
                break_socket(mysql_get_socket(m_));
                for (int i = 0; st && i < kAbortSteps; ++i) st = mysql_close_cont(m_, st);
            }
            // A finished close has detached the statements from the handle:
            // closing them now frees their memory without any I/O (the server
            // drops them with the session). Else the handle is leaked and so
            // are they.
            if (st == 0)
                for (MYSQL_STMT* stmt : owned_) mysql_stmt_close(stmt);
            m_ = nullptr;
        }
        owned_.clear();
        prepared_.clear();
        unpreparable_.clear();
        spare_ = nullptr;
        ok_ = false;
    }

    asio::awaitable<Result<void>> connect(Host host, std::string address, Deadline deadline) override {
        close();
        m_ = mysql_init(nullptr);
        if (!m_) co_return fail("mysql_init failed");
        mysql_options(m_, MYSQL_OPT_NONBLOCK, nullptr);
        std::string charset = "utf8mb4";
        unsigned long flags = 0;
        for (const auto& [k, v] : settings_.options) {
            if (k == "ssl_ca") mysql_options(m_, MYSQL_OPT_SSL_CA, v.c_str());
            else if (k == "ssl_ca_path") mysql_options(m_, MYSQL_OPT_SSL_CAPATH, v.c_str());
            else if (k == "ssl_cert") mysql_options(m_, MYSQL_OPT_SSL_CERT, v.c_str());
            else if (k == "ssl_key") mysql_options(m_, MYSQL_OPT_SSL_KEY, v.c_str());
            else if (k == "ssl_cipher") mysql_options(m_, MYSQL_OPT_SSL_CIPHER, v.c_str());
            else if (k == "ssl_verify_server_cert") {
                my_bool on = v == "yes" || v == "1";
                mysql_options(m_, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
            } else if (k == "option_file") mysql_options(m_, MYSQL_READ_DEFAULT_FILE, v.c_str());
            else if (k == "option_group") mysql_options(m_, MYSQL_READ_DEFAULT_GROUP, v.c_str());
            else if (k == "client_flags") flags = std::strtoul(v.c_str(), nullptr, 10);
            else if (k == "character_set") charset = v;
            // read_timeout / write_timeout: the pool's query timeout governs.
        }
        mysql_options(m_, MYSQL_SET_CHARSET_NAME, charset.c_str());
        const unsigned timeout_s = static_cast<unsigned>(
            std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(settings_.connect_timeout).count()));
        mysql_options(m_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);

        const char* h = nullptr;
        const char* sock = nullptr;
        if (host.is_socket) {
            h = "localhost";
            sock = host.name.empty() ? nullptr : host.name.c_str();
        } else if (host.name == "localhost") {
            h = "localhost";  // the library's default unix socket, as Dovecot does
        } else {
            h = address.empty() ? host.name.c_str() : address.c_str();
        }
        const unsigned port = settings_.port.empty() ? 0 : static_cast<unsigned>(std::stoul(settings_.port));
        MYSQL* ret = nullptr;
        const int st = mysql_real_connect_start(&ret, m_, h, settings_.user.c_str(), settings_.password.c_str(),
                                                settings_.dbname.empty() ? nullptr : settings_.dbname.c_str(), port,
                                                sock, flags);
        auto cont = [&](int events) { return mysql_real_connect_cont(&ret, m_, events); };
        const bool done = co_await finish(st, cont, deadline);
        if (!done) co_return fail("connect timed out");
        if (!ret) {
            std::string err = mysql_error(m_);
            close();
            co_return fail(err);
        }
        ok_ = true;
        co_return Result<void>{};
    }

    asio::awaitable<QueryResult> query(Marked statement, Deadline deadline, RowSink sink) override {
        if (!connected()) co_return QueryResult::failure(QueryResult::Status::ConnectionLost, "not connected");
        if (!sink) {
            auto params = render_mysql_params(statement);
            if (!params) co_return QueryResult::failure(QueryResult::Status::QueryError, params.error().message);
            if (*params && !unpreparable_.contains((*params)->text)) {
                const MyStatement& st = **params;
                auto r = co_await run_prepared(st, deadline);
                if (r) co_return std::move(*r);
                if (!connected()) co_return QueryResult::failure(QueryResult::Status::ConnectionLost, "not connected");
            }
        }
        co_return co_await run_text(std::move(statement), deadline, std::move(sink));
    }

private:
    // One statement through the prepared-statement protocol. nullopt when it
    // must take the text protocol instead (the server cannot prepare it, or
    // the connection holds kMaxStatements already).
    asio::awaitable<std::optional<QueryResult>> run_prepared(const MyStatement& st, Deadline deadline) {
        MYSQL_STMT* stmt = nullptr;
        if (auto it = prepared_.find(st.text); it != prepared_.end()) {
            stmt = it->second;
        } else {
            if (prepared_.size() + unpreparable_.size() >= kMaxStatements) co_return std::nullopt;
            // A handle whose prepare failed is used again (preparing it anew
            // drops what it held), so failing statements cannot pile up.
            stmt = spare_;
            spare_ = nullptr;
            if (!stmt) {
                stmt = mysql_stmt_init(m_);
                if (!stmt) co_return std::nullopt;
                owned_.push_back(stmt);
            }
            int ret = 0;
            const int started = mysql_stmt_prepare_start(&ret, stmt, st.text.data(),
                                                         static_cast<unsigned long>(st.text.size()));
            auto prepare_cont = [&](int events) { return mysql_stmt_prepare_cont(&ret, stmt, events); };
            const bool prepared = co_await finish(started, prepare_cont, deadline);
            if (!prepared) co_return QueryResult::timeout();
            if (ret) {
                spare_ = stmt;
                const unsigned code = mysql_stmt_errno(stmt);
                if (code == ER_UNSUPPORTED_PS || code == ER_MAX_PREPARED_STMT_COUNT_REACHED) {
                    log::debug("mysql: statement not prepared ({}); sent as text", code);
                    unpreparable_.insert(st.text);
                    co_return std::nullopt;
                }
                co_return failed(code, mysql_stmt_error(stmt));
            }
            // A "?" the template had outside any literal (in a comment, say)
            // would take a value meant for another place.
            if (mysql_stmt_param_count(stmt) != st.params.size()) {
                log::debug("mysql: statement has {} placeholders for {} values; sent as text",
                           mysql_stmt_param_count(stmt), st.params.size());
                spare_ = stmt;
                unpreparable_.insert(st.text);
                co_return std::nullopt;
            }
            prepared_.emplace(st.text, stmt);
        }

        std::vector<MYSQL_BIND> in(st.params.size());
        std::vector<unsigned long> in_len(st.params.size());
        for (std::size_t i = 0; i < st.params.size(); ++i) {
            in_len[i] = static_cast<unsigned long>(st.params[i].size());
            in[i].buffer_type = MYSQL_TYPE_STRING;
            in[i].buffer = const_cast<char*>(st.params[i].data());
            in[i].buffer_length = in_len[i];
            in[i].length = &in_len[i];
        }
        if (!in.empty() && mysql_stmt_bind_param(stmt, in.data()))
            co_return failed(mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
        int ret = 0;
        const int started = mysql_stmt_execute_start(&ret, stmt);
        auto execute_cont = [&](int events) { return mysql_stmt_execute_cont(&ret, stmt, events); };
        const bool executed = co_await finish(started, execute_cont, deadline);
        if (!executed) co_return QueryResult::timeout();
        if (ret) co_return failed(mysql_stmt_errno(stmt), mysql_stmt_error(stmt));

        QueryResult r;
        MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
        if (!meta) {
            if (mysql_stmt_field_count(stmt) != 0) co_return failed(mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
            r.status = QueryResult::Status::Ok;
            r.affected = mysql_stmt_affected_rows(stmt);
            co_return r;
        }
        r.columns = column_names(meta);
        const auto n = static_cast<unsigned>(r.columns.size());
        mysql_free_result(meta);
        ret = 0;
        const int store = mysql_stmt_store_result_start(&ret, stmt);
        auto store_cont = [&](int events) { return mysql_stmt_store_result_cont(&ret, stmt, events); };
        const bool stored = co_await finish(store, store_cont, deadline);
        if (!stored) co_return QueryResult::timeout();
        if (ret) co_return failed(mysql_stmt_errno(stmt), mysql_stmt_error(stmt));

        // Every column is fetched as text (the library converts numbers and
        // dates); a value longer than its buffer is fetched again on its own.
        std::vector<MYSQL_BIND> out(n);
        std::vector<std::string> buf(n, std::string(kColumnBuffer, '\0'));
        std::vector<unsigned long> len(n);
        std::vector<my_bool> null(n);
        std::vector<my_bool> error(n);
        for (unsigned i = 0; i < n; ++i) {
            out[i].buffer_type = MYSQL_TYPE_STRING;
            out[i].buffer = buf[i].data();
            out[i].buffer_length = kColumnBuffer;
            out[i].length = &len[i];
            out[i].is_null = &null[i];
            out[i].error = &error[i];
        }
        bool bad = n > 0 && mysql_stmt_bind_result(stmt, out.data());
        while (!bad) {
            // The rows are in memory (stored above): no I/O.
            const int f = mysql_stmt_fetch(stmt);
            if (f == MYSQL_NO_DATA) break;
            if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
                bad = true;
                break;
            }
            Row row;
            row.reserve(n);
            for (unsigned i = 0; i < n && !bad; ++i) {
                if (null[i]) {
                    row.emplace_back(std::nullopt);
                } else if (len[i] <= kColumnBuffer) {
                    row.emplace_back(std::string(buf[i].data(), len[i]));
                } else {
                    std::string whole(len[i], '\0');
                    MYSQL_BIND one{};
                    unsigned long got = 0;
                    one.buffer_type = MYSQL_TYPE_STRING;
                    one.buffer = whole.data();
                    one.buffer_length = len[i];
                    one.length = &got;
                    bad = mysql_stmt_fetch_column(stmt, &one, i, 0) != 0;
                    row.emplace_back(std::move(whole));
                }
            }
            r.rows.push_back(std::move(row));
        }
        // The stored rows are freed in memory; nothing is left to read.
        const unsigned code = bad ? mysql_stmt_errno(stmt) : 0;
        std::string text = bad ? mysql_stmt_error(stmt) : "";
        mysql_stmt_free_result(stmt);
        if (bad) co_return failed(code ? code : CR_UNKNOWN_ERROR, code ? text : "cannot read a row");
        r.status = QueryResult::Status::Ok;
        co_return r;
    }

    // One statement through the text protocol, each value escaped on this
    // connection (render_mysql).
    asio::awaitable<QueryResult> run_text(Marked statement, Deadline deadline, RowSink sink) {
        MYSQL* m = m_;
        auto escape = [m](std::string_view v) {
            std::string out(v.size() * 2 + 1, '\0');
            const auto n = mysql_real_escape_string(m, out.data(), v.data(), static_cast<unsigned long>(v.size()));
            out.resize(n == static_cast<unsigned long>(-1) ? 0 : n);
            return out;
        };
        auto text = render_mysql(statement, escape);
        if (!text) co_return QueryResult::failure(QueryResult::Status::QueryError, text.error().message);
        int err = 0;
        const int sent = mysql_real_query_start(&err, m_, text->data(), static_cast<unsigned long>(text->size()));
        auto query_cont = [&](int events) { return mysql_real_query_cont(&err, m_, events); };
        const bool queried = co_await finish(sent, query_cont, deadline);
        if (!queried) co_return QueryResult::timeout();
        if (err) co_return failed();
        QueryResult r;
        MYSQL_RES* res = nullptr;
        if (sink) {
            res = mysql_use_result(m_);
        } else {
            const int st = mysql_store_result_start(&res, m_);
            auto store_cont = [&](int events) { return mysql_store_result_cont(&res, m_, events); };
            const bool stored = co_await finish(st, store_cont, deadline);
            if (!stored) co_return QueryResult::timeout();
        }
        if (!res) {
            if (mysql_field_count(m_) != 0) co_return failed();
            r.status = QueryResult::Status::Ok;
            r.affected = mysql_affected_rows(m_);
            co_return r;
        }
        r.columns = column_names(res);
        const auto n = static_cast<unsigned>(r.columns.size());
        for (;;) {
            MYSQL_ROW row = nullptr;
            if (sink) {
                const int st = mysql_fetch_row_start(&row, res);
                auto fetch_cont = [&](int events) { return mysql_fetch_row_cont(&row, res, events); };
                const bool fetched = co_await finish(st, fetch_cont, deadline);
                if (!fetched) co_return QueryResult::timeout();
            } else {
                row = mysql_fetch_row(res);
            }
            if (!row) break;
            const unsigned long* lengths = mysql_fetch_lengths(res);
            Row out;
            out.reserve(n);
            for (unsigned i = 0; i < n; ++i) {
                if (row[i]) out.emplace_back(std::string(row[i], lengths[i]));
                else out.emplace_back(std::nullopt);
            }
            if (sink) {
                const bool more = co_await sink(r.columns, std::move(out));
                if (!more) {
                    // Unread rows would have to be drained; dropping the connection is
                    // simpler. The shutdown makes freeing the result read nothing.
                    ok_ = false;
                    break_socket(mysql_get_socket(m_));
                    mysql_free_result(res);
                    close();
                    r.status = QueryResult::Status::Ok;
                    co_return r;
                }
            } else {
                r.rows.push_back(std::move(out));
            }
        }
        const bool broken = mysql_errno(m_) != 0;
        mysql_free_result(res);
        if (broken) co_return failed();
        r.status = QueryResult::Status::Ok;
        co_return r;
    }

    // Runs a non-blocking call to its end: `st` is what its _start call
    // returned, `cont` resumes it (the _cont call) with the socket events
    // that happened. False when the deadline passed first; the operation has
    // then been aborted and the connection closed.
    template <class Cont>
    asio::awaitable<bool> finish(int st, Cont cont, Deadline deadline) {
        while (st) {
            const int ready = co_await wait_status(st, deadline);
            if (ready < 0) {
                abort_op(st, cont);
                co_return false;
            }
            st = cont(ready);
        }
        co_return true;
    }

    // Socket events the library asked for -> the events that happened (to
    // pass to _cont), or -1 when the deadline passed first.
    asio::awaitable<int> wait_status(int st, Deadline deadline) {
        const int fd = mysql_get_socket(m_);
        if (fd < 0 || fd != sock_.watched()) {
            if (!sock_.watch(fd)) co_return -1;
        }
        Deadline until = deadline;
        bool lib_timeout = false;
        if (st & MYSQL_WAIT_TIMEOUT) {
            const auto t = Clock::now() + std::chrono::seconds(mysql_get_timeout_value(m_));
            if (t < deadline) {
                until = t;
                lib_timeout = true;
            }
        }
        const bool r = st & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT);
        const bool w = st & MYSQL_WAIT_WRITE;
        if (!r && !w) {
            asio::steady_timer t(sock_.get_executor(), until);
            asio::error_code ec;
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            co_return lib_timeout ? MYSQL_WAIT_TIMEOUT : -1;
        }
        const int got = co_await sock_.wait(r, w, until);
        if (got == 0) co_return lib_timeout ? MYSQL_WAIT_TIMEOUT : -1;
        if (got < 0) co_return st & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);  // let the library see the error
        co_return got == 1 ? MYSQL_WAIT_READ : MYSQL_WAIT_WRITE;
    }

    // A deadline passed mid-operation: break the socket so that the pending
    // operation fails at once, and run it to its end (the library forbids
    // closing a handle with an operation suspended). `cont` resumes it.
    template <class Cont>
    void abort_op(int st, Cont cont) {
        break_socket(mysql_get_socket(m_));
        ok_ = false;
        for (int i = 0; st && i < kAbortSteps; ++i) st = cont(st & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_TIMEOUT));
        if (st) {
            // Still suspended: leak the handle and its statements rather than
            // free them under the library.
            m_ = nullptr;
            owned_.clear();
        }
        close();
    }

    QueryResult failed() { return failed(mysql_errno(m_), mysql_error(m_)); }

    // The QueryResult for the error `code` with the library's `text`, from
    // the connection or one of its statements.
    QueryResult failed(unsigned code, const std::string& text) {
        QueryResult r;
        r.error = text + " (" + std::to_string(code) + ")";
        if (code == kIllegalMix2 || code == kIllegalMix3 || code == kIllegalMixN) {
            // A value that the column's character set cannot hold (an emoji
            // against PostfixAdmin's latin1 columns) can equal no row.
            log::debug("mysql: {}; treated as no match", log::safe(r.error, 200));
            r.status = QueryResult::Status::Ok;
            r.error.clear();
            return r;
        }
        // Client-side errors (2000-2999) mean the connection is gone.
        if (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR) {
            r.status = QueryResult::Status::ConnectionLost;
            ok_ = false;
            close();
        } else {
            r.status = QueryResult::Status::QueryError;
        }
        return r;
    }

    LibrarySocket sock_;
    ConnectSettings settings_;
    MYSQL* m_ = nullptr;
    bool ok_ = false;
    // Statements of this connection: every handle made (freed at close),
    // the prepared ones by text, and texts the server would not prepare.
    std::vector<MYSQL_STMT*> owned_;
    std::unordered_map<std::string, MYSQL_STMT*> prepared_;
    std::unordered_set<std::string> unpreparable_;
    MYSQL_STMT* spare_ = nullptr;  // made, not prepared: the next prepare uses it
};

}  // namespace

std::unique_ptr<Connection> make_mysql_connection(asio::any_io_executor ex, const ConnectSettings& settings) {
    return std::make_unique<MysqlConnection>(ex, settings);
}

}  // namespace postern::backend::sql
