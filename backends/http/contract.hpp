// The http driver's wire contract, without I/O: the JSON request postern
// POSTs and the JSON answer it reads (documented in postern.conf(5), HTTP
// DRIVER, and contrib/http-auth-server.py).
//
// Request (Content-Type: application/json), one object:
//   "request":        "verify" (passdb, with the password), "lookup" (passdb
//                     without a password: credentials for challenge-response
//                     mechanisms and auth-master PASS) or "userdb"
//   "user", "original_user", "service", "mechanism",
//   "local_ip", "remote_ip", "local_port", "remote_port": strings ("" when unknown)
//   "secured":        true when the client connection is TLS or local
//   "password":       "verify" only; never in "lookup" or "userdb"
// Answer: one object, in a 2xx response or in a 4xx response's body:
//   "result":   "ok" | "fail" (wrong password; no such user) | "unknown"
//               (no such user) | "tempfail" (try again later)
//   "user":     the canonical name when it differs (rename)
//   "password": "lookup" answers: the stored password ("{SCHEME}..." or in
//               the passdb's default_scheme)
//   "nologin":  true: the password is right but the user may not log in
//   "reason":   text for the client with nologin or fail
//   "fields":   object of extra fields (passdb: "userdb_*" keys are
//               prefetched userdb fields; userdb: the user's fields, e.g.
//               home, uid, gid, mail, quota_rule). Values: string, number
//               or true (false and null leave the field out).
// Anything else — a 3xx or 5xx status, a 4xx without a readable answer, a
// body that is not such an object, an unknown "result" — is a temporary
// failure, never a wrong password.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/params.hpp"
#include "auth/request_info.hpp"
#include "util/secret.hpp"

namespace postern::backend::http_contract {

enum class Kind { Verify, Lookup, Userdb };
std::string_view to_string(Kind k);

// Whether the request can be sent as JSON at all: names and the password must
// be UTF-8 (JSON strings are). When not, nothing is sent and the caller
// answers as for a user that does not exist.
bool sendable(const auth::RequestInfo& req, const Secret* password);

// The request body; `password` only with Kind::Verify. Held in a Secret
// because it may carry the password.
Secret make_request(Kind kind, const auth::RequestInfo& req, const Secret* password);

enum class Answer { Ok, Fail, Unknown, TempFail };

struct Reply {
    Answer answer = Answer::TempFail;
    std::string user;                     // rename, or ""
    std::optional<std::string> password;  // stored password (lookup answers); never logged
    bool nologin = false;
    std::string reason;
    auth::Fields fields;                  // passdb extra or userdb fields, prefix kept
    std::string detail;                   // operator text: why TempFail (no body content)
};

// The answer carried by an HTTP response with this status and body.
Reply parse_reply(long status, std::string_view body);

}  // namespace postern::backend::http_contract
