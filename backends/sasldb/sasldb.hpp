// sasldb passdb (verify_plain and lookup_credentials from the cleartext
// userPassword) and its UserStore for `postern user`.
#pragma once

#include <memory>

#include "backends/backend.hpp"
#include "backends/user_store.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_sasldb_passdb(const config::Section& s, Services& services);
std::unique_ptr<UserStore> make_sasldb_store(const config::Section& s);

}  // namespace postern::backend
