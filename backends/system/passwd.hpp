// passwd userdb: the system's users through NSS (getpwnam_r), answering uid,
// gid, home and system_groups_user. NSS may block (files, LDAP, sssd), so
// every call runs on the blocking pool.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Userdb> make_passwd_userdb(const config::Section& s, Services& services);

namespace system_db {

struct PwEntry {
    std::string name;
    unsigned long uid = 0, gid = 0;
    std::string home;
};

struct PwLookup {
    enum class Status { Found, NotFound, Error } status = Status::Error;
    PwEntry entry;
    std::string error;
};

// Blocking: call only on the blocking pool (or in tests).
PwLookup getpw(const std::string& name);
// Blocking: the user names of the system database, in NSS order, at most
// `max` of them.
std::vector<std::string> all_user_names(std::size_t max);

}  // namespace system_db
}  // namespace postern::backend
