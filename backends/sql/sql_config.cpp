// dovecot-sql.conf.ext reader and connect-string parser.
#include "backends/sql/sql_config.hpp"

#include <algorithm>
#include <functional>

#include "backends/sql/fields.hpp"
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

// One connect parameter, from a connect string or from the inline settings
// (pgsql_parameters). `bad` throws; it is never given a password's value.
void set_connect_key(DriverKind driver, ConnectSettings& c, const std::string& key, const std::string& value,
                 const std::function<void(const std::string&)>& bad) {
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
        set_connect_key(driver, c, key, value, bad);
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

namespace {

// Dovecot 2.4's ssl_client_* settings as MariaDB connect options.
constexpr std::pair<std::string_view, std::string_view> kMysqlSsl[] = {
    {"ssl_client_ca_file", "ssl_ca"},     {"ssl_client_ca_dir", "ssl_ca_path"},
    {"ssl_client_cert_file", "ssl_cert"}, {"ssl_client_key_file", "ssl_key"},
    {"ssl_cipher_list", "ssl_cipher"},
};

// A string or an array of strings, as a list.
std::vector<std::string> one_or_more(const config::Section& s, std::string_view key) {
    if (auto one = [&]() -> std::optional<std::string> {
            try {
                return s.opt_string(key);
            } catch (const config::ConfigError&) {
                return std::nullopt;
            }
        }())
        return {*one};
    return s.string_list(key, {});
}

// The first of `keys` that is set (Dovecot 2.4 names a setting both ways:
// `query` inside `passdb sql { }`, passdb_sql_query outside).
std::optional<std::string> first_of(const config::Section& s, std::initializer_list<std::string_view> keys) {
    std::optional<std::string> v;
    std::string_view set;
    for (auto k : keys) {
        auto x = s.opt_string(k);
        if (!x) continue;
        if (v) s.error(k, "set twice (also as " + std::string(set) + ")");
        v = std::move(x);
        set = k;
    }
    return v;
}

// fields = { NAME = "TEMPLATE", ... } (or a [passdb.fields] table), each
// template checked now so a typo is a start-up error, not a failed login.
void read_fields(const config::Section& s, SqlFile& f) {
    f.fields_import_all = s.boolean("fields_import_all", true);
    const auto t = s.subtable("fields");
    if (!t) return;
    for (const auto& k : t->keys()) {
        if (k.empty() || k.find_first_of("\t\r\n=") != std::string::npos)
            t->error(k, "a field name must be non-empty without tab, newline or =");
        std::string tmpl = *t->opt_string(k);  // may be empty (NAME:remove = "")
        if (const auto e = check_field_template(tmpl); !e.empty()) t->error(k, e);
        f.fields.push_back({k, std::move(tmpl)});
    }
    f.lines.emplace_back("fields", t->line());
}

}  // namespace

const std::vector<std::string_view>& inline_keys() {
    static const std::vector<std::string_view> kKeys = {
        "sql_driver", "query", "passdb_sql_query", "userdb_sql_query", "iterate_query", "userdb_sql_iterate_query",
        "update_query", "passdb_sql_update_query", "default_password_scheme", "passdb_default_password_scheme",
        "mysql_host", "mysql_port", "mysql_user", "mysql_password", "mysql_dbname", "mysql_ssl",
        "mysql_option_file", "mysql_option_group", "mysql_client_flags", "mysql_connect_timeout",
        "mysql_read_timeout", "mysql_write_timeout", "mysql_connection_limit", "ssl_client_ca_file",
        "ssl_client_ca_dir", "ssl_client_cert_file", "ssl_client_key_file", "ssl_cipher_list",
        "ssl_client_require_valid_cert", "pgsql_host", "pgsql_parameters", "pgsql_connection_limit",
    };
    return kKeys;
}

SqlFile parse_sql_section(const config::Section& s, bool passdb) {
    SqlFile f;
    f.path = s.file() + ":" + std::to_string(s.line()) + " " + s.path();
    const std::string driver = s.required_string("sql_driver");
    if (driver == "mysql") f.driver = DriverKind::Mysql;
    else if (driver == "pgsql") f.driver = DriverKind::Pgsql;
    else s.error("sql_driver", "unsupported driver \"" + driver + "\" (mysql or pgsql)");
    const bool my = f.driver == DriverKind::Mysql;
    const std::string other = my ? "pgsql_" : "mysql_";
    for (const auto& k : s.keys())
        if (k.starts_with(other) || (!my && k.starts_with("ssl_")))
            s.error(k, "not a setting of sql_driver = \"" + driver + "\"");
    const auto key_line = [&](std::string_view k) {
        return std::make_pair(std::string(k), s.line());
    };
    ConnectSettings& c = f.connect;
    for (const auto& h : one_or_more(s, my ? "mysql_host" : "pgsql_host")) {
        if (h.empty()) s.error(my ? "mysql_host" : "pgsql_host", "empty host");
        c.hosts.push_back(Host{h, h.front() == '/'});
    }
    const std::string limit_key = my ? "mysql_connection_limit" : "pgsql_connection_limit";
    c.maxconns = static_cast<unsigned>(s.integer(limit_key, c.maxconns, 1, kMaxConns));
    if (my) {
        if (s.has("mysql_port")) c.port = std::to_string(s.integer("mysql_port", 0, 1, 65535));
        c.user = s.string("mysql_user", "");
        c.password = s.string("mysql_password", "");
        c.dbname = s.string("mysql_dbname", "");
        c.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
            s.duration("mysql_connect_timeout", std::chrono::seconds(5), std::chrono::seconds(300)));
        if (c.connect_timeout.count() <= 0) s.error("mysql_connect_timeout", "must be positive");
        for (const char* k : {"mysql_read_timeout", "mysql_write_timeout"}) {
            if (!s.has(k)) continue;
            const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                s.duration(k, std::chrono::seconds(30), std::chrono::seconds(3600)));
            if (secs.count() <= 0) s.error(k, "must be at least 1s");
            c.options.emplace_back(std::string(k).substr(6), std::to_string(secs.count()));
        }
        for (const char* k : {"mysql_option_file", "mysql_option_group"})
            if (auto v = s.opt_string(k)) c.options.emplace_back(std::string(k).substr(6), *v);
        if (s.has("mysql_client_flags"))
            c.options.emplace_back("client_flags", std::to_string(s.integer("mysql_client_flags", 0, 0, 0x7fffffff)));
        if (s.boolean("mysql_ssl", false)) {
            bool ca = false;
            for (const auto& [from, to] : kMysqlSsl) {
                auto v = s.opt_string(from);
                if (!v || v->empty()) continue;
                ca = ca || from == "ssl_client_ca_file" || from == "ssl_client_ca_dir";
                c.options.emplace_back(std::string(to), *v);
            }
            if (!ca) s.error("mysql_ssl", "needs ssl_client_ca_file or ssl_client_ca_dir to check the server with");
            c.options.emplace_back("ssl_verify_server_cert",
                                   s.boolean("ssl_client_require_valid_cert", true) ? "yes" : "no");
        } else {
            for (const auto& [from, to] : kMysqlSsl)
                if (s.has(from)) s.error(from, "needs mysql_ssl = true");
        }
    } else if (auto params = s.subtable("pgsql_parameters")) {
        for (const auto& k : params->keys()) {
            std::string v;
            try {
                v = params->string(k, "");
            } catch (const config::ConfigError&) {
                v = std::to_string(params->integer(k, 0, 0, 1LL << 40));  // port = 5432
            }
            if (k == "host") params->error(k, "give the hosts in pgsql_host");
            auto bad = [&](const std::string& msg) { params->error(k, msg); };
            if (k == "maxconns") bad("give the number of connections in pgsql_connection_limit");
            set_connect_key(f.driver, c, k, v, bad);
        }
    }
    if (c.hosts.empty()) c.hosts.push_back(Host{"", true});

    if (auto v = first_of(s, {"default_password_scheme", "passdb_default_password_scheme"})) {
        if (!password::canonical_name(*v))
            s.error(s.has("default_password_scheme") ? "default_password_scheme" : "passdb_default_password_scheme",
                    "unknown password scheme \"" + *v + "\"");
        f.default_pass_scheme = *v;
    }
    if (passdb) {
        for (const char* k : {"userdb_sql_query", "iterate_query", "userdb_sql_iterate_query"})
            if (s.has(k)) s.error(k, "a userdb setting in a passdb");
        auto q = first_of(s, {"query", "passdb_sql_query"});
        if (!q || q->empty()) s.error("query", "required setting is missing (the password query)");
        f.password_query = *q;
        f.lines.push_back(key_line("password_query"));
        if (auto u = first_of(s, {"update_query", "passdb_sql_update_query"})) {
            f.update_query = *u;
            f.lines.push_back(key_line("update_query"));
        }
    } else {
        for (const char* k : {"passdb_sql_query", "update_query", "passdb_sql_update_query"})
            if (s.has(k)) s.error(k, "a passdb setting in a userdb");
        auto q = first_of(s, {"query", "userdb_sql_query"});
        if (!q || q->empty()) s.error("query", "required setting is missing (the user query)");
        f.user_query = *q;
        if (auto it = first_of(s, {"iterate_query", "userdb_sql_iterate_query"})) f.iterate_query = *it;
        f.lines.push_back(key_line("user_query"));
    }
    return f;
}

SqlFile read_sql_section(const config::Section& s, bool passdb) {
    const auto& known = inline_keys();
    const std::string_view* inline_key = nullptr;
    for (const auto& k : s.keys()) {
        if (k == "driver" || k == "args" || k == "pool_size" || k == "query_timeout" || k == "fields" ||
            k == "fields_import_all")
            continue;
        const auto it = std::find(known.begin(), known.end(), k);
        if (it == known.end()) s.error(k, "unknown setting");
        if (!inline_key) inline_key = &*it;
    }
    SqlFile file;
    if (s.has("args") && inline_key)
        s.error(*inline_key, "either args (a settings file) or the settings inline, not both");
    if (!s.has("args") && !s.has("sql_driver"))
        s.error("args", "required: a dovecot-sql.conf.ext-style file, or sql_driver and the settings inline");
    if (!s.has("args")) {
        file = parse_sql_section(s, passdb);
    } else {
        const std::string path = s.required_string("args");
        if (path.front() != '/') s.error("args", "must be the absolute path of a dovecot-sql.conf.ext-style file");
        try {
            file = parse_sql_file(path);
        } catch (const config::ConfigError& e) {
            // Name both files: where the sql file is referenced and what is wrong in it.
            s.error("args", e.what());
        }
    }
    read_fields(s, file);
    return file;
}

}  // namespace postern::backend::sql
