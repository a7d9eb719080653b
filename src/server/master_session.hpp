// auth-master / auth-userdb connection (shared reference auth-protocol.md §4):
// VERSION/SPID handshake, USER, PASS, LIST (streamed), REQUEST (login
// continuation) and CACHE-FLUSH. Commands are served one at a time per
// connection; the role of the listener decides which are allowed:
//   master: USER, PASS, LIST, REQUEST, CACHE-FLUSH
//   userdb: USER, LIST (what LDA/LMTP and `doveadm user` need); PASS,
//           REQUEST and CACHE-FLUSH answer FAIL.
// A userdb socket of mode exactly 0666 restricts peers that are neither its
// owner nor in its group: USER answers only for the peer's own uid, LIST fails.
#pragma once

#include <memory>
#include <string>

#include "auth/engine.hpp"
#include "config/config.hpp"
#include "protocol/auth_master.hpp"
#include "server/auth_client_session.hpp"

namespace postern::server {

using protocol::kMasterMaxLine;

// Whether a listener of this role serves the command (by wire name).
bool master_command_allowed(config::Role role, std::string_view command);

void start_master_session(Socket socket, auth::CurrentEngine& engine, const config::Listener& listener, std::string peer,
                          std::shared_ptr<const void> slot);

}  // namespace postern::server
