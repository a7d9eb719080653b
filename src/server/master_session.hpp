// auth-master / auth-userdb connection (shared reference auth-protocol.md §4):
// VERSION/SPID handshake, USER, REQUEST (login continuation, master role
// only), CACHE-FLUSH; commands are served one at a time per connection.
#pragma once

#include <memory>
#include <string>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "server/auth_client_session.hpp"

namespace postern::server {

// Master/userdb socket input limit (Dovecot's MAX_INBUF_SIZE).
inline constexpr std::size_t kMasterMaxLine = 1024;

void start_master_session(Socket socket, auth::Engine& engine, const config::Listener& listener, std::string peer,
                          std::shared_ptr<const void> slot);

}  // namespace postern::server
