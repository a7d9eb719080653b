// Translation of a Cyrus SASL setup (an application config such as Postfix's
// smtpd.conf, and optionally saslauthd's defaults file) into postern.conf.
// Pure: reads only the texts it is given, never a password store.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace postern::cli::cyrus {

struct Input {
    std::string app_path, app_text;             // smtpd.conf
    std::string saslauthd_path, saslauthd_text; // /etc/default/saslauthd ("" = none)
    std::string client_socket = "/var/spool/postfix/private/auth";
    std::string sql_file_path;                  // where the sql passdb's settings file goes
};

struct Output {
    std::string config;                      // postern.conf text
    std::optional<std::string> sql_file;     // dovecot-sql.conf.ext text (holds the database password)
    std::vector<std::string> not_carried;    // "FILE:LINE: key: why", one per setting left behind
    std::vector<std::string> notes;          // what changed in meaning, for the operator
};

// Throws std::runtime_error("FILE:LINE: ...") for input it cannot read at all.
Output translate(const Input& in);

// Cyrus %-variables of an auxprop sql_select turned into postern's: %u (the
// user part) -> %n, %r (the realm) -> %d, %p (the property) -> userPassword,
// %% -> %%; the first selected column is named "password" when it is not.
std::string translate_sql_select(const std::string& select, std::vector<std::string>& notes);

}  // namespace postern::cli::cyrus
