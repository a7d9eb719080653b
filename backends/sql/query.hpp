// Query templates with Dovecot %-variables turned into statements a driver
// can run safely: every variable value becomes a bound parameter (pgsql) or
// a string literal made with the driver's own escaping on a live connection
// (mysql). A user name can never change the meaning of a query: a value is
// never pasted into SQL as code, wherever the template puts it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/var_expand.hpp"
#include "util/result.hpp"

namespace postern::backend::sql {

// A template after %-expansion: SQL text in which each variable's place is a
// marker (\x01 index \x02), with the values aside. Modifiers (%Lu...) have
// already been applied to the values.
struct Marked {
    std::string text;
    std::vector<std::string> values;
};

Result<Marked> mark(std::string_view tmpl, const util::VarLookup& lookup);

// Statement for PostgreSQL: $1..$N placeholders (types inferred by the server). A
// value inside a longer literal ('/var/mail/%d/%n') becomes a concatenation
// ('/var/mail/' || $1 || '/' || $2). Fails for a value inside a quoted
// identifier or an E'' literal, or a value with a NUL byte.
struct PgStatement {
    std::string text;
    std::vector<std::string> params;
};
Result<PgStatement> render_pgsql(const Marked& m);

// Statement for MySQL/MariaDB: each value escaped with `escape`
// (mysql_real_escape_string on the connection) inside the literal that holds
// it; a value outside any literal is put in a literal of its own. Fails for a
// value inside a `quoted` identifier.
using Escaper = std::function<std::string(std::string_view)>;
Result<std::string> render_mysql(const Marked& m, const Escaper& escape);

// Statement for a MySQL/MariaDB server-side prepared statement: ?
// placeholders, each bound to a string, so that the text is the same for
// every user and is parsed once per connection.
//   - A literal holding values ('%u', '%n@%d', "%u") becomes one ? bound to
//     the whole literal's value, fixed text included ('%n@%d' -> ? bound to
//     "al@ex.org"): the same string the server would have read from the
//     escaped literal, with the same (connection) character set.
//   - A value outside any literal becomes ? on its own (the escaped path puts
//     it in a literal of its own: the same string).
// nullopt when the statement must take the escaped path (render_mysql)
// instead: a literal with values whose own text has a backslash (its meaning
// depends on the server's sql_mode, so the value cannot be rebuilt here), or
// a literal right after a word character (_utf8'%u', X'%u', N'%u': an
// introducer or a hex/bit literal, which a ? cannot replace). Fails like
// render_mysql for a value inside a `quoted` identifier.
struct MyStatement {
    std::string text;
    std::vector<std::string> params;
};
Result<std::optional<MyStatement>> render_mysql_params(const Marked& m);

// Variables whose template has no marker at all: for statements written by
// postern itself, each value is wanted exactly where "%{name}" stands.
// Looks values up by name in the given pairs.
util::VarLookup named_values(std::vector<std::pair<std::string, std::string>> values);

}  // namespace postern::backend::sql
