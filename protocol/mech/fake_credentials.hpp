// Stand-in credentials for users the passdb does not know, so challenge-
// response mechanisms run the same steps for them as for a wrong password.
#pragma once

#include <cstddef>
#include <string_view>

#include "util/secret.hpp"

namespace postern::mech {

// `n` bytes that look random, fixed for (label, user) for the life of the
// process (a keyed hash under a key drawn at first use), so repeated attempts
// for an unknown user see the same salt as a real one would.
Secret fake_credential(std::string_view label, std::string_view user, std::size_t n);

}  // namespace postern::mech
