// auth-master / auth-userdb protocol, server side (shared reference
// auth-protocol.md §4): the request parameters of USER and PASS. Sans-I/O.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "protocol/auth_client.hpp"

namespace postern::protocol {

// The key[=value] parameters of a split auth-master command line, from
// fields[first] on (USER and PASS: first = 3).
RequestParams parse_master_params(const std::vector<std::string>& fields, std::size_t first);

}  // namespace postern::protocol
