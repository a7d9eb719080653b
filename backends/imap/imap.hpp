// imap passdb: checks a password by logging into an IMAP server with it, as
// Cyrus saslauthd's rimap does. Verify only (no credentials, no lookups).
//
// postern.conf:
//   [[passdb]]
//   driver = "imap"
//   host = "imap.example.com"   # name (resolved asynchronously) or IP literal
//   port = 143                  # default 143, 993 with tls = "implicit"
//   tls = "starttls"            # "starttls", "implicit" or "none"
//   ca_file = "/etc/ssl/ca.pem" # default: the system store
//   verify_cert = true          # chain and name (tls_name, else host)
//   tls_name = "imap.example.com"
//   auth = "login"              # "login" (LOGIN) or "plain" (AUTHENTICATE PLAIN)
//   username = "%u"             # %-template of the name sent
//   timeout = "10s"             # per login: waiting for a slot, connect, TLS, answer
//   max_connections = 4         # logins in flight to the server at once
//
// Each login uses a fresh connection on the event loop (Asio TCP, asio::ssl)
// and ends with LOGOUT. Tagged OK is Ok, tagged NO is Mismatch, anything else
// (unreachable, TLS failure, BYE, BAD, timeout, malformed answer) TempFail.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_imap_passdb(const config::Section& s, Services& services);

}  // namespace postern::backend
