// Cyrus SASL application config + saslauthd defaults -> postern.conf.
#include "cli/import_cyrus.hpp"
#include "util/encoding.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace postern::cli::cyrus {

namespace {

struct Setting {
    std::string value;
    long line = 0;
};

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::vector<std::string> words(std::string_view s, std::string_view seps = " \t") {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = s.find_first_not_of(seps, i);
        if (b == std::string_view::npos) break;
        auto e = s.find_first_of(seps, b);
        if (e == std::string_view::npos) e = s.size();
        out.emplace_back(s.substr(b, e - b));
        i = e;
    }
    return out;
}

// Cyrus's "option: value" lines (the first ':' separates; '#' starts a comment line).
std::map<std::string, Setting> parse_cyrus(const std::string& path, const std::string& text) {
    std::map<std::string, Setting> out;
    std::istringstream in(text);
    std::string raw;
    long n = 0;
    while (std::getline(in, raw)) {
        ++n;
        const std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0)
            throw std::runtime_error(path + ":" + std::to_string(n) + ": expected \"option: value\"");
        const std::string key = lowercase(trim(std::string_view(line).substr(0, colon)));
        out[key] = Setting{trim(std::string_view(line).substr(colon + 1)), n};
    }
    return out;
}

// NAME=value / NAME="value" / NAME='value' shell assignments (saslauthd's defaults file).
std::map<std::string, Setting> parse_shell(const std::string& path, const std::string& text) {
    std::map<std::string, Setting> out;
    std::istringstream in(text);
    std::string raw;
    long n = 0;
    while (std::getline(in, raw)) {
        ++n;
        std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        if (line.starts_with("export ")) line = trim(std::string_view(line).substr(7));
        const auto eq = line.find('=');
        if (eq == std::string::npos || eq == 0)
            throw std::runtime_error(path + ":" + std::to_string(n) + ": expected NAME=value");
        const std::string name = line.substr(0, eq);
        std::string value = line.substr(eq + 1);
        if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
            const char q = value.front();
            const auto close = value.find(q, 1);
            if (close == std::string::npos)
                throw std::runtime_error(path + ":" + std::to_string(n) + ": " + name + ": unterminated quote");
            value = value.substr(1, close - 1);
        } else {
            const auto hash = value.find(" #");
            if (hash != std::string::npos) value = value.substr(0, hash);
            value = trim(value);
        }
        out[name] = Setting{value, n};
    }
    return out;
}

// `v` between `q` quotes, backslash before `q` and backslash: the form of
// TOML basic strings, of the sql settings file's quoted values ('"') and of
// connect-string values ('\'').
std::string quoted(std::string_view v, char q) {
    std::string out(1, q);
    for (char c : v) {
        if (c == q || c == '\\') out += '\\';
        out += c;
    }
    return out + q;
}

std::string toml(std::string_view s) {
    std::string one_line;
    for (char c : s) one_line += c == '\n' ? ' ' : c;
    return quoted(one_line, '"');
}

std::string connect_value(std::string_view v) { return quoted(v, '\''); }
std::string settings_quoted(std::string_view v) { return quoted(v, '"'); }

bool is_loopback(const std::string& host) {
    return host == "localhost" || host.starts_with("127.") || host == "::1" || host == "[::1]";
}

// Mechanisms postern can serve, and whether they need a stored secret.
struct MechRow {
    const char* name;
    bool needs_secret;
};
constexpr MechRow kMechs[] = {
    {"PLAIN", false},        {"LOGIN", false},          {"CRAM-MD5", true},  {"DIGEST-MD5", true},
    {"SCRAM-SHA-1", true},   {"SCRAM-SHA-256", true},   {"EXTERNAL", false}, {"ANONYMOUS", false},
};

struct Passdb {
    std::string toml;        // the [[passdb]] table
    bool has_secret = false; // can serve challenge-response mechanisms
    std::string what;        // for the header comment
};

struct Ctx {
    const Input& in;
    Output& out;
    std::string where(const std::string& file, long line) const { return file + ":" + std::to_string(line); }
    void left(const std::string& file, long line, const std::string& key, const std::string& why) {
        out.not_carried.push_back(where(file, line) + ": " + key + ": " + why);
    }
};

// host[:port] / host/port / [v6]:port -> host, port ("" when none).
std::pair<std::string, std::string> split_host_port(std::string s) {
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find(']');
        if (close != std::string::npos) {
            std::string host = s.substr(1, close - 1);
            std::string rest = s.substr(close + 1);
            if (!rest.empty() && (rest.front() == ':' || rest.front() == '/')) rest.erase(0, 1);
            return {host, rest};
        }
    }
    const auto slash = s.find('/');
    if (slash != std::string::npos) return {s.substr(0, slash), s.substr(slash + 1)};
    if (std::count(s.begin(), s.end(), ':') == 1) {
        const auto colon = s.find(':');
        return {s.substr(0, colon), s.substr(colon + 1)};
    }
    return {s, ""};
}

bool all_digits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::optional<Passdb> sql_passdb(Ctx& c, const std::map<std::string, Setting>& cy) {
    const std::string& file = c.in.app_path;
    auto get = [&cy](const char* k) -> const Setting* {
        auto it = cy.find(k);
        return it == cy.end() ? nullptr : &it->second;
    };
    const Setting* engine = get("sql_engine");
    const std::string eng = engine ? lowercase(engine->value) : std::string("mysql");
    std::string driver;
    if (eng == "mysql") driver = "mysql";
    else if (eng == "pgsql" || eng == "postgresql") driver = "pgsql";
    else {
        c.left(file, engine ? engine->line : 0, "sql_engine", "\"" + eng + "\" is not served (mysql and pgsql are)");
        return std::nullopt;
    }
    const Setting* select = get("sql_select");
    if (!select || select->value.empty()) {
        c.left(file, 0, "sql_select", "missing: nothing says how to find a password");
        return std::nullopt;
    }
    std::string connect;
    std::string port;
    if (const Setting* hosts = get("sql_hostnames")) {
        for (const auto& h : words(hosts->value, ", \t")) {
            auto [host, p] = split_host_port(h);
            if (!p.empty() && p.front() == '/') {
                connect += "host=" + connect_value(p) + " ";  // "localhost:/run/mysqld/mysqld.sock": the socket
                continue;
            }
            if (!p.empty() && !all_digits(p)) {
                c.left(file, hosts->line, "sql_hostnames", "port \"" + p + "\" of " + host + " not understood");
                continue;
            }
            connect += "host=" + connect_value(host) + " ";
            if (!p.empty()) {
                if (!port.empty() && p != port)
                    c.left(file, hosts->line, "sql_hostnames",
                           "hosts on different ports; postern uses port " + port + " for all of them");
                else
                    port = p;
            }
        }
    }
    if (!port.empty()) connect += "port=" + port + " ";
    if (const Setting* db = get("sql_database")) connect += "dbname=" + connect_value(db->value) + " ";
    if (const Setting* u = get("sql_user")) connect += "user=" + connect_value(u->value) + " ";
    if (const Setting* pw = get("sql_passwd")) connect += "password=" + connect_value(pw->value) + " ";
    const Setting* ssl = get("sql_usessl");
    const std::string usessl = ssl ? lowercase(ssl->value) : std::string();
    if (usessl == "yes" || usessl == "on" || usessl == "true" || usessl == "1") {
        if (driver == "pgsql") connect += "sslmode=require ";
        else c.left(file, ssl->line, "sql_usessl", "TLS to MySQL/MariaDB: add ssl_ca= (and ssl_verify_server_cert=) to connect by hand");
    }
    if (!connect.empty()) connect.pop_back();
    if (get("sql_insert") || get("sql_update")) {
        const Setting* s = get("sql_insert") ? get("sql_insert") : get("sql_update");
        c.left(file, s->line, get("sql_insert") ? "sql_insert" : "sql_update",
               "postern never stores passwords through Cyrus statements (postern user passwd writes PostfixAdmin tables)");
    }
    std::vector<std::string> notes;
    const std::string query = translate_sql_select(select->value, notes);
    for (auto& n : notes) c.out.notes.push_back(c.where(file, select->line) + ": sql_select: " + n);
    std::string text;
    text += "# dovecot-sql.conf.ext for postern, from " + file + " (Cyrus auxprop sql).\n";
    text += "# Holds the database password: keep it readable by the daemon's user only.\n";
    text += "driver = " + driver + "\n";
    text += "connect = " + settings_quoted(connect) + "\n";
    text += "# Cyrus's sql auxprop keeps cleartext passwords.\n";
    text += "default_pass_scheme = PLAIN\n";
    text += "password_query = " + query + "\n";
    c.out.sql_file = text;
    c.out.notes.push_back(c.where(file, select->line) +
                          ": the database stores cleartext passwords (Cyrus auxprop sql); CRAM-MD5/SCRAM keep working");
    Passdb p;
    p.has_secret = true;
    p.what = "auxprop sql (" + driver + ")";
    p.toml = "[[passdb]]\ndriver = \"sql\"\nargs = " + toml(c.in.sql_file_path) + "\n";
    return p;
}

Passdb sasldb_passdb(const std::string& path, const std::string& why) {
    Passdb p;
    p.has_secret = true;
    p.what = why;
    p.toml = "# The daemon's user must be able to read it (Debian: /etc/sasldb2 is root:sasl 0640).\n"
             "[[passdb]]\ndriver = \"sasldb\"\npath = " + toml(path) + "\n";
    return p;
}

Passdb pam_passdb(const std::string& why) {
    Passdb p;
    p.what = why;
    // saslauthd passes the client's service name (Postfix: smtp) as the PAM service: %s does the same.
    p.toml = "[[passdb]]\ndriver = \"pam\"\nservice = \"%s\"\n";
    return p;
}

struct SaslauthdInfo {
    std::vector<std::string> mechs;  // -a
    std::string mech_options;        // -O
    long mech_line = 0, options_line = 0;
    std::string mux_dir;             // -m
    bool realm_flag = false;         // -r
};

SaslauthdInfo read_saslauthd(Ctx& c) {
    SaslauthdInfo s;
    if (c.in.saslauthd_text.empty()) return s;
    auto vars = parse_shell(c.in.saslauthd_path, c.in.saslauthd_text);
    if (auto it = vars.find("MECHANISMS"); it != vars.end()) {
        s.mechs = words(it->second.value);
        s.mech_line = it->second.line;
    }
    if (auto it = vars.find("MECH_OPTIONS"); it != vars.end() && !it->second.value.empty()) {
        s.mech_options = it->second.value;
        s.options_line = it->second.line;
    }
    for (const char* name : {"OPTIONS", "PARAMS"}) {
        auto it = vars.find(name);
        if (it == vars.end()) continue;
        auto w = words(it->second.value);
        for (std::size_t i = 0; i < w.size(); ++i) {
            const std::string& o = w[i];
            auto next = [&]() -> std::string { return i + 1 < w.size() ? w[++i] : std::string(); };
            if (o == "-a") {
                s.mechs = {next()};
                s.mech_line = it->second.line;
            } else if (o == "-O") {
                s.mech_options = next();
                s.options_line = it->second.line;
            } else if (o == "-m") {
                s.mux_dir = next();
            } else if (o == "-r") {
                s.realm_flag = true;
            } else if (o == "-c" || o == "-d" || o == "-l") {
                // cache, debug, no locking: nothing to carry (postern has its own [cache])
            } else if (o == "-n" || o == "-t" || o == "-s" || o == "-f") {
                next();  // worker count, cache timeout, cache size, config file: not meaningful here
            } else {
                c.left(c.in.saslauthd_path, it->second.line, name, "option " + o + " not understood");
            }
        }
    }
    if (auto it = vars.find("START"); it != vars.end() && lowercase(it->second.value) != "yes")
        c.out.notes.push_back(c.where(c.in.saslauthd_path, it->second.line) + ": START: saslauthd was not started ("
                              + it->second.value + "); imported all the same");
    return s;
}

std::optional<Passdb> saslauthd_passdb(Ctx& c, const SaslauthdInfo& s, const std::string& mech) {
    const std::string& file = c.in.saslauthd_path.empty() ? c.in.app_path : c.in.saslauthd_path;
    if (mech == "pam") return pam_passdb("saslauthd -a pam");
    if (mech == "shadow" || mech == "getpwent") {
        c.out.notes.push_back(c.where(file, s.mech_line) + ": saslauthd -a " + mech +
                              ": served through PAM (pam_unix reads /etc/shadow in postern's root PAM workers; service "
                              "smtp, which is /etc/pam.d/other unless /etc/pam.d/smtp exists)");
        return pam_passdb("saslauthd -a " + mech + " (through pam_unix)");
    }
    if (mech == "sasldb") return sasldb_passdb("/etc/sasldb2", "saslauthd -a sasldb");
    if (mech == "rimap") {
        if (s.mech_options.empty()) {
            c.left(file, s.mech_line, "MECHANISMS", "rimap without an IMAP server (-O host / MECH_OPTIONS)");
            return std::nullopt;
        }
        auto [host, port] = split_host_port(s.mech_options);
        if (!port.empty() && !all_digits(port)) {
            if (port == "imap") port = "143";
            else if (port == "imaps") port = "993";
            else {
                c.left(file, s.options_line, "MECH_OPTIONS", "port \"" + port + "\" not understood");
                return std::nullopt;
            }
        }
        Passdb p;
        p.what = "saslauthd -a rimap (" + host + ")";
        const bool implicit = port == "993";
        std::string tls = implicit ? "implicit" : is_loopback(host) ? "none" : "starttls";
        if (tls == "starttls")
            c.out.notes.push_back(c.where(file, s.options_line) +
                                  ": rimap sent passwords to " + host + " without TLS; postern uses STARTTLS with "
                                  "certificate checks (set tls = \"none\" only for a server without TLS)");
        p.toml = "[[passdb]]\ndriver = \"imap\"\nhost = " + toml(host) + "\n" +
                 (port.empty() ? std::string() : "port = " + port + "\n") + "tls = " + toml(tls) +
                 "\nusername = \"%u\"\n";
        return p;
    }
    c.left(file, s.mech_line, "MECHANISMS", "saslauthd mechanism \"" + mech + "\" is not served (pam, shadow, "
                                             "sasldb and rimap are)");
    return std::nullopt;
}

}  // namespace

std::string translate_sql_select(const std::string& select, std::vector<std::string>& notes) {
    std::string q;
    bool property = false;
    for (std::size_t i = 0; i < select.size(); ++i) {
        if (select[i] != '%' || i + 1 >= select.size()) {
            q += select[i];
            continue;
        }
        const char v = select[++i];
        switch (v) {
            case 'u': q += "%n"; break;
            case 'r': q += "%d"; break;
            case 'p':
                q += "userPassword";
                property = true;
                break;
            case '%': q += "%%"; break;
            default:
                q += '%';
                q += v;
                notes.push_back(std::string("%") + v + " is not a Cyrus variable; kept as postern's");
        }
    }
    if (property) notes.push_back("%p (the property Cyrus asks for) became the constant userPassword");
    // Dovecot-style queries name the password column; Cyrus takes the first.
    const std::string up = upper(q);
    const auto sel = up.find("SELECT");
    const auto from = up.find(" FROM ");
    if (sel != std::string::npos && from != std::string::npos && from > sel) {
        const std::string col = trim(std::string_view(q).substr(sel + 6, from - sel - 6));
        const std::string ucol = upper(col);
        const bool single = col.find(',') == std::string::npos;
        const bool named = ucol.ends_with(" AS PASSWORD") || ucol == "PASSWORD" || ucol.ends_with(".PASSWORD");
        if (single && !named) {
            q = q.substr(0, sel + 6) + " " + col + " AS password" + q.substr(from);
            notes.push_back("the selected column is named password, as postern's password_query wants");
        } else if (!single) {
            notes.push_back("selects several columns: postern reads the one named password");
        }
    } else {
        notes.push_back("not a plain SELECT ... FROM: check that a column named password comes back");
    }
    return q;
}

Output translate(const Input& in) {
    Output out;
    Ctx c{in, out};
    const auto cy = parse_cyrus(in.app_path, in.app_text);
    const SaslauthdInfo sd = read_saslauthd(c);
    auto get = [&cy](const char* k) -> const Setting* {
        auto it = cy.find(k);
        return it == cy.end() ? nullptr : &it->second;
    };
    static const char* kKnown[] = {"pwcheck_method", "auxprop_plugin", "mech_list", "sasldb_path", "saslauthd_path",
                                   "sql_engine", "sql_hostnames", "sql_user", "sql_passwd", "sql_database",
                                   "sql_select", "sql_usessl", "sql_insert", "sql_update", "log_level"};
    for (const auto& [k, s] : cy)
        if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown))
            c.left(in.app_path, s.line, k, "not carried over (no postern equivalent)");

    std::vector<Passdb> passdbs;
    const Setting* method = get("pwcheck_method");
    const std::vector<std::string> methods = method ? words(lowercase(method->value)) : std::vector<std::string>{"auxprop"};
    for (const auto& m : methods) {
        if (m == "auxprop" || m == "auxprop-hashed") {
            const Setting* plugin = get("auxprop_plugin");
            const std::vector<std::string> plugins = plugin ? words(lowercase(plugin->value)) : std::vector<std::string>{"sasldb"};
            for (const auto& pl : plugins) {
                if (pl == "sasldb") {
                    const Setting* path = get("sasldb_path");
                    passdbs.push_back(sasldb_passdb(path ? path->value : "/etc/sasldb2", "auxprop sasldb"));
                } else if (pl == "sql") {
                    if (auto p = sql_passdb(c, cy)) passdbs.push_back(std::move(*p));
                } else {
                    c.left(in.app_path, plugin ? plugin->line : 0, "auxprop_plugin", "\"" + pl + "\" is not served (sasldb and sql are)");
                }
            }
        } else if (m == "saslauthd") {
            if (in.saslauthd_text.empty()) {
                out.notes.push_back(c.where(in.app_path, method ? method->line : 0) +
                                    ": pwcheck_method saslauthd without --saslauthd FILE: assuming saslauthd -a pam");
                passdbs.push_back(pam_passdb("saslauthd (assumed -a pam)"));
            } else {
                if (sd.mechs.empty())
                    c.left(in.saslauthd_path, 0, "MECHANISMS", "no saslauthd mechanism set");
                for (const auto& mech : sd.mechs)
                    if (auto p = saslauthd_passdb(c, sd, lowercase(mech))) passdbs.push_back(std::move(*p));
            }
        } else {
            c.left(in.app_path, method ? method->line : 0, "pwcheck_method", "\"" + m + "\" is not served");
        }
    }
    if (passdbs.empty())
        throw std::runtime_error(in.app_path + ": no password store could be carried over (see the settings listed)");

    const bool any_secret = std::any_of(passdbs.begin(), passdbs.end(), [](const Passdb& p) { return p.has_secret; });
    std::vector<std::string> mechs;
    if (const Setting* ml = get("mech_list")) {
        for (auto m : words(ml->value, " \t,")) {
            m = upper(m);
            const auto* row = std::find_if(std::begin(kMechs), std::end(kMechs), [&m](const MechRow& r) { return m == r.name; });
            if (row == std::end(kMechs)) {
                c.left(in.app_path, ml->line, "mech_list", m + " is not served");
                continue;
            }
            if (row->needs_secret && !any_secret) {
                c.left(in.app_path, ml->line, "mech_list",
                       m + " needs stored secrets, which " + passdbs.front().what + " cannot give");
                continue;
            }
            if (std::find(mechs.begin(), mechs.end(), m) == mechs.end()) mechs.push_back(m);
        }
    } else {
        mechs = {"PLAIN", "LOGIN"};
        out.notes.push_back(in.app_path + ": no mech_list: PLAIN and LOGIN offered");
    }
    if (mechs.empty()) throw std::runtime_error(in.app_path + ": mech_list: no mechanism left that postern serves");
    // saslauthd without -r checks the login without its realm (Cyrus splits
    // "alice@example.com" into user and realm); with -r, or with auxprop
    // stores, the whole name counts.
    const bool uses_saslauthd = std::find(methods.begin(), methods.end(), "saslauthd") != methods.end();
    const bool only_saslauthd = uses_saslauthd && methods.size() == 1;
    std::string username_format = "%u";
    if (only_saslauthd && !sd.realm_flag) {
        username_format = "%n";
        out.notes.push_back((in.saslauthd_path.empty() ? in.app_path : in.saslauthd_path) +
                            ": saslauthd ran without -r: logins are checked without their @domain part "
                            "(username_format = \"%n\")");
    } else if (uses_saslauthd && !sd.realm_flag) {
        out.notes.push_back(in.app_path + ": saslauthd without -r dropped the realm, auxprop kept it: postern "
                            "checks the whole name (username_format = \"%u\")");
    }
    if (sd.realm_flag)
        out.notes.push_back(in.saslauthd_path + ": -r: postern's saslauthd listener always joins the realm to the login");

    std::string t;
    t += "# postern.conf made by `postern config import --from-cyrus " + in.app_path +
         (in.saslauthd_path.empty() ? std::string() : " --saslauthd " + in.saslauthd_path) + "`.\n";
    t += "# Passwords were checked by:";
    for (const auto& p : passdbs) t += " " + p.what + ";";
    t.back() = '.';
    t += "\n\n[auth]\nmechanisms = [";
    for (std::size_t i = 0; i < mechs.size(); ++i) t += (i ? ", " : "") + toml(mechs[i]);
    t += "]\nusername_format = " + toml(username_format) + "\n\n";
    t += "# Postfix: smtpd_sasl_type = dovecot, smtpd_sasl_path = private/auth\n";
    t += "[[listener]]\ntype = \"unix\"\npath = " + toml(in.client_socket) +
         "\nmode = \"0660\"\nuser = \"postfix\"\ngroup = \"postfix\"\nrole = \"client\"\n\n";
    if (!sd.mux_dir.empty()) {
        t += "# Where saslauthd listened: Cyrus clients (smtpd_sasl_type = cyrus) keep working.\n";
        t += "[[listener]]\ntype = \"unix\"\npath = " + toml(sd.mux_dir + "/mux") +
             "\nmode = \"0666\"\nrole = \"saslauthd\"\n\n";
    }
    for (const auto& p : passdbs) t += p.toml + "\n";
    out.config = std::move(t);
    return out;
}

}  // namespace postern::cli::cyrus
