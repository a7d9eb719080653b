// One connection to an LDAP server over libldap (OpenLDAP 2.5), and the pool
// of them a dovecot-ldap.conf.ext gets: URIs tried in turn, reconnect with
// back-off, a per-operation deadline, temp-fail while no server answers.
//
// Operations use libldap's asynchronous calls (ldap_search_ext,
// ldap_sasl_bind) and collect answers with ldap_result and a zero timeout,
// waiting for the connection's descriptor (a dup of LDAP_OPT_DESC) to become
// readable in Asio: the event loop never blocks on the server.
//
// Threading: event loop only, except the connect step (see connect()).
// At most one operation per connection at a time (the pool guarantees it).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "backends/ldap/entry.hpp"
#include "backends/ldap/ldap_config.hpp"
#include "util/blocking_pool.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"
#include "util/secret.hpp"

typedef struct ldap LDAP;

namespace postern::backend::ldap {

using Deadline = Clock::time_point;

struct OpResult {
    enum class Status {
        Ok,           // the server answered; `code` is its result code (0 = success)
        Lost,         // the connection broke; it has been dropped
        Timeout,      // the deadline passed; the connection has been dropped
        Unavailable,  // no connection could be had (every server down, or none free in time)
    };
    Status status = Status::Lost;
    int code = -1;       // LDAP result code when Ok (LDAP_SUCCESS, LDAP_INVALID_CREDENTIALS...)
    std::string error;   // operator text (server diagnostics; sanitise before logging)
    std::vector<Entry> entries;
    std::string cookie;  // paged results: the server's cookie for the next page ("" = done)

    bool ok() const { return status == Status::Ok && code == 0; }
    bool unavailable() const { return status != Status::Ok; }
};

struct SearchRequest {
    std::string base;
    std::string filter;
    std::vector<std::string> attrs;  // empty: no attributes ("1.1"), the DN only
    int size_limit = 0;              // 0 = the server's
    unsigned page_size = 0;          // > 0: RFC 2696 paged results
    std::string cookie;              // paged results: from the previous page
};

class Connection {
public:
    explicit Connection(asio::any_io_executor ex);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Opens `uri` with the file's options (protocol version, timeouts, TLS).
    // libldap has no non-blocking StartTLS nor TLS handshake for ldaps, so
    // this step (ldap_initialize, ldap_connect, ldap_start_tls_s) runs on
    // the blocking pool, bounded by LDAP_OPT_NETWORK_TIMEOUT/LDAP_OPT_TIMEOUT
    // set to what is left of the deadline; everything after it is on the loop.
    asio::awaitable<Result<void>> connect(BlockingPool& pool, std::shared_ptr<const LdapFile> file, std::string uri,
                                          Deadline deadline);
    // A simple bind (LDAP_SASL_SIMPLE). Status Ok with the server's code.
    asio::awaitable<OpResult> bind(std::string dn, std::shared_ptr<const Secret> password, Deadline deadline);
    asio::awaitable<OpResult> search(SearchRequest req, Scope scope, Deadline deadline);

    bool connected() const { return ld_ != nullptr; }
    void close();

private:
    asio::awaitable<OpResult> collect(int msgid, Deadline deadline);
    OpResult drop(OpResult::Status status, std::string error);

    asio::posix::stream_descriptor sd_;
    LDAP* ld_ = nullptr;
};

struct PoolSettings {
    unsigned size = 5;                           // connections
    std::chrono::milliseconds timeout{5000};     // per operation, waiting for a connection included
};

// A pool of connections to the servers of one file. Lookup pools bind as the
// file's dn/dnpass after connecting; bind pools (auth_bind) stay anonymous
// until a user's bind.
class Pool {
public:
    enum class Role { Lookup, Bind };
    Pool(asio::any_io_executor ex, BlockingPool* blocking, std::shared_ptr<const LdapFile> file, PoolSettings settings,
         Role role);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // One search (retried once on a fresh connection when the pooled one
    // turns out broken). Status Unavailable / Lost / Timeout: temp-fail.
    asio::awaitable<OpResult> search(SearchRequest req);
    // One bind as `dn` with `password`.
    asio::awaitable<OpResult> bind(std::string dn, std::shared_ptr<const Secret> password);
    // All pages of a paged search on one connection; `each` gets every
    // entry and returns false to stop. Each page has its own deadline.
    using EntrySink = std::function<asio::awaitable<bool>(Entry)>;
    asio::awaitable<OpResult> search_all(SearchRequest req, unsigned page_size, EntrySink each);

    const LdapFile& file() const { return *file_; }
    std::string describe() const;

private:
    struct Slot {
        std::unique_ptr<Connection> conn;
        bool busy = false;
    };
    asio::awaitable<Slot*> acquire(Deadline deadline);
    void release(Slot* s);
    void wake_one();
    void wake_all();
    asio::awaitable<bool> connect_slot(Slot* s, Deadline deadline);
    void note_down(const std::string& why);
    void note_up(const std::string& uri);

    asio::any_io_executor ex_;
    BlockingPool* blocking_;
    std::shared_ptr<const LdapFile> file_;
    PoolSettings settings_;
    Role role_;
    std::vector<Slot> slots_;
    std::list<asio::steady_timer*> waiters_;
    std::size_t next_uri_ = 0;  // the URI that worked last
    Clock::time_point retry_at_{};
    std::chrono::milliseconds backoff_{0};
    bool down_ = false;
    Clock::time_point down_since_{};
    unsigned connecting_ = 0;
};

}  // namespace postern::backend::ldap
