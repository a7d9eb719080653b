// Dovecot passwd-file format (shared reference backends.md §1):
//   user:password:uid:gid:(gecos):home:(shell):extra_fields
// Pure parser: text in, entries and per-line warnings out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/params.hpp"

namespace postern::backend::passwd_file {

struct Entry {
    std::string user;
    std::optional<std::string> password;  // absent: the line has no password field
    std::string uid, gid;                 // numeric strings, empty if not given
    std::string home;
    auth::Fields extra;               // passdb extra fields
    auth::Fields userdb;              // userdb_* fields (prefix removed)
    std::size_t line = 0;
};

struct ParseWarning {
    std::size_t line;
    std::string message;  // never contains the password field
};

struct Table {
    std::unordered_map<std::string, Entry> users;
    std::vector<std::string> order;  // user names in file order (iteration)
    std::vector<ParseWarning> warnings;
    // Names of the %-variables the entries' fields use (besides the user
    // name): the request inputs a cached answer depends on.
    std::vector<std::string> field_vars;
};

// Resolves a user or group name to a number; nullopt if unknown.
using IdResolver = std::optional<unsigned long> (*)(std::string_view name, bool group);
std::optional<unsigned long> resolve_system_id(std::string_view name, bool group);

Table parse(std::string_view text, IdResolver resolver = resolve_system_id);

// One line, for callers that edit files (the CLI); nullopt + warning if bad.
std::optional<Entry> parse_line(std::string_view line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                IdResolver resolver = resolve_system_id);

}  // namespace postern::backend::passwd_file
