// http passdb and userdb: ask a web application (a mail panel's API) over
// HTTP(S) with the JSON contract of backends/http/contract.hpp.
//
// postern.conf:
//   [[passdb]]
//   driver = "http"
//   url = "https://panel.example.com/api/mail-auth"  # http:// or https://
//   unix_socket = "/run/panel/api.sock"  # connect here instead (url's path and Host still used)
//   method = "POST"                      # or "PUT"
//   headers = ["X-Panel: mail"]          # extra "Name: value" headers
//   bearer_token_file = "/etc/postern/panel.token"  # sent as "Authorization: Bearer <token>"
//   ca_file = "/etc/ssl/panel-ca.pem"    # default: the system store
//   client_cert = "/etc/postern/client.pem"  # TLS client certificate (PEM) ...
//   client_key = "/etc/postern/client.key"   # ... and its key (default: in client_cert)
//   verify_cert = true
//   timeout = "5s"                       # per request, waiting for a slot included
//   max_connections = 8                  # requests in flight at once (pool size)
//   retries = 1                          # again after a failed connect only
//   mode = "verify"                      # passdb: "verify" (the server checks the
//                                        # password) or "lookup" (the server returns
//                                        # the stored hash; postern checks it and
//                                        # challenge-response mechanisms work)
//   default_scheme = "CRYPT"             # lookup mode: for hashes without {SCHEME}
//   max_response = 65536                 # bytes
//
// A 5xx, a timeout, a failed connect (after the retries), TLS failures, a
// redirect and an unreadable answer are temporary failures, never a wrong
// password; a 4xx with a readable answer is that answer.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_http_passdb(const config::Section& s, Services& services);
std::unique_ptr<Userdb> make_http_userdb(const config::Section& s, Services& services);

}  // namespace postern::backend
