// The ldap backend's per-user operations, shared by the passdb/userdb (on
// the daemon's loop) and the user store (postern user, in the CLI): the one
// entry a filter finds for a user, and what a refused password write means.
#pragma once

#include <asio/awaitable.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/ldap/connection.hpp"
#include "util/var_expand.hpp"

namespace postern::backend::ldap {

// One search for one user: its entry (Ok), none (UnknownUser), or TempFail
// (server unavailable, the search refused, or more than one entry: never
// pick one of several; those are logged).
struct Found {
    PassStatus status = PassStatus::TempFail;
    Entry entry;
    std::string detail;
};

asio::awaitable<Found> find_one(std::shared_ptr<Pool> pool, std::string filter_tmpl, std::vector<std::string> attrs,
                                util::VarLookup vars, std::string user, const char* what);

// map_entry's warnings, one log line each.
void log_warnings(const Pool& pool, const std::string& user, const std::vector<std::string>& warnings);

// Why a password write (modify of `attr`) did not happen, for the operator:
// server unavailable, no write access for the file's dn, the value changed
// meanwhile (compare-and-set), the entry gone. Never holds a value.
std::string write_failure(const OpResult& r, const LdapFile& file, std::string_view attr);

}  // namespace postern::backend::ldap
