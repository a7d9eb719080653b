// What a backend may know about the request it serves: the normalised user
// name, the protocol parameters and the mechanism. Immutable once a backend
// call starts; shared by pointer so coroutines never hold dangling references.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/params.hpp"

namespace postern::auth {

struct RequestInfo {
    std::string user;            // normalised login name (after username_format)
    std::string original_user;   // as the client sent it
    std::string mech;            // "PLAIN", "" for master lookups
    unsigned long client_pid = 0;
    RequestParams params;
    // userdb_* fields of the passdb that authenticated this request (prefetch);
    // empty for plain master lookups.
    Fields prefetch;
    // A passdb already vouched for the user (a REQUEST after a successful
    // AUTH): userdbs that would otherwise ask the passdbs whether the user
    // exists (static) need not.
    bool passdb_checked = false;

    // %-variable values by long name (see util/var_expand.hpp); the password is
    // never available here.
    std::optional<std::string> var(std::string_view name) const;
};

using RequestPtr = std::shared_ptr<const RequestInfo>;

}  // namespace postern::auth
