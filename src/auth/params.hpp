// What a request carries besides its mechanism data: key/value fields (passdb
// and userdb extra fields, reply fields) and the request parameters of an
// auth-client AUTH or an auth-master command (shared reference
// auth-protocol.md §3.3). Plain types: the wire codecs in protocol/ parse into
// them, backends and the engine read them, and none of them needs a codec.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace postern::auth {

using Fields = std::vector<std::pair<std::string, std::string>>;

// True if fields holds key (with or without a value).
inline bool has_field(const Fields& fields, std::string_view key) {
    for (const auto& [k, v] : fields)
        if (k == key) return true;
    return false;
}

// Request parameters that travel on AUTH (and on auth-master commands).
// Unknown parameters are kept in `extra` and otherwise ignored.
struct RequestParams {
    // service= (Dovecot 2.3, Postfix, Exim) or protocol= (Dovecot 2.4); when
    // a request carries both, service= wins (resolve_service).
    std::string service;
    std::string protocol;  // protocol= as sent
    std::string lip, rip, real_lip, real_rip;  // as sent; may be empty or not an IP
    std::string lport, rport, real_lport, real_rport;
    std::string local_name, session, client_id, cert_username;
    bool secured = false;
    std::string secured_value;  // "tls", "" ...
    bool valid_client_cert = false;
    bool no_penalty = false;
    bool nologin = false;
    bool debug = false;
    bool final_resp_ok = false;
    Fields extra;

    // After parsing: the service is service= if given, else protocol=.
    void resolve_service() {
        if (service.empty()) service = protocol;
    }
};

}  // namespace postern::auth
