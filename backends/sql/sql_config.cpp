// dovecot-sql.conf.ext reader and connect-string parser.
#include "backends/sql/sql_config.hpp"

#include <algorithm>

#include "password/scheme.hpp"

namespace postern::backend::sql {

namespace {

// More connections than this per database would only queue inside the server.
constexpr unsigned kMaxConns = 1024;

using conf::fail_at;

bool is_pgsql_keyword(std::string_view k) {
    // libpq connection keywords that make sense here (host/port/user/password/
    // dbname/connect_timeout are handled separately).
    static constexpr std::string_view kKeys[] = {
        "hostaddr", "options", "application_name", "fallback_application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "sslmode", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslrootcert", "sslcrl",
        "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version",
        "gssencmode", "krbsrvname", "gsslib", "channel_binding", "passfile", "target_session_attrs",
        "client_encoding", "service",
    };
    return std::find(std::begin(kKeys), std::end(kKeys), k) != std::end(kKeys);
}

bool is_mysql_keyword(std::string_view k) {
    static constexpr std::string_view kKeys[] = {
        "client_flags", "read_timeout", "write_timeout", "ssl_ca", "ssl_ca_path", "ssl_cert", "ssl_key",
        "ssl_cipher", "ssl_verify_server_cert", "option_file", "option_group", "character_set",
    };
    return std::find(std::begin(kKeys), std::end(kKeys), k) != std::end(kKeys);
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

ConnectSettings parse_connect(DriverKind driver, std::string_view text, const std::string& file, long line) {
    ConnectSettings c;
    std::size_t i = 0;
    auto bad = [&](const std::string& msg) { fail_at(file, line, "connect", msg); };
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        if (i >= text.size()) break;
        const auto eq = text.find('=', i);
        const auto sp = text.find_first_of(" \t", i);
        if (eq == std::string_view::npos || (sp != std::string_view::npos && sp < eq))
            bad("expected key=value, got \"" + std::string(text.substr(i, std::min<std::size_t>(40, (sp == std::string_view::npos ? text.size() : sp) - i))) + "\"");
        const std::string key = std::string(text.substr(i, eq - i));
        if (key.empty()) bad("missing key before '='");
        i = eq + 1;
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            ++i;
            bool closed = false;
            for (; i < text.size(); ++i) {
                if (text[i] == '\\' && i + 1 < text.size()) value += text[++i];
                else if (text[i] == '\'') {
                    closed = true;
                    ++i;
                    break;
                } else value += text[i];
            }
            if (!closed) bad("unterminated quoted value of " + key);
        } else {
            while (i < text.size() && text[i] != ' ' && text[i] != '\t') value += text[i++];
        }
        if (key == "host") {
            std::size_t start = 0;
            // libpq style "host=a,b" and Dovecot style repeated host= both list hosts.
            for (;;) {
                const auto comma = value.find(',', start);
                std::string h = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                if (h.empty()) bad("empty host");
                c.hosts.push_back(Host{h, h.front() == '/'});
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        } else if (key == "port") {
            if (!all_digits(value) || value.size() > 5 || std::stoul(value) == 0 || std::stoul(value) > 65535)
                bad("port must be a number between 1 and 65535");
            c.port = value;
        } else if (key == "user") {
            c.user = value;
        } else if (key == "password") {
            c.password = value;
        } else if (key == "dbname") {
            c.dbname = value;
        } else if (key == "connect_timeout") {
            if (!all_digits(value) || value.size() > 4 || std::stoul(value) == 0) bad("connect_timeout must be a number of seconds");
            c.connect_timeout = std::chrono::seconds(std::stoul(value));
        } else if (key == "maxconns") {
            if (!all_digits(value) || value.size() > 5 || std::stoul(value) == 0 || std::stoul(value) > kMaxConns)
                bad("maxconns must be between 1 and " + std::to_string(kMaxConns));
            c.maxconns = static_cast<unsigned>(std::stoul(value));
        } else if (driver == DriverKind::Pgsql ? is_pgsql_keyword(key) : is_mysql_keyword(key)) {
            c.options.emplace_back(key, value);
        } else {
            bad("unknown " + std::string(driver == DriverKind::Pgsql ? "pgsql" : "mysql") + " connect key \"" + key + "\"");
        }
    }
    if (c.hosts.empty()) {
        // Both libraries default to their local unix socket.
        c.hosts.push_back(Host{"", true});
    }
    return c;
}

SqlFile parse_sql_settings(const std::vector<RawSetting>& raw, const std::string& path) {
    SqlFile f;
    f.path = path;
    const RawSetting* driver = nullptr;
    const RawSetting* connect = nullptr;
    for (const auto& s : raw) {
        if (s.key == "driver") driver = &s;
        else if (s.key == "connect") connect = &s;
        else if (s.key == "default_pass_scheme") {
            if (!password::canonical_name(s.value)) fail_at(s.file, s.line, s.key, "unknown password scheme \"" + s.value + "\"");
            f.default_pass_scheme = s.value;
        } else if (s.key == "password_query") f.password_query = s.value;
        else if (s.key == "user_query") f.user_query = s.value;
        else if (s.key == "iterate_query") f.iterate_query = s.value;
        else if (s.key == "update_query") f.update_query = s.value;
        else if (s.key == "userdb_warning_disable") {
            // Accepted for compatibility; it means nothing to postern.
        } else {
            fail_at(s.file, s.line, s.key, "unknown setting");
        }
        f.lines.emplace_back(s.key, s.line);
    }
    if (!driver) fail_at(path, 0, "driver", "required setting is missing");
    if (driver->value == "mysql") f.driver = DriverKind::Mysql;
    else if (driver->value == "pgsql") f.driver = DriverKind::Pgsql;
    else fail_at(driver->file, driver->line, "driver", "unsupported driver \"" + driver->value + "\" (mysql or pgsql)");
    if (!connect || connect->value.empty()) fail_at(connect ? connect->file : path, connect ? connect->line : 0, "connect", "required setting is missing");
    f.connect = parse_connect(f.driver, connect->value, connect->file, connect->line);
    if (f.password_query.empty())
        f.password_query = "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'";
    return f;
}

SqlFile parse_sql_file(const std::string& path) {
    return parse_sql_settings(read_settings_file(path), path);
}

}  // namespace postern::backend::sql
