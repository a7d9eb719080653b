// One connection to an LDAP server over libldap (OpenLDAP 2.5), and the pool
// of them a dovecot-ldap.conf.ext gets: URIs tried in turn, reconnect with
// back-off, a per-operation deadline, temp-fail while no server answers.
//
// Operations use libldap's asynchronous calls (ldap_search_ext,
// ldap_sasl_bind, ldap_modify_ext) and wait for the answer to their message
// id. One reader per connection, running while answers are awaited, waits
// for the descriptor (a dup of LDAP_OPT_DESC) to become readable in Asio,
// collects every complete answer with ldap_result(LDAP_RES_ANY,
// LDAP_MSG_ALL, zero timeout) and hands each to the request waiting for its
// message id: the event loop never blocks on the server, and one connection
// carries several requests at once (lookup pools; bind pools one at a time,
// as a bind changes the connection's identity). A request past its deadline
// abandons its message id alone; a broken connection fails every request on
// it (Status::Lost) and is closed. Requests made in one turn of the event
// loop leave in one write: a layer on top of libldap's Sockbuf holds them
// until a flush posted behind the handlers that are ready now.
//
// Threading: event loop only, except the connect step (see connect()).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/ldap/entry.hpp"
#include "backends/pool.hpp"
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
        Lost,         // the connection broke; it has been closed
        Timeout,      // the deadline passed; the request was abandoned
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

// One change of an LDAP modify (RFC 4511 section 4.6).
struct Modification {
    enum class Op { Add, Delete, Replace };
    Op op = Op::Replace;
    std::string attr;
    // Delete with values removes exactly these and fails (noSuchAttribute)
    // when one is not there: with an Add after it, a compare-and-set.
    std::vector<std::string> values;
};

// Messages sent and the writes that carried them, summed over a pool's
// connections (old and new) for the metrics.
struct WireCounts {
    std::uint64_t messages = 0;
    std::uint64_t writes = 0;
};

class Connection {
public:
    // `counts`, when given, is where this connection adds what it sends.
    explicit Connection(asio::any_io_executor ex, std::shared_ptr<WireCounts> counts = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Opens `uri` with the file's options (protocol version, timeouts, TLS).
    // libldap has no non-blocking StartTLS nor TLS handshake for ldaps, so
    // this step (ldap_initialize, ldap_connect, ldap_start_tls_s) runs on
    // the blocking pool, bounded by LDAP_OPT_NETWORK_TIMEOUT/LDAP_OPT_TIMEOUT
    // set to what is left of the deadline; everything after it is on the loop.
    // With `sasl_bind`, the file's SASL bind (ldap_sasl_interactive_bind_s,
    // which has no asynchronous form) is part of the same step.
    asio::awaitable<Result<void>> connect(BlockingPool& pool, std::shared_ptr<const LdapFile> file, std::string uri,
                                          Deadline deadline, bool sasl_bind = false);
    // A simple bind (LDAP_SASL_SIMPLE). Status Ok with the server's code.
    // Nothing else may be outstanding on the connection meanwhile.
    asio::awaitable<OpResult> bind(std::string dn, std::shared_ptr<const Secret> password, Deadline deadline);
    asio::awaitable<OpResult> search(SearchRequest req, Scope scope, Deadline deadline);
    // The changes in one modify request, applied by the server all or none.
    asio::awaitable<OpResult> modify(std::string dn, std::vector<Modification> mods, Deadline deadline);

    bool connected() const;
    // Requests sent in this turn of the event loop wait for their common
    // write: one more sent now shares it (the pool's first choice).
    bool gathering() const;
    // True the first time it is asked after the connection broke: the
    // requests that were on it all see Lost, the pool counts one loss.
    bool first_to_see_loss();
    void close();

    // The libldap handle, the descriptor and the requests awaiting answers;
    // shared with the reader and the requests' coroutines, so that closing
    // (or destroying) the Connection under them is safe.
    struct Core;

private:
    std::shared_ptr<Core> core_;
    std::shared_ptr<WireCounts> counts_;
};

struct PoolSettings {
    unsigned size = 5;                           // connections
    unsigned pipeline = 8;                       // lookup pools: requests outstanding per connection
    std::chrono::milliseconds timeout{5000};     // per operation, waiting for a connection included
};

// A pool of connections to the servers of one file (backends/pool.hpp: URIs
// tried in turn, back-off, waiting for a free connection). Lookup pools bind
// as the file's dn/dnpass after connecting and pipeline their searches and
// modifies; bind pools (auth_bind) stay anonymous until a user's bind and
// carry one bind at a time. Paged searches (search_all) have a connection
// to themselves.
class Pool final : public ConnectionPool<Connection> {
public:
    enum class Role { Lookup, Bind };
    Pool(asio::any_io_executor ex, BlockingPool* blocking, std::shared_ptr<const LdapFile> file, PoolSettings settings,
         Role role);
    ~Pool() override;

    // One search (retried once on a fresh connection when the pooled one
    // turns out broken). Status Unavailable / Lost / Timeout: temp-fail.
    asio::awaitable<OpResult> search(SearchRequest req);
    // One bind as `dn` with `password`.
    asio::awaitable<OpResult> bind(std::string dn, std::shared_ptr<const Secret> password);
    // All pages of a paged search on one connection; `each` gets every
    // entry and returns false to stop. Each page has its own deadline.
    using EntrySink = std::function<asio::awaitable<bool>(Entry)>;
    asio::awaitable<OpResult> search_all(SearchRequest req, unsigned page_size, EntrySink each);
    // One modify as the pool's bind identity (lookup pools: dn/dnpass).
    // Never sent twice: it may have been applied before a connection broke.
    asio::awaitable<OpResult> modify(std::string dn, std::vector<Modification> mods);

    const LdapFile& file() const { return *file_; }
    std::string describe() const override;
    void add_stats(PoolStats& st) const override;

private:
    asio::awaitable<Opened> open(std::size_t index, Deadline deadline) override;
    // `op(connection, deadline)` on a pooled connection under the pool's
    // timeout (lookup pools: shared with up to `pipeline` others; bind pools:
    // alone); with `retry`, sent once more on a fresh connection when the
    // pooled one turns out broken (reads only: a write may have been applied).
    template <class Op>
    asio::awaitable<OpResult> run(Op op, const char* what, bool retry);

    BlockingPool* blocking_;
    std::shared_ptr<const LdapFile> file_;
    PoolSettings settings_;
    Role role_;
    std::shared_ptr<WireCounts> counts_ = std::make_shared<WireCounts>();
};

}  // namespace postern::backend::ldap
