// The [metrics] endpoint: a minimal HTTP/1.0 responder on the event loop
// that answers GET /metrics with the Prometheus text exposition of
// auth::Metrics (prometheus-cpp's own server, civetweb, would add its own
// threads touching loop state; this one never blocks the loop: every read
// and write has a deadline, one request per connection, bounded sizes).
//
// Answers: 200 with the metrics; 400 for a request that does not parse
// (request line, header lines, over kMaxRequest bytes); 404 for another
// path; 405 for another method; 403 for a TCP peer outside `allow`.
// The body holds counts and labels from a fixed vocabulary only: never a
// user name, a password or a hash.
#pragma once

#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <vector>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "server/listener.hpp"
#include "util/net.hpp"
#include "util/result.hpp"

namespace postern::server {

// Largest request head read (request line and headers).
inline constexpr std::size_t kMaxMetricsRequest = 8192;
// The HTTP status for a request head (up to and without the blank line):
// 200 GET /metrics, 404 another path, 405 another method, 400 malformed.
int metrics_request_status(std::string_view head);

class MetricsServer {
public:
    using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
    // Binds the socket (as root, before privileges are dropped); an error
    // names the [metrics] listen address.
    static Result<std::unique_ptr<MetricsServer>> bind(asio::io_context& io, const config::MetricsSettings& cfg);
    // Serves until stop(). `engine` and `listeners` (for connection counts)
    // must outlive it; a reload changes what they hold, not where they are.
    void start(const auth::CurrentEngine& engine, const std::vector<std::unique_ptr<Listener>>& listeners);
    void stop();
    std::string describe() const { return cfg_.listener.describe(); }

    MetricsServer(Acceptor acceptor, const config::MetricsSettings& cfg);
    ~MetricsServer() { stop(); }

private:
    asio::awaitable<void> accept_loop();
    friend struct MetricsConnection;
    std::string scrape();
    bool allowed(const asio::generic::stream_protocol::endpoint& peer) const;

    Acceptor acceptor_;
    const config::MetricsSettings& cfg_;
    std::vector<Network> allow_;
    const auth::CurrentEngine* engine_ = nullptr;
    const std::vector<std::unique_ptr<Listener>>* listeners_ = nullptr;
    std::shared_ptr<const void> slot_ = std::make_shared<char>(0);
};

}  // namespace postern::server
