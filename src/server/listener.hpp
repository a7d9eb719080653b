// Listeners: bind unix or TCP sockets (as root, before privileges are
// dropped), give unix sockets their configured owner and mode with no window
// where they are more open, and accept connections into sessions.
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <asio/basic_socket_acceptor.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <memory>
#include <vector>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::server {

// Default connection limit per listener when the config gives none.
inline constexpr long long kDefaultMaxConnections = 20000;

class Listener {
public:
    using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
    Listener(Acceptor acceptor, const config::Listener& cfg) : acceptor_(std::move(acceptor)), cfg_(cfg) {}
    void start(auth::Engine& engine);
    void stop();
    const config::Listener& config() const { return cfg_; }

private:
    asio::awaitable<void> accept_loop(auth::Engine& engine);
    Acceptor acceptor_;
    const config::Listener& cfg_;
    std::shared_ptr<const void> slot_ = std::make_shared<char>(0);
};

// Binds every configured listener; an error names the listener.
Result<std::vector<std::unique_ptr<Listener>>> bind_all(asio::io_context& io, const config::Config& cfg);

}  // namespace postern::server
