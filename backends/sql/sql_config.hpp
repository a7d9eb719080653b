// The sql backend's settings: a dovecot-sql.conf.ext-style file read as it is
// (shared reference backends.md §3.3) plus the connect string of each driver.
// Parsing is pure (no I/O besides reading the file); errors are
// config::ConfigError naming the file, the line and the key.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/conf_file.hpp"
#include "config/section.hpp"

namespace postern::backend::sql {

enum class DriverKind { Mysql, Pgsql };

// One host of a connect string: an IP literal, a unix socket path, or a
// name resolved before connecting (never inside the client libraries).
struct Host {
    std::string name;       // as written ("" = the driver's default unix socket)
    bool is_socket = false; // a path starting with '/'
};

struct ConnectSettings {
    std::vector<Host> hosts;  // tried in turn; at least one
    std::string port;         // "" = driver default
    std::string user, password, dbname;
    std::chrono::milliseconds connect_timeout{5000};
    // Further driver options, validated per driver (pgsql: libpq keywords; mysql: ssl_*).
    std::vector<std::pair<std::string, std::string>> options;
    unsigned maxconns = 5;
};

// One entry of a passdb/userdb table's fields (Dovecot 2.4's fields { }):
// the field's name and its %{...} template (backends/sql/fields.hpp).
struct FieldTemplate {
    std::string name;
    std::string tmpl;
};
using FieldTemplates = std::vector<FieldTemplate>;

struct SqlFile : conf::KeyLines {
    std::string path;
    DriverKind driver = DriverKind::Mysql;
    ConnectSettings connect;
    std::string default_pass_scheme = "MD5";
    std::string password_query;
    std::string user_query;
    std::string iterate_query;
    // Rehash on login writes the new hash with this statement: %{password}
    // (or %w) is the new stored value, %{old_password} the one the login
    // verified (compare-and-set). Without %{old_password} it is not used.
    std::string update_query;
    // fields = { NAME = "TEMPLATE", ... } of the table (either form) and
    // fields_import_all (false: the query's columns set no field themselves).
    FieldTemplates fields;
    bool fields_import_all = true;
    // (KeyLines: the line of each key, for later errors about a query.)
};

// The file's key = value lines: backends/conf_file.hpp.
using conf::RawSetting;
using conf::parse_settings_text;
using conf::read_settings_file;

// Throws config::ConfigError (file, line, key) on any bad or missing setting.
SqlFile parse_sql_file(const std::string& path);
SqlFile parse_sql_settings(const std::vector<RawSetting>& raw, const std::string& path);
ConnectSettings parse_connect(DriverKind driver, std::string_view text, const std::string& file, long line);

// The same settings written inline in a postern.conf [[passdb]] / [[userdb]]
// table with Dovecot 2.4's names (sql_driver, mysql_host, mysql_user, ...,
// pgsql_host, pgsql_parameters, query / passdb_sql_query, iterate_query /
// userdb_sql_iterate_query, default_password_scheme). `path` becomes
// "FILE:LINE passdb[N]". Errors name file:line:key, never a value.
SqlFile parse_sql_section(const config::Section& s, bool passdb);
// A passdb/userdb table's settings: the file named in args, or the inline
// settings (errors for both, for keys neither knows, or for neither); with
// either, the table's fields and fields_import_all.
// pool_size and query_timeout are left to the caller.
SqlFile read_sql_section(const config::Section& s, bool passdb);
// The keys parse_sql_section reads.
const std::vector<std::string_view>& inline_keys();

}  // namespace postern::backend::sql
