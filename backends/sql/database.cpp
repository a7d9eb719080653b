// Connection pool with reconnect and back-off.
#include "backends/sql/database.hpp"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <map>

#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "util/log.hpp"

namespace postern::backend::sql {

namespace {

// Back-off between connect attempts while every host refuses: short at
// first so that a restarted server is used again quickly, capped so that a
// long outage costs one refused connect per few seconds.
constexpr std::chrono::milliseconds kBackoffFirst{250};
constexpr std::chrono::milliseconds kBackoffMax{2000};

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

const char* driver_name(DriverKind k) { return k == DriverKind::Mysql ? "mysql" : "pgsql"; }

}  // namespace

Database::Database(asio::any_io_executor ex, SqlFile file, PoolSettings pool)
    : ex_(std::move(ex)), file_(std::move(file)), pool_(pool), slots_(pool.size) {}

Database::~Database() = default;

std::string Database::describe() const {
    std::string hosts;
    for (const auto& h : file_.connect.hosts) {
        if (!hosts.empty()) hosts += ',';
        hosts += h.name.empty() ? "(default socket)" : h.name;
    }
    std::string s = std::string(driver_name(file_.driver)) + " " + hosts;
    if (!file_.connect.port.empty()) s += ":" + file_.connect.port;
    if (!file_.connect.dbname.empty()) s += "/" + file_.connect.dbname;
    return s;
}

void Database::note_down(const std::string& why) {
    if (!down_) {
        down_ = true;
        down_since_ = Clock::now();
        log::error("sql {}: database unreachable, answering temp-fail until it is back: {}", describe(), log::safe(why, 300));
    }
}

void Database::note_up(const std::string& host) {
    if (down_) {
        const double secs = std::chrono::duration<double>(Clock::now() - down_since_).count();
        log::info("sql {}: connected to {} again after {:.3f}s unavailable", describe(), log::safe(host), secs);
        down_ = false;
    } else {
        log::debug("sql {}: connected to {}", describe(), log::safe(host));
    }
}

asio::awaitable<std::string> Database::resolve(Host h) {
    // IP literals and sockets need no lookup. "localhost" means the default
    // unix socket to MySQL clients. Any other name is looked up here, by
    // Asio's resolver (off the loop), never inside the client library.
    if (h.is_socket || h.name.empty() || is_ip_literal(h.name)) co_return std::string();
    if (file_.driver == DriverKind::Mysql && h.name == "localhost") co_return std::string();
    asio::ip::tcp::resolver resolver(ex_);
    asio::error_code ec;
    auto results = co_await resolver.async_resolve(h.name, "", asio::redirect_error(asio::use_awaitable, ec));
    if (ec || results.empty()) co_return std::string("!") + (ec ? ec.message() : "no address");
    co_return results.begin()->endpoint().address().to_string();
}

asio::awaitable<bool> Database::connect_slot(Slot* s, Deadline deadline) {
    const auto& hosts = file_.connect.hosts;
    std::string last_error;
    for (std::size_t k = 0; k < hosts.size(); ++k) {
        const std::size_t idx = (next_host_ + k) % hosts.size();
        const Host host = hosts[idx];
        const std::string label = host.name.empty() ? std::string("default socket") : host.name;
        std::string address = co_await resolve(host);
        if (!address.empty() && address.front() == '!') {
            last_error = label + ": cannot resolve: " + address.substr(1);
            continue;
        }
        auto conn = file_.driver == DriverKind::Mysql ? make_mysql_connection(ex_, file_.connect)
                                                      : make_pgsql_connection(ex_, file_.connect);
        if (!conn) {
            last_error = std::string(driver_name(file_.driver)) + " support is not compiled in";
            break;
        }
        const Deadline until = std::min(deadline, Clock::now() + file_.connect.connect_timeout);
        auto r = co_await conn->connect(host, address, until);
        if (r) {
            s->conn = std::move(conn);
            next_host_ = idx;
            backoff_ = std::chrono::milliseconds(0);
            note_up(label);
            co_return true;
        }
        last_error = label + ": " + r.error().message;
        if (hosts.size() > 1) log::warning("sql {}: cannot connect to {}", describe(), log::safe(last_error, 300));
        if (Clock::now() >= deadline) break;
    }
    // Attempts that fail together (several requests at start-up) count once.
    if (Clock::now() >= retry_at_) {
        backoff_ = backoff_.count() == 0 ? kBackoffFirst : std::min(kBackoffMax, backoff_ * 2);
        retry_at_ = Clock::now() + backoff_;
    }
    note_down(last_error);
    co_return false;
}

void Database::wake_one() {
    if (waiters_.empty()) return;
    auto* w = waiters_.front();
    waiters_.pop_front();
    w->cancel();
}

void Database::wake_all() {
    while (!waiters_.empty()) wake_one();
}

asio::awaitable<Database::Slot*> Database::acquire(Deadline deadline) {
    auto open = [](const Slot& s) { return s.conn && s.conn->connected(); };
    for (;;) {
        // An idle open connection first.
        for (auto& s : slots_) {
            if (!s.busy && open(s)) {
                s.busy = true;
                co_return &s;
            }
        }
        // An empty slot: open a connection in it (one attempt at a time while down).
        const bool may_connect = !down_ || Clock::now() >= retry_at_;
        if (may_connect && (!down_ || connecting_ == 0)) {
            auto empty = std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return !s.busy && !open(s); });
            if (empty != slots_.end()) {
                Slot* s = &*empty;
                s->busy = true;
                s->conn.reset();
                ++connecting_;
                const bool ok = co_await connect_slot(s, deadline);
                --connecting_;
                if (ok) co_return s;
                s->busy = false;
                wake_all();  // the others learn that the server is down
                // Open connections, or attempts still under way, may still
                // serve (only new ones refused, e.g. max_connections): wait
                // for one; else temp-fail now.
                if (connecting_ == 0 && std::none_of(slots_.begin(), slots_.end(), open)) co_return nullptr;
                continue;
            }
        }
        // Nothing in use that could come free: down and in back-off.
        if (std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; })) co_return nullptr;
        if (Clock::now() >= deadline) co_return nullptr;
        // Wait for a connection to come free (or the attempt in progress to end).
        asio::steady_timer t(ex_, deadline);
        waiters_.push_back(&t);
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        waiters_.remove(&t);
        if (!ec && Clock::now() >= deadline) co_return nullptr;
    }
}

void Database::release(Slot* s) {
    s->busy = false;
    wake_one();
}

asio::awaitable<QueryResult> Database::run(std::string tmpl, util::VarLookup vars, RowSink sink) {
    QueryResult r;
    auto marked = mark(tmpl, vars);
    if (!marked) {
        r.status = QueryResult::Status::QueryError;
        r.error = marked.error().message;
        co_return r;
    }
    const Deadline deadline = Clock::now() + pool_.query_timeout;
    // Only a SELECT is sent again: a write may have been applied before the
    // connection broke.
    const auto first = tmpl.find_first_not_of(" \t\r\n(");
    const bool retry_safe = first != std::string::npos && tmpl.size() - first >= 6 &&
                            ::strncasecmp(tmpl.c_str() + first, "select", 6) == 0;
    // A pooled connection may have been closed by the server while idle
    // (restart, wait_timeout): one more try on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        Slot* s = co_await acquire(deadline);
        if (!s) {
            r.status = Clock::now() >= deadline ? QueryResult::Status::Timeout : QueryResult::Status::ConnectionLost;
            r.error = Clock::now() >= deadline ? "no connection free before the query timeout" : "database unavailable";
            co_return r;
        }
        r = co_await s->conn->query(*marked, deadline, sink);
        if (r.status == QueryResult::Status::ConnectionLost || r.status == QueryResult::Status::Timeout) s->conn.reset();
        release(s);
        if (r.status == QueryResult::Status::ConnectionLost) {
            log::warning("sql {}: connection lost: {}", describe(), log::safe(r.error, 300));
            // The idle ones most likely went with it (server restart).
            for (auto& other : slots_)
                if (!other.busy) other.conn.reset();
            if (!sink && retry_safe && Clock::now() < deadline) continue;
        }
        if (r.status == QueryResult::Status::Timeout)
            log::error("sql {}: query timed out after {} ms; connection dropped", describe(), pool_.query_timeout.count());
        co_return r;
    }
    co_return r;
}

std::shared_ptr<Database> shared_database(asio::any_io_executor ex, const SqlFile& file, PoolSettings pool) {
    static std::map<std::string, std::weak_ptr<Database>> dbs;
    const std::string key = file.path + "\n" + std::to_string(pool.size) + "\n" + std::to_string(pool.query_timeout.count());
    if (auto d = dbs[key].lock()) return d;
    auto d = std::make_shared<Database>(ex, file, pool);
    dbs[key] = d;
    return d;
}

}  // namespace postern::backend::sql
