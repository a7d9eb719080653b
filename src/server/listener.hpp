// Listeners: bind unix or TCP sockets (as root, before privileges are
// dropped), give unix sockets their configured owner and mode with no window
// where they are more open, or take the sockets systemd passed (socket
// activation), and accept connections into sessions.
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
#include "util/systemd.hpp"

namespace postern::server {

// Default connection limit per listener when the config gives none.
inline constexpr long long kDefaultMaxConnections = 20000;

class Listener {
public:
    using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
    // passed: the socket came from systemd, which owns its file (mode, owner,
    // and removal are systemd's).
    Listener(Acceptor acceptor, const config::Listener& cfg, bool passed = false)
        : acceptor_(std::move(acceptor)), cfg_(cfg), passed_(passed) {}
    void start(auth::Engine& engine);
    // Closes the socket; removes a unix socket file posternd created itself.
    void stop();
    const config::Listener& config() const { return cfg_; }
    // Connections open now (each session holds a copy of slot_).
    long long open_connections() const { return slot_.use_count() - 1; }
    bool passed() const { return passed_; }

private:
    asio::awaitable<void> accept_loop(auth::Engine& engine);
    Acceptor acceptor_;
    const config::Listener& cfg_;
    bool passed_ = false;
    std::shared_ptr<const void> slot_ = std::make_shared<char>(0);
};

// Sets up every configured listener, in config order. A socket systemd passed
// serves the listener whose name equals its FileDescriptorName=, else the one
// bound to the same unix path or TCP address; the listeners left over are
// bound here. A passed socket that matches no listener (or a second one for
// the same listener) is logged and closed; one that matches but is not a
// listening stream socket of the listener's type is an error. Every passed
// descriptor is owned (kept or closed) once this returns. An error names the
// listener.
Result<std::vector<std::unique_ptr<Listener>>> bind_all(asio::io_context& io, const config::Config& cfg,
                                                         std::vector<systemd::PassedFd> passed = {});

}  // namespace postern::server
