// HTTP(S) client on the event loop: libcurl's multi-socket interface
// (curl_multi_socket_action) driven by Asio. One multi handle per io_context
// (HttpClient::shared), so connections to a server are reused across
// requests; no blocking call on the loop and no thread per request (name
// resolution is libcurl's own asynchronous resolver; give IP literals or a
// unix socket to avoid it).
//
// Threading: an HttpClient belongs to its io_context's one thread; perform()
// must be awaited there.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/secret.hpp"

namespace postern::http {

// A response body larger than this is refused unless a request sets its own cap.
constexpr std::size_t kDefaultMaxBody = 64 * 1024;

struct Request {
    std::string url;                   // http:// or https:// (other schemes are refused)
    std::string method = "POST";       // POST, PUT or GET (GET sends no body)
    std::vector<std::string> headers;  // "Name: value"; may hold a token: never logged
    Secret body;                       // may hold a password: wiped, never logged
    std::string unix_socket;           // when set, connect here instead of the URL's host
    std::string ca_file;               // https: trust these CAs instead of the system's
    std::string client_cert;           // https: PEM client certificate ...
    std::string client_key;            // ... and its key (default: in the certificate file)
    bool verify_peer = true;           // https: chain and host name
    std::chrono::milliseconds timeout{10000};         // the whole transfer
    std::chrono::milliseconds connect_timeout{5000};  // TCP (and TLS) connect
    std::size_t max_body = kDefaultMaxBody;
};

// How a transfer ended. Only Ok carries an HTTP answer (any status, redirects
// not followed); ConnectFailed means nothing was sent, so it alone may be
// retried without the server having seen the request.
enum class Outcome { Ok, ConnectFailed, Timeout, TooLarge, TlsFailed, Failed, Cancelled };
std::string_view to_string(Outcome o);

struct Response {
    Outcome outcome = Outcome::Failed;
    long status = 0;     // HTTP status when Ok
    std::string body;    // at most Request::max_body bytes
    std::string cache_control;  // the Cache-Control header when Ok ("" = none)
    std::string error;   // operator text when not Ok (libcurl's message; no secrets)
};

// Process-wide figures of every client (the metrics endpoint).
struct Stats {
    std::size_t sockets = 0;              // connections the clients' loops watch now
    std::uint64_t transfers = 0;          // transfers finished (any outcome)
    std::uint64_t new_connections = 0;    // connections opened (not reused from the cache)
    std::uint64_t connect_failures = 0;   // transfers that reached no server
};
Stats stats();

class HttpClient : public std::enable_shared_from_this<HttpClient> {
public:
    // The client of the io_context behind `ex`, made on first use and shared
    // while anyone holds it.
    static std::shared_ptr<HttpClient> shared(const asio::any_io_executor& ex);

    explicit HttpClient(asio::any_io_executor ex);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // One transfer. Ends by the request's timeout at the latest; a
    // cancellation (with_deadline) ends it at once with Outcome::Cancelled.
    asio::awaitable<Response> perform(Request request);

    // Transfers in flight and sockets watched (tests).
    std::size_t transfers() const;
    std::size_t sockets() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;  // shared: pending Asio handlers hold it weakly
};

}  // namespace postern::http
