// Result rows of the sql backend turned into passdb/userdb fields the way
// Dovecot's sql passdb/userdb do (shared reference backends.md §3.3, §5):
// NULL = field not set; password / password_noscheme; user rewrites the user
// name (username / domain rewrite one part of it); userdb_* are prefetched
// userdb fields; every other column is an extra field (backends/fields.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.hpp"
#include "backends/fields.hpp"
#include "backends/sql/connection.hpp"

namespace postern::backend::sql {

struct PassRow : PassFields {
    using PassFields::PassFields;
    bool password_column = false;  // a password or password_noscheme column exists
};

PassRow pass_row(const std::vector<std::string>& columns, const Row& row, std::string_view request_user);

struct UserRow {
    std::string user;  // rewritten user name ("" = unchanged)
    Fields fields;
};
UserRow user_row(const std::vector<std::string>& columns, const Row& row);

// The user name an iterate_query row names: column user, or username + domain.
std::optional<std::string> iterate_user(const std::vector<std::string>& columns, const Row& row);

}  // namespace postern::backend::sql
