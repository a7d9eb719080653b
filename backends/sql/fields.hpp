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
#include "backends/sql/sql_config.hpp"
#include "util/result.hpp"
#include "util/var_expand.hpp"

namespace postern::backend::sql {

struct PassRow : PassFields {
    using PassFields::PassFields;
    bool password_column = false;  // a password or password_noscheme column exists
};

// `import_all` false (Dovecot 2.4's fields_import_all = no): the columns
// set no field, only fields { } does (password_column is still noted).
PassRow pass_row(const std::vector<std::string>& columns, const Row& row, std::string_view request_user,
                 bool import_all = true);

struct UserRow {
    std::string user;  // rewritten user name ("" = unchanged)
    Fields fields;
};
UserRow user_row(const std::vector<std::string>& columns, const Row& row, bool import_all = true);

// Dovecot 2.4's fields { } of an sql passdb/userdb (passdb_fields /
// userdb_fields): a field name and its template, expanded once the query
// returned its row, with the request's variables plus
//   %{sql:COLUMN}     the row's column (Dovecot's provider named after the
//                     driver); a passdb's NULL column reads "yes", a
//                     userdb's NULL column is absent; an absent column
//                     fails the lookup (Dovecot: "No such field");
//   %{passdb:FIELD}   a field the passdb's columns set ("" when unset;
//                     password is not one);
//   %{userdb:FIELD}   a field the userdb's columns set ("" when unset).
// Every template is expanded first, then the fields are set in order as a
// column of that name would be, replacing a column's field of the same name;
// NAME:default sets a field only when it is not set, NAME:remove removes it.
// (FieldTemplates: sql_config.hpp, read from the table's fields.)
// Whether `tmpl` expands: "" or what is wrong (unknown variable or filter).
std::string check_field_template(std::string_view tmpl);

// The row's fields { } set into `out` (after pass_row / user_row with the
// same import_all). An error (a template naming an absent column) fails the
// lookup.
Result<void> apply_pass_fields(PassRow& out, const FieldTemplates& fields, const std::vector<std::string>& columns,
                               const Row& row, const util::VarLookup& request, bool import_all = true);
Result<void> apply_user_fields(UserRow& out, const FieldTemplates& fields, const std::vector<std::string>& columns,
                               const Row& row, const util::VarLookup& request);

// The user name an iterate_query row names: column user, or username + domain.
std::optional<std::string> iterate_user(const std::vector<std::string>& columns, const Row& row);

}  // namespace postern::backend::sql
