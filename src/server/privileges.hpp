// Dropping root after start-up: supplementary groups, gid, uid, then a check
// that root cannot be regained.
#pragma once

#include <string>

#include "util/result.hpp"

namespace postern::server {

// user empty: keep the current identity. group empty: the user's primary group.
Result<void> drop_privileges(const std::string& user, const std::string& group);

}  // namespace postern::server
