// Listeners: bind unix or TCP sockets (as root, before privileges are
// dropped), give unix sockets their configured owner and mode with no window
// where they are more open, or take the sockets systemd passed (socket
// activation), and accept connections into sessions. A reload keeps a
// listener whose socket is unchanged (same unix path or TCP address) and
// gives it the new settings for the connections it accepts next.
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
        : acceptor_(std::move(acceptor)), cfg_(std::make_shared<const config::Listener>(cfg)), passed_(passed) {}
    // Accepts until stop(); each connection is served by the engine current
    // when it asks. The listener must outlive the accept loop: after stop(),
    // keep it until the loop has turned (posternd keeps retired ones until
    // the next reload).
    void start(auth::CurrentEngine& engine);
    // Closes the socket; removes a unix socket file posternd created itself.
    void stop();
    // A reload kept this socket: new settings (limit, role, trusted) for the
    // connections accepted from now on; a unix socket's owner and mode are
    // applied at once. Connections already open keep the settings they came
    // with. An error (e.g. chown after privileges were dropped) is logged.
    void reconfigure(const config::Listener& cfg);
    const config::Listener& config() const { return *cfg_; }
    // Connections open now (each session holds a copy of slot_).
    long long open_connections() const { return slot_.use_count() - 1; }
    bool passed() const { return passed_; }

private:
    asio::awaitable<void> accept_loop(auth::CurrentEngine& engine);
    Acceptor acceptor_;
    // Each session holds the settings it was accepted under (with slot_).
    std::shared_ptr<const config::Listener> cfg_;
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
// Whether two listener settings name the same socket (unix path, or TCP
// host and port): a reload keeps such a socket open.
bool same_socket(const config::Listener& a, const config::Listener& b);
// Binds one listener (as bind_all does without passed sockets).
Result<std::unique_ptr<Listener>> bind_one(asio::io_context& io, const config::Listener& cfg);

Result<std::vector<std::unique_ptr<Listener>>> bind_all(asio::io_context& io, const config::Config& cfg,
                                                         std::vector<systemd::PassedFd> passed = {});

}  // namespace postern::server
