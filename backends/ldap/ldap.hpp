// The ldap passdb and userdb: Dovecot 2.3's dovecot-ldap.conf.ext read as it
// is, password lookups (userPassword verified with postern's schemes, so
// challenge-response mechanisms get credentials) or auth binds (auth_bind =
// yes: bind as the user's DN on a separate pool of bind connections), user
// lookups and paged iteration (doveadm user '*').
//
// postern.conf:
//   [[passdb]] / [[userdb]]
//   driver = "ldap"
//   args = "/etc/dovecot/dovecot-ldap.conf.ext"   # Dovecot's file, unchanged
//   pool_size = 5      # connections per pool (lookups; auth binds have their own)
//   timeout = "5s"     # per operation, waiting for a connection included
//   page_size = 500    # entries per page when iterating (RFC 2696)
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_ldap_passdb(const config::Section& s, Services& services);
std::unique_ptr<Userdb> make_ldap_userdb(const config::Section& s, Services& services);
// `postern user` on the passdb's directory (backends/ldap/store.cpp): passwd,
// show, list; add and del are refused.
class UserStore;
std::unique_ptr<UserStore> make_ldap_store(const config::Section& s);

}  // namespace postern::backend
