// A saslauthd-protocol connection (shared reference auth-protocol.md §5): one
// request, answered "OK" or "NO" through the engine's passdb chain, then close.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "server/auth_client_session.hpp"

namespace postern::server {

// A client must send its whole request within auth.request_timeout, capped
// here: libsasl writes the request at once, so waiting long only helps a
// client that holds connections open.
inline constexpr auto kSaslauthdMaxReadTime = std::chrono::seconds(30);

void start_saslauthd_session(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener, std::string peer,
                             std::shared_ptr<const void> slot);

}  // namespace postern::server
