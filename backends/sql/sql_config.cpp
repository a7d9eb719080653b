// dovecot-sql.conf.ext reader and connect-string parser.
#include "backends/sql/sql_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "password/scheme.hpp"

namespace postern::backend::sql {

namespace {

// A settings file larger than this is a mistake, not a configuration.
constexpr std::size_t kMaxFileSize = 1 << 20;
// !include depth limit (a file including itself).
constexpr int kMaxIncludeDepth = 8;
// More connections than this per database would only queue inside the server.
constexpr unsigned kMaxConns = 1024;

[[noreturn]] void fail_at(const std::string& file, long line, const std::string& key, const std::string& msg) {
    throw config::ConfigError(file, line, key, msg);
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// Value after '=': a quoted string ("..." or '...', backslash escapes) or
// bare text up to a '#' comment.
std::string parse_value(std::string_view v, const std::string& file, long line, const std::string& key) {
    std::string s = trim(v);
    if (!s.empty() && (s.front() == '"' || s.front() == '\'')) {
        const char q = s.front();
        std::string out;
        std::size_t i = 1;
        for (; i < s.size() && s[i] != q; ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) {
                ++i;
                out += s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' : s[i];
            } else {
                out += s[i];
            }
        }
        if (i >= s.size()) fail_at(file, line, key, "unterminated quoted value");
        const std::string rest = trim(std::string_view(s).substr(i + 1));
        if (!rest.empty() && rest.front() != '#') fail_at(file, line, key, "text after the quoted value");
        return out;
    }
    const auto hash = s.find('#');
    if (hash != std::string::npos) s = trim(std::string_view(s).substr(0, hash));
    return s;
}

void parse_into(std::string_view text, const std::string& name, std::vector<RawSetting>& out, int depth) {
    long lineno = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string line(text.substr(pos, nl - pos));
        pos = nl + 1;
        ++lineno;
        const long first_line = lineno;
        // A trailing backslash continues the line.
        for (;;) {
            std::string t = trim(line);
            if (t.empty() || t.back() != '\\' || pos > text.size()) break;
            t.pop_back();
            auto nl2 = text.find('\n', pos);
            if (nl2 == std::string_view::npos) nl2 = text.size();
            if (pos >= text.size()) {
                line = t;
                break;
            }
            line = trim(t) + " " + trim(text.substr(pos, nl2 - pos));
            pos = nl2 + 1;
            ++lineno;
        }
        for (char c : line)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
                fail_at(name, first_line, "", "control character in the file");
        const std::string t = trim(line);
        if (t.empty() || t.front() == '#') continue;
        if (t.rfind("!include", 0) == 0) {
            const bool optional = t.rfind("!include_try", 0) == 0;
            std::string target = trim(std::string_view(t).substr(optional ? 12 : 8));
            if (target.size() >= 2 && (target.front() == '"' || target.front() == '\'')) target = target.substr(1, target.size() - 2);
            if (target.empty()) fail_at(name, first_line, "!include", "missing file name");
            if (target.front() != '/') target = dir_of(name) + "/" + target;
            if (depth >= kMaxIncludeDepth) fail_at(name, first_line, "!include", "includes nested too deep");
            std::ifstream f(target, std::ios::binary);
            if (!f) {
                if (optional) continue;
                fail_at(name, first_line, "!include", "cannot open " + target + ": " + std::strerror(errno));
            }
            std::ostringstream ss;
            ss << f.rdbuf();
            const std::string inner = ss.str();
            if (inner.size() > kMaxFileSize) fail_at(target, 0, "", "file too large");
            parse_into(inner, target, out, depth + 1);
            continue;
        }
        const auto eq = t.find('=');
        if (eq == std::string::npos) fail_at(name, first_line, trim(t.substr(0, 40)), "expected key = value");
        RawSetting s;
        s.key = trim(std::string_view(t).substr(0, eq));
        if (s.key.empty()) fail_at(name, first_line, "", "missing key before '='");
        s.value = parse_value(std::string_view(t).substr(eq + 1), name, first_line, s.key);
        s.file = name;
        s.line = first_line;
        out.push_back(std::move(s));
    }
}

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

long SqlFile::line_of(std::string_view key) const {
    for (const auto& [k, l] : lines)
        if (k == key) return l;
    return 0;
}

std::vector<RawSetting> parse_settings_text(std::string_view text, const std::string& name) {
    std::vector<RawSetting> out;
    parse_into(text, name, out, 0);
    return out;
}

std::vector<RawSetting> read_settings_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail_at(path, 0, "", std::string("cannot open: ") + std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    if (text.size() > kMaxFileSize) fail_at(path, 0, "", "file too large");
    return parse_settings_text(text, path);
}

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
