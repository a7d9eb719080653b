// The sql passdb and userdb (drivers mysql and pgsql, chosen by the settings
// file) and the PostfixAdmin user store for `postern user`.
//
// postern.conf:
//   [[passdb]] / [[userdb]]
//   driver = "sql"
//   args = "/etc/dovecot/dovecot-sql.conf.ext"   # Dovecot's file, unchanged
//   pool_size = 5          # connections (default: the file's maxconns, else 5)
//   query_timeout = "5s"   # per query, waiting for a connection included
#pragma once

#include <memory>

#include "backends/backend.hpp"
#include "backends/user_store.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_sql_passdb(const config::Section& s, Services& services);
std::unique_ptr<Userdb> make_sql_userdb(const config::Section& s, Services& services);
std::unique_ptr<UserStore> make_sql_store(const config::Section& s);

}  // namespace postern::backend
