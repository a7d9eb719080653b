// Passdb extra fields that steer the server itself and are never sent to a
// client (auth-client OK/FAIL, auth-master PASS); shared reference backends.md §5.
#pragma once

#include <string_view>

namespace postern::auth {

inline bool internal_passdb_field(std::string_view k) {
    return k == "nopassword" || k == "nodelay" || k == "allow_nets" || k == "allow_real_nets" ||
           k == "password" || k == "password_noscheme" || k == "user" || k == "noauthenticate" || k == "pass" ||
           k == "skip";
}

}  // namespace postern::auth
