// Dovecot 2.3/2.4 configuration -> postern.conf (see import_dovecot.hpp).
// Dovecot defaults are those doveconf -d prints for 2.3.19 and 2.4.1.
#include "cli/import_dovecot.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "util/var_expand.hpp"
#include "util/encoding.hpp"

namespace postern::cli::dovecot {

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
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

std::string toml(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else out += c;
    }
    return out + '"';
}

bool yes(const std::string& v) {
    const auto l = lowercase(trim(v));
    return l == "yes" || l == "y" || l == "true" || l == "1";
}

// Dovecot's time values: "2 secs", "1 hour", "500 ms", "0". Milliseconds.
std::optional<long long> parse_time(const std::string& v) {
    const std::string t = lowercase(trim(v));
    std::size_t i = 0;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i == 0 || i > 12) return std::nullopt;
    const long long n = std::stoll(t.substr(0, i));
    const std::string unit = trim(std::string_view(t).substr(i));
    struct U { const char* name; long long ms; };
    static constexpr U kUnits[] = {
        {"", 1000},     {"s", 1000},    {"sec", 1000},    {"secs", 1000},   {"second", 1000}, {"seconds", 1000},
        {"ms", 1},      {"msec", 1},    {"msecs", 1},     {"millisecond", 1}, {"milliseconds", 1},
        {"m", 60000},   {"min", 60000}, {"mins", 60000},  {"minute", 60000}, {"minutes", 60000},
        {"h", 3600000}, {"hour", 3600000}, {"hours", 3600000},
        {"d", 86400000}, {"day", 86400000}, {"days", 86400000},
        {"w", 604800000}, {"week", 604800000}, {"weeks", 604800000},
    };
    for (const auto& u : kUnits)
        if (unit == u.name) return n * u.ms;
    return std::nullopt;
}

// Dovecot's sizes: "10M", "1 G", "4096", "0". Bytes.
std::optional<long long> parse_size(const std::string& v) {
    const std::string t = lowercase(trim(v));
    std::size_t i = 0;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i == 0 || i > 12) return std::nullopt;
    const long long n = std::stoll(t.substr(0, i));
    std::string unit = trim(std::string_view(t).substr(i));
    if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();
    if (unit.empty() || unit == "b") return n;
    if (unit == "k") return n << 10;
    if (unit == "m") return n << 20;
    if (unit == "g") return n << 30;
    if (unit == "t") return n << 40;
    return std::nullopt;
}

std::string duration(long long ms) {
    if (ms % 1000 == 0) return toml(std::to_string(ms / 1000) + "s");
    return toml(std::to_string(ms) + "ms");
}

std::string where(const Node& n) { return n.file + ":" + std::to_string(n.line); }

// Mechanisms postern serves; the rest are listed as not carried.
constexpr const char* kMechs[] = {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
                                  "EXTERNAL", "ANONYMOUS"};

struct Ctx {
    const Tree& tree;
    Output& out;
    std::string base_dir;
    std::string files_dir;  // where Output::files go ("": none can be written)

    void left(const Node& n, const std::string& why) {
        out.not_carried.push_back(where(n) + ": " + n.key + (n.section && !n.name.empty() ? " " + n.name : "") +
                                  ": " + why);
    }
    void note(const Node& n, const std::string& what) { out.notes.push_back(where(n) + ": " + what); }
    const Node* top(const std::string& key) const {
        const Node* found = nullptr;
        for (const auto& n : tree.top)
            if (!n.section && n.key == key) found = &n;
        return found;
    }
    // A template value in postern's form, or nullopt after listing it.
    std::optional<std::string> vars(const Node& n, const std::string& v, bool ldap_attrs = false,
                                    bool sql_fields = false) {
        std::string o;
        if (!to_postern_vars(v, o, ldap_attrs, sql_fields)) {
            left(n, "\"" + v + "\" uses a %{...} filter postern does not have");
            return std::nullopt;
        }
        return o;
    }
};

struct Db {
    std::string toml;  // the table body (without its [[header]])
    bool master = false;
};

std::string str_list(const std::vector<std::string>& v) {
    std::string t = "[";
    for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + toml(v[i]);
    return t + "]";
}

// The settings every passdb/userdb section may have, handled here or generic.
bool handle_common(Ctx& c, const Node& s, const Node& db, bool passdb) {
    if (s.key == "driver" || s.key == "args" || s.key == "name" || s.key == "master" || s.key == "pass" ||
        s.key == "auth_verbose" || s.key == "use_cache" || s.key == "use_worker")
        return true;
    const std::string value = lowercase(s.value);
    if (s.key == "skip" && value == "never") return true;
    if (s.key == "result_success" &&
        (value == "return-ok" ||
         (passdb && db.setting("master") && yes(db.setting("master")->value) && value == "continue")))
        return true;
    if (s.key == "result_failure" && value == "continue") return true;
    if (s.key == "result_internalfail" && value == "continue") return true;
    if (s.key == "deny") {
        if (!yes(s.value)) return true;
        c.left(s, "deny passdbs (users refused by a list) are not served");
        return true;
    }
    if (s.key == "skip" || s.key.starts_with("result_")) {
        c.left(s, "postern asks passdbs and userdbs in order without skip/result rules (" + s.value + ")");
        return true;
    }
    if (s.key == "override_fields" || s.key == "default_fields" || s.key == "fields" || s.key == "mechanisms" ||
        s.key == "username_filter" || s.key == "mechanisms_filter" || s.key == "fields_import_all") {
        if (trim(s.value).empty() && !s.section) return true;
        c.left(s, "not served for this driver");
        return true;
    }
    return false;
}

std::optional<Db> passwd_file(Ctx& c, const Node& db, bool passdb) {
    std::string path, scheme, fmt;
    long scheme_line = 0;
    const Node* where_args = db.setting("args");
    if (where_args) {
        for (const auto& w : words(where_args->value)) {
            const auto eq = w.find('=');
            if (eq != std::string::npos && w.front() != '/') {
                const std::string k = w.substr(0, eq), v = w.substr(eq + 1);
                if (k == "scheme") scheme = v, scheme_line = where_args->line;
                else if (k == "username_format") fmt = v;
                else c.left(*where_args, "passwd-file option " + k + "= is not served");
            } else {
                path = w;
            }
        }
    }
    if (const Node* p = db.setting("passwd_file_path")) path = p->value;
    if (const Node* s = db.setting("default_password_scheme")) scheme = s->value, scheme_line = s->line;
    else if (const Node* s2 = c.top("default_password_scheme"); s2 && scheme.empty()) scheme = s2->value;
    if (const Node* f = db.setting("auth_username_format")) fmt = f->value;
    else if (const Node* f2 = db.setting("username_format")) fmt = f2->value;
    (void)scheme_line;
    if (path.empty()) {
        c.left(db, "passwd-file without a file");
        return std::nullopt;
    }
    if (path.find('%') != std::string::npos) {
        c.left(db, "a passwd-file path with variables (" + path + ", one file per domain) is not served");
        return std::nullopt;
    }
    if (path.front() != '/') {
        c.left(db, "relative passwd-file path " + path + ": give it absolute");
        return std::nullopt;
    }
    Db d;
    d.toml = "driver = \"passwd-file\"\npath = " + toml(path) + "\n";
    if (passdb && !scheme.empty()) d.toml += "default_scheme = " + toml(upper(scheme)) + "\n";
    if (!fmt.empty()) {
        auto v = c.vars(db, fmt);
        if (!v) return std::nullopt;
        if (*v != "%u") d.toml += "username_format = " + toml(*v) + "\n";
    }
    for (const auto& s : db.children) {
        if (handle_common(c, s, db, passdb)) continue;
        if (s.key == "passwd_file_path" || s.key == "default_password_scheme" || s.key == "auth_username_format" ||
            s.key == "username_format")
            continue;
        c.left(s, "not a passwd-file setting postern has");
    }
    return d;
}

// sql and ldap: postern reads dovecot-sql.conf.ext / dovecot-ldap.conf.ext unchanged.
std::optional<Db> settings_file_db(Ctx& c, const Node& db, const std::string& driver, bool passdb) {
    const Node* args = db.setting("args");
    if (!args || trim(args->value).empty()) {
        c.left(db, "an " + driver + " passdb/userdb without args (its dovecot-" + driver + ".conf.ext)");
        return std::nullopt;
    }
    std::string path = trim(args->value);
    if (path.front() != '/') {
        // Dovecot opens a relative args path from its base_dir; nobody relies on that.
        // Not echoed: a 2.0-style args may hold the connect string, password included.
        c.left(*args, "not an absolute path: give the settings file's absolute path");
        return std::nullopt;
    }
    Db d;
    d.toml = "driver = " + toml(driver) + "\nargs = " + toml(path) + "\n";
    for (const auto& s : db.children) {
        if (handle_common(c, s, db, passdb)) continue;
        c.left(s, "not a " + driver + " setting postern has");
    }
    return d;
}

// Dovecot 2.4 keeps LDAP settings in dovecot.conf: ldap_* (in the
// database's section, a top-level passdb_ldap { } / userdb_ldap { } filter,
// or global), passdb_ldap_* / userdb_ldap_*, and fields { }. postern reads
// them from a dovecot-ldap.conf.ext, written beside the output config.
std::optional<Db> ldap_inline(Ctx& c, const Node& db, bool passdb) {
    if (c.files_dir.empty()) {
        c.left(db, "inline LDAP settings go to a dovecot-ldap.conf.ext beside the output: give -o FILE");
        return std::nullopt;
    }
    const std::string filter_section = passdb ? "passdb_ldap" : "userdb_ldap";
    auto find = [&](const std::string& k) -> const Node* {
        if (const Node* n = db.setting(k)) return n;
        const Node* found = nullptr;
        for (const auto& s : c.tree.top)
            if (s.section && s.key == filter_section)
                if (const Node* n = s.setting(k)) found = n;
        return found ? found : c.top(k);
    };
    std::string text = "# Dovecot 2.4's inline LDAP settings of " + where(db) + ", in dovecot-ldap.conf.ext form.\n";
    auto put = [&](const std::string& key, const std::string& value) { text += key + " = " + value + "\n"; };
    bool ok = true;
    auto put_template = [&](const std::string& from, const std::string& key) {
        const Node* n = find(from);
        if (!n || trim(n->value).empty()) return;
        auto v = c.vars(*n, n->value);
        if (!v) ok = false;
        else put(key, *v);
    };
    // A fields { } block as an attribute map: =field=template, ...
    auto put_fields = [&](const Node& block, const std::string& key) {
        std::vector<std::string> entries;
        for (const auto& f : block.children) {
            if (f.section) {
                c.left(f, "a section inside " + block.key + " is not read");
                continue;
            }
            auto v = c.vars(f, f.value, true);
            if (!v) {
                ok = false;
                continue;
            }
            if (v->find(',') != std::string::npos) {
                c.left(f, "a field template with a comma does not fit an attribute map");
                ok = false;
                continue;
            }
            entries.push_back("=" + f.key + "=" + *v);
        }
        if (entries.empty()) return;
        std::string joined;
        for (const auto& e : entries) joined += (joined.empty() ? "" : ", ") + e;
        put(key, joined);
    };
    const Node* uris = find("ldap_uris");
    if (!uris || trim(uris->value).empty()) {
        c.left(db, "an ldap passdb/userdb without ldap_uris");
        return std::nullopt;
    }
    for (const auto& [from, to] : {std::pair<const char*, const char*>{"ldap_uris", "uris"}, {"ldap_auth_dn", "dn"},
                                   {"ldap_auth_dn_password", "dnpass"}, {"ldap_base", "base"},
                                   {"ldap_scope", "scope"}, {"ldap_deref", "deref"}, {"ldap_version", "ldap_version"},
                                   {"ldap_auth_sasl_realm", "sasl_realm"}, {"ldap_auth_sasl_authz_id", "sasl_authz_id"},
                                   {"ssl_client_ca_file", "tls_ca_cert_file"}, {"ssl_client_ca_dir", "tls_ca_cert_dir"},
                                   {"ssl_client_cert_file", "tls_cert_file"}, {"ssl_client_key_file", "tls_key_file"}}) {
        if (const Node* n = find(from); n && !trim(n->value).empty()) put(to, trim(n->value));
    }
    if (const Node* n = find("ldap_starttls"); n && yes(n->value)) put("tls", "yes");
    if (const Node* n = find("ssl_client_require_valid_cert"); n && !yes(n->value)) put("tls_require_cert", "never");
    if (const Node* n = find("ldap_auth_sasl_mechanisms"); n && !words(n->value, " \t,").empty()) {
        const auto mechs = words(n->value, " \t,");
        put("sasl_bind", "yes");
        put("sasl_mech", mechs.front());
        if (mechs.size() > 1) c.note(*n, "only the first SASL mechanism (" + mechs.front() + ") is tried");
    }
    const Node* scheme = find("passdb_default_password_scheme");
    if (!scheme) scheme = find("default_password_scheme");
    if (passdb) {
        put_template("passdb_ldap_filter", "pass_filter");
        if (const Node* n = find("passdb_ldap_bind"); n && yes(n->value)) put("auth_bind", "yes");
        put_template("passdb_ldap_bind_userdn", "auth_bind_userdn");
        if (scheme && !trim(scheme->value).empty()) put("default_pass_scheme", upper(trim(scheme->value)));
    } else {
        put_template("userdb_ldap_filter", "user_filter");
        put_template("userdb_ldap_iterate_filter", "iterate_filter");
    }
    for (const auto& s : db.children) {
        if (s.section && s.key == "fields") {
            put_fields(s, passdb ? "pass_attrs" : "user_attrs");
            continue;
        }
        if (s.section && s.key == "userdb_ldap_iterate_fields" && !passdb) {
            put_fields(s, "iterate_attrs");
            continue;
        }
        if (!s.section && (s.key.starts_with("ldap_") || s.key.starts_with(filter_section + "_") ||
                           s.key.starts_with("ssl_client_") || s.key == "default_password_scheme" ||
                           s.key == "passdb_default_password_scheme"))
            continue;  // read through find() above
        if (handle_common(c, s, db, passdb)) continue;
        c.left(s, "not an ldap setting postern has");
    }
    if (!ok) return std::nullopt;
    const std::string path = c.files_dir + "/dovecot-ldap-" + (passdb ? "passdb" : "userdb") + "-" +
                             std::to_string(c.out.files.size() + 1) + ".conf.ext";
    c.out.files.push_back({path, text});
    c.note(db, "LDAP settings written to " + path);
    Db d;
    d.toml = "driver = \"ldap\"\nargs = " + toml(path) + "\n";
    return d;
}

// Dovecot 2.4 keeps SQL settings in dovecot.conf: sql_driver, a
// `mysql HOST { }` / `pgsql HOST { }` block per host (or mysql_* / pgsql_*
// settings), and `query` (passdb_sql_query, userdb_sql_query,
// userdb_sql_iterate_query), in the database's section or at the top.
// postern reads the same names inline in the [[passdb]] / [[userdb]] table.
std::optional<Db> sql_inline(Ctx& c, const Node& db, bool passdb) {
    // A setting of the database's section, else of the top level.
    auto find = [&](const std::string& k) -> const Node* {
        if (const Node* n = db.setting(k)) return n;
        return c.top(k);
    };
    const Node* driver_node = find("sql_driver");
    if (!driver_node || trim(driver_node->value).empty()) {
        c.left(db, "an sql passdb/userdb without sql_driver");
        return std::nullopt;
    }
    const std::string driver = lowercase(trim(driver_node->value));
    if (driver != "mysql" && driver != "pgsql") {
        c.left(*driver_node, "sql_driver " + driver + " is not served (mysql and pgsql are)");
        return std::nullopt;
    }
    const std::string prefix = driver + "_";
    // The host blocks: the database's own, else the top level's.
    std::vector<const Node*> hosts;
    for (const auto& n : db.children)
        if (n.section && n.key == driver) hosts.push_back(&n);
    if (hosts.empty())
        for (const auto& n : c.tree.top)
            if (n.section && n.key == driver) hosts.push_back(&n);
    // One value of a host's setting: inside its block (with or without the
    // driver's prefix), else the database's section, else the top level.
    auto host_setting = [&](const Node* h, const std::string& k) -> const Node* {
        if (h) {
            if (const Node* n = h->setting(k)) return n;
            if (const Node* n = h->setting(prefix + k)) return n;
        }
        return find(prefix + k);
    };
    std::string t = "driver = \"sql\"\nsql_driver = " + toml(driver) + "\n";
    bool ok = true;
    std::vector<std::string> host_names;
    for (const Node* h : hosts) host_names.push_back(h->name);
    if (host_names.empty())
        if (const Node* h = find(prefix + "host"); h && !trim(h->value).empty()) host_names.push_back(trim(h->value));
    // postern has one set of connect settings for all hosts of a database.
    static const std::vector<std::string> kMysqlKeys = {"port", "user", "password", "dbname", "ssl",
                                                        "option_file", "option_group", "client_flags",
                                                        "connect_timeout", "read_timeout", "write_timeout",
                                                        "connection_limit"};
    static const std::vector<std::string> kPgsqlKeys = {"connection_limit"};
    const auto& keys = driver == "mysql" ? kMysqlKeys : kPgsqlKeys;
    const Node* first = hosts.empty() ? nullptr : hosts.front();
    // A host's parameters { } (pgsql), as key=value lines.
    auto params_of = [](const Node* h) {
        std::vector<std::string> kv;
        for (const auto& n : h->children)
            if (n.section && (n.key == "parameters" || n.key == "pgsql_parameters"))
                for (const auto& p : n.children) kv.push_back(p.key + "=" + p.value);
        return kv;
    };
    for (const Node* h : hosts) {
        if (params_of(h) != params_of(first)) {
            c.left(*h, driver + " host " + h->name + ": parameters differ from host " + first->name +
                           "'s; postern uses one set for all hosts of a database");
            ok = false;
        }
        for (const auto& k : keys) {
            const Node* a = host_setting(first, k);
            const Node* b = host_setting(h, k);
            if ((a ? a->value : "") != (b ? b->value : "")) {
                c.left(*h, driver + " host " + h->name + ": " + k + " differs from host " + first->name +
                               "'s; postern uses one " + k + " for all hosts of a database");
                ok = false;
            }
        }
        for (const auto& n : h->children) {
            std::string k = n.key.starts_with(prefix) ? n.key.substr(prefix.size()) : n.key;
            if (n.section && k == "parameters" && driver == "pgsql") continue;
            if (std::find(keys.begin(), keys.end(), k) == keys.end() || n.section)
                c.left(n, "not a " + driver + " setting postern has");
        }
    }
    if (!host_names.empty()) t += prefix + "host = " + str_list(host_names) + "\n";
    if (driver == "mysql") {
        for (const auto& k : {"user", "password", "dbname", "option_file", "option_group"})
            if (const Node* n = host_setting(first, k); n && !trim(n->value).empty()) {
                t += prefix + k + " = " + toml(trim(n->value)) + "\n";
                if (std::string_view(k) == "password") c.out.config_has_secret = true;
            }
        for (const auto& k : {"port", "client_flags", "connection_limit"})
            if (const Node* n = host_setting(first, k); n && !trim(n->value).empty()) {
                const std::string v = trim(n->value);
                if (v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9) {
                    c.left(*n, k + std::string(" is not a number"));
                    ok = false;
                } else {
                    t += prefix + k + " = " + v + "\n";
                }
            }
        for (const auto& k : {"connect_timeout", "read_timeout", "write_timeout"})
            if (const Node* n = host_setting(first, k); n && !trim(n->value).empty()) {
                auto ms = parse_time(n->value);
                if (!ms) throw ConfError(where(*n) + ": " + n->key + ": \"" + n->value + "\" is not a time");
                t += prefix + k + " = " + duration(*ms) + "\n";
            }
        if (const Node* n = host_setting(first, "ssl"); n && yes(n->value)) {
            t += "mysql_ssl = true\n";
            for (const auto& k : {"ssl_client_ca_file", "ssl_client_ca_dir", "ssl_client_cert_file",
                                  "ssl_client_key_file", "ssl_cipher_list"})
                if (const Node* x = find(k); x && !trim(x->value).empty()) t += std::string(k) + " = " + toml(trim(x->value)) + "\n";
            if (const Node* x = find("ssl_client_require_valid_cert"); x && !yes(x->value))
                t += "ssl_client_require_valid_cert = false\n";
        }
    } else {
        if (const Node* n = host_setting(first, "connection_limit"); n && !trim(n->value).empty())
            t += "pgsql_connection_limit = " + trim(n->value) + "\n";
        // parameters { } of the (first) host block, else pgsql_parameters { } of the database or the top.
        const Node* params = nullptr;
        if (first)
            for (const auto& n : first->children)
                if (n.section && (n.key == "parameters" || n.key == "pgsql_parameters")) params = &n;
        if (!params)
            for (const auto& n : db.children)
                if (n.section && n.key == "pgsql_parameters") params = &n;
        if (!params)
            for (const auto& n : c.tree.top)
                if (n.section && n.key == "pgsql_parameters") params = &n;
        if (params) {
            t += "pgsql_parameters = { ";
            bool any = false;
            for (const auto& p : params->children) {
                if (p.section) {
                    c.left(p, "a section inside parameters is not read");
                    continue;
                }
                if (p.key == "host") {
                    c.left(p, "host inside parameters: give it as the pgsql block's name");
                    continue;
                }
                t += std::string(any ? ", " : "") + p.key + " = " + toml(p.value);
                any = true;
                if (p.key == "password") c.out.config_has_secret = true;
            }
            t += " }\n";
        }
    }
    for (const auto& [from, to] : passdb ? std::vector<std::pair<std::string, std::string>>{{"passdb_sql_query", "query"}}
                                         : std::vector<std::pair<std::string, std::string>>{
                                               {"userdb_sql_query", "query"},
                                               {"userdb_sql_iterate_query", "iterate_query"}}) {
        const Node* n = db.setting(to);
        if (!n) n = find(from);
        if (!n || trim(n->value).empty()) {
            if (to == "query") {
                c.left(db, std::string("an sql ") + (passdb ? "passdb" : "userdb") + " without query");
                ok = false;
            }
            continue;
        }
        auto v = c.vars(*n, n->value);
        if (!v) {
            ok = false;
            continue;
        }
        t += to + " = " + toml(*v) + "\n";
    }
    if (passdb) {
        const Node* scheme = find("passdb_default_password_scheme");
        if (!scheme) scheme = find("default_password_scheme");
        if (scheme && !trim(scheme->value).empty()) t += "default_password_scheme = " + toml(upper(trim(scheme->value))) + "\n";
    }
    // fields { }: Dovecot 2.4's passdb_fields / userdb_fields, the same table in postern.
    // Several fields { } blocks are one list; a name set again replaces its value.
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& block : db.children) {
        if (!block.section || block.key != "fields") continue;
        for (const auto& f : block.children) {
            if (f.section) {
                c.left(f, "a section inside fields is not read");
                ok = false;
                continue;
            }
            auto v = c.vars(f, f.value, false, true);
            if (!v) {
                ok = false;
                continue;
            }
            std::erase_if(fields, [&](const auto& x) { return x.first == f.key; });
            fields.emplace_back(f.key, std::move(*v));
        }
    }
    if (!fields.empty()) {
        t += "fields = { ";
        for (std::size_t i = 0; i < fields.size(); ++i)
            t += (i ? ", " : "") + toml(fields[i].first) + " = " + toml(fields[i].second);
        t += " }\n";
    }
    if (const Node* n = db.setting("fields_import_all"); n && !yes(n->value)) t += "fields_import_all = false\n";
    for (const auto& s : db.children) {
        if (s.section && (s.key == "fields" || s.key == driver)) continue;  // read above
        if (!s.section && s.key == "fields_import_all") continue;
        if (s.section && s.key == "pgsql_parameters" && driver == "pgsql") continue;
        if (!s.section && (s.key == "sql_driver" || s.key == "query" || s.key == "iterate_query" ||
                           s.key.starts_with(prefix) || s.key.starts_with("passdb_sql_") ||
                           s.key.starts_with("userdb_sql_") || s.key.starts_with("ssl_client_") ||
                           s.key == "ssl_cipher_list" || s.key == "default_password_scheme" ||
                           s.key == "passdb_default_password_scheme"))
            continue;
        if (handle_common(c, s, db, passdb)) continue;
        c.left(s, "not an sql setting postern has");
    }
    if (!ok) return std::nullopt;
    Db d;
    d.toml = std::move(t);
    return d;
}

std::optional<Db> pam(Ctx& c, const Node& db) {
    std::string service = "dovecot";
    bool session = false, setcred = false;
    if (const Node* args = db.setting("args")) {
        for (const auto& w : words(args->value)) {
            const auto eq = w.find('=');
            if (eq == std::string::npos) {
                service = w == "*" ? "%s" : w;
                continue;
            }
            const std::string k = w.substr(0, eq), v = w.substr(eq + 1);
            if (k == "session") session = yes(v);
            else if (k == "setcred") setcred = yes(v);
            else if (k == "max_requests" || k == "failure_show_msg" || k == "cache_key") continue;
            else c.left(*args, "pam option " + k + "= is not served");
        }
    }
    if (const Node* s = db.setting("service_name")) service = s->value;
    if (const Node* s = db.setting("session")) session = yes(s->value);
    if (const Node* s = db.setting("setcred")) setcred = yes(s->value);
    auto svc = c.vars(db, service);
    if (!svc) return std::nullopt;
    Db d;
    d.toml = "driver = \"pam\"\nservice = " + toml(*svc) + "\n";
    if (session) d.toml += "session = true\n";
    if (setcred) d.toml += "setcred = true\n";
    for (const auto& s : db.children) {
        if (handle_common(c, s, db, true)) continue;
        if (s.key == "service_name" || s.key == "session" || s.key == "setcred" || s.key == "max_requests" ||
            s.key == "failure_show_msg")
            continue;
        c.left(s, "not a pam setting postern has");
    }
    return d;
}

std::optional<Db> static_userdb(Ctx& c, const Node& db) {
    std::vector<std::string> fields;
    bool allow_all = false;
    auto add = [&](const Node& at, const std::string& k, const std::string& v) -> bool {
        auto x = c.vars(at, v);
        if (!x) return false;
        fields.push_back(k + "=" + *x);
        return true;
    };
    if (const Node* args = db.setting("args")) {
        for (const auto& w : words(args->value)) {
            const auto eq = w.find('=');
            const std::string k = w.substr(0, eq), v = eq == std::string::npos ? "" : w.substr(eq + 1);
            if (k == "allow_all_users") allow_all = yes(v);
            else if (!add(*args, k, v)) return std::nullopt;
        }
    }
    for (const auto& s : db.children) {
        if (s.section && s.key == "fields") {
            for (const auto& f : s.children)
                if (!f.section && !add(f, f.key, f.value)) return std::nullopt;
            continue;
        }
        if (s.key == "allow_all_users") {
            allow_all = yes(s.value);
            continue;
        }
        if (handle_common(c, s, db, false)) continue;
        c.left(s, "not a static userdb setting postern has");
    }
    if (fields.empty()) {
        c.left(db, "a static userdb without fields");
        return std::nullopt;
    }
    Db d;
    d.toml = "driver = \"static\"\nfields = " + str_list(fields) + "\n";
    if (allow_all) d.toml += "allow_all_users = true\n";
    return d;
}

std::optional<Db> plain_driver(Ctx& c, const Node& db, const std::string& driver) {
    Db d;
    d.toml = "driver = " + toml(driver) + "\n";
    for (const auto& s : db.children) {
        if (handle_common(c, s, db, false)) continue;
        c.left(s, "not a " + driver + " setting postern has");
    }
    if (const Node* a = db.setting("args"); a && !trim(a->value).empty()) c.left(*a, "args of " + driver + " are not served");
    return d;
}

std::optional<Db> database(Ctx& c, const Node& db, bool passdb) {
    std::string driver;
    if (const Node* d = db.setting("driver")) driver = lowercase(d->value);
    else if (c.tree.is_24()) driver = lowercase(db.name);
    if (driver.empty()) {
        c.left(db, "no driver");
        return std::nullopt;
    }
    if (driver == "passwd-file") return passwd_file(c, db, passdb);
    if (driver == "ldap" && c.tree.is_24() && !db.setting("args")) return ldap_inline(c, db, passdb);
    if (driver == "sql" && c.tree.is_24() && !db.setting("args")) return sql_inline(c, db, passdb);
    if (driver == "sql" || driver == "ldap") return settings_file_db(c, db, driver, passdb);
    if (passdb) {
        if (driver == "pam") return pam(c, db);
        if (driver == "shadow" || driver == "passwd")
            c.left(db, "driver " + driver + ": use a pam passdb (pam_unix reads /etc/shadow in postern's root workers)");
        else if (driver == "static")
            c.left(db, "static passdbs (one password for everyone, or nopassword) are not served");
        else
            c.left(db, "passdb driver " + driver + " is not served (passwd-file, sql, ldap and pam are)");
        return std::nullopt;
    }
    if (driver == "static") return static_userdb(c, db);
    if (driver == "prefetch") return plain_driver(c, db, "prefetch");
    if (driver == "passwd") return plain_driver(c, db, "passwd");
    c.left(db, "userdb driver " + driver + " is not served (passwd-file, sql, ldap, static, passwd and prefetch are)");
    return std::nullopt;
}

struct Listener {
    std::string toml;
};

// Dovecot's own auth sockets and their defaults (doveconf -d).
struct DefaultSocket {
    const char* name;
    const char* role;
    const char* mode;
    const char* user;
};
constexpr DefaultSocket kDefaultSockets[] = {
    {"auth-client", "client", "0600", "$default_internal_user"},
    {"auth-login", "login", "0600", "$default_internal_user"},
    {"auth-master", "master", "0600", ""},
    {"auth-userdb", "userdb", "0666", "$default_internal_user"},
    {"login/login", "login", "0666", ""},
};

std::string role_from_name(const std::string& path) {
    std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    if (name == "auth-client") return "client";
    if (name == "auth-login" || name == "login") return "login";
    if (name == "auth-master") return "master";
    if (name == "auth-userdb") return "userdb";
    const auto dash = name.rfind('-');
    const std::string suffix = dash == std::string::npos ? "" : name.substr(dash + 1);
    if (suffix == "login") return "login";
    if (suffix == "master") return "master";
    if (suffix == "userdb") return "userdb";
    return "client";
}

std::optional<Listener> listener(Ctx& c, const Node& l) {
    Listener out;
    if (l.key == "inet_listener") {
        const Node* port = l.setting("port");
        const Node* addr = l.setting("address");
        if (!port || trim(port->value) == "0") return std::nullopt;
        std::string host = addr ? words(addr->value, " \t,").empty() ? "" : words(addr->value, " \t,")[0] : "";
        if (host.empty() || host == "*") host = "0.0.0.0";
        if (host == "::" || host == "[::]") host = "[::]";
        out.toml = "type = \"tcp\"\naddress = " + toml(host + ":" + trim(port->value)) + "\nrole = \"client\"\n";
        for (const auto& s : l.children)
            if (s.key != "port" && s.key != "address") c.left(s, "not carried for a TCP listener");
        return out;
    }
    if (l.key != "unix_listener") {
        c.left(l, "only unix_listener and inet_listener are carried over");
        return std::nullopt;
    }
    // 2.3 names the socket by its path; 2.4 may give a path apart from the name.
    std::string given = l.name;
    if (const Node* p = l.setting("path")) given = p->value;
    const std::string path = given.empty() ? "" : given.front() == '/' ? given : c.base_dir + "/" + given;
    if (path.empty()) {
        c.left(l, "a unix_listener without a path");
        return std::nullopt;
    }
    const DefaultSocket* def = nullptr;
    for (const auto& d : kDefaultSockets)
        if (l.name == d.name) def = &d;
    std::string role = role_from_name(l.name);
    std::string mode = def ? def->mode : "0600";
    // $default_internal_user / $default_internal_group (both "dovecot" unless set).
    const Node* internal_user = c.top("default_internal_user");
    const Node* internal_group = c.top("default_internal_group");
    std::string user = def && *def->user ? (internal_user ? trim(internal_user->value) : "dovecot") : "";
    std::string group = def && c.tree.is_24() && std::string(def->name) == "auth-userdb"
                            ? (internal_group ? trim(internal_group->value) : "dovecot")
                            : "";
    for (const auto& s : l.children) {
        if (s.key == "type") {
            const std::string t = lowercase(s.value);
            if (t == "auth" || t == "client") role = "client";
            else if (t == "login") role = "login";
            else if (t == "master") role = "master";
            else if (t == "userdb") role = "userdb";
            else {
                c.left(s, "listener type " + s.value + " is not served");
                return std::nullopt;
            }
        } else if (s.key == "mode") {
            mode = trim(s.value);
            if (mode == "0") {
                c.note(s, "mode 0: the socket was switched off; not carried over");
                return std::nullopt;
            }
            if (mode.size() < 4) mode.insert(0, 4 - mode.size(), '0');
        } else if (s.key == "user") {
            user = s.value;
        } else if (s.key == "group") {
            group = s.value;
        } else if (s.key == "path") {
            continue;
        } else {
            c.left(s, "not carried for a unix listener");
        }
    }
    if (path.size() >= 108) {
        c.left(l, "socket path longer than 107 bytes");
        return std::nullopt;
    }
    out.toml = "type = \"unix\"\npath = " + toml(path) + "\nmode = " + toml(mode) + "\n";
    if (!user.empty()) out.toml += "user = " + toml(user) + "\n";
    if (!group.empty()) out.toml += "group = " + toml(group) + "\n";
    out.toml += "role = " + toml(role) + "\n";
    return out;
}

// Settings of the top level that say nothing about authentication, or that
// postern does on its own; everything else starting with auth_ is listed.
bool auth_setting_ignored(const std::string& k) {
    static const std::set<std::string> kIgnored = {
        "auth_verbose", "auth_verbose_passwords", "auth_debug", "auth_debug_passwords", "auth_worker_max_count",
        "auth_cache_verify_password_with_worker", "auth_internal_failure_delay", "auth_socket_path",
        "auth_ssl_require_client_cert", "auth_ssl_username_from_cert", "auth_stats", "auth_proxy_self",
        "auth_gssapi_hostname", "auth_krb5_keytab", "auth_winbind_helper_path", "auth_use_winbind",
        "auth_policy_hash_mech", "auth_policy_hash_nonce", "auth_policy_hash_truncate", "auth_policy_reject_on_fail",
        "auth_policy_request_attributes", "auth_policy_check_before_auth", "auth_policy_check_after_auth",
        "auth_policy_report_after_auth", "auth_policy_log_only", "auth_policy_server_api_header",
        "auth_policy_server_timeout_msecs", "auth_mechanisms", "auth_username_format", "auth_failure_delay",
        "auth_cache_size", "auth_cache_ttl", "auth_cache_negative_ttl", "auth_master_user_separator",
        "auth_realms", "auth_anonymous_username", "auth_allow_cleartext", "auth_cache_ignore_case",
        "auth_worker_max_request_count", "auth_verbose_passwords", "auth_username_chars", "auth_allow_weak_schemes",
    };
    return kIgnored.count(k) != 0;
}

}  // namespace

bool to_postern_vars(const std::string& in, std::string& out, bool ldap_attrs, bool sql_fields) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%' || i + 1 >= in.size() || in[i + 1] != '{') {
            out += in[i];
            if (in[i] == '%' && i + 1 < in.size()) out += in[++i];  // %u, %Lu, %% kept
            continue;
        }
        const auto close = in.find('}', i);
        if (close == std::string::npos) return false;
        std::vector<std::string> parts;
        for (auto& p : words(in.substr(i + 2, close - i - 2), "|")) parts.push_back(trim(p));
        if (parts.empty()) return false;
        const std::string var = parts[0];
        std::string letter;
        std::string mod;
        std::size_t k = 1;
        if (var == "user" || var == "u") {
            letter = "u";
            if (k < parts.size() && parts[k] == "username") letter = "n", ++k;
            else if (k < parts.size() && parts[k] == "domain") letter = "d", ++k;
        } else if (var == "service" || var == "protocol") {
            letter = "s";
        } else if (var == "home") {
            letter = "h";
        } else if (var == "local_ip") {
            letter = "l";
        } else if (var == "remote_ip") {
            letter = "r";
        } else if (var == "domain") {
            letter = "d";
        } else if (var == "username") {
            letter = "n";
        } else if ((sql_fields && (var.starts_with("sql:") || var.starts_with("passdb:") || var.starts_with("userdb:"))) ||
                   var.starts_with("literal(") || var.starts_with("concat(") || var.starts_with("if(")) {
            // A column or field of the row, or a pipeline that starts with a filter.
            std::string kept = "%{" + var;
            for (std::size_t f = 1; f < parts.size(); ++f) {
                if (!util::is_filter_name(trim(std::string_view(parts[f]).substr(0, parts[f].find('(')))))
                    return false;
                kept += " | " + parts[f];
            }
            out += kept + "}";
            i = close;
            continue;
        } else if (var == "password" || var == "master_user" || var == "session" ||
                   (ldap_attrs && (var.starts_with("ldap:") || var.starts_with("ldap_multi:")))) {
            out += "%{" + var + "}";
            i = close;
            if (parts.size() > 1) return false;
            continue;
        } else {
            return false;
        }
        bool letters = true;
        for (std::size_t f = k; f < parts.size(); ++f) {
            if (parts[f] == "lower" && mod.empty()) mod = "L";
            else if (parts[f] == "upper" && mod.empty()) mod = "U";
            else letters = false;
        }
        if (letters) {
            out += "%" + mod + letter;
        } else {
            // Filters 2.3's letters cannot say (md5, truncate(8), ...): kept in
            // 2.4's form, which postern expands too, if it knows each filter.
            // The variable by the long name postern knows it by (lip for local_ip).
            std::string kept = "%{" + std::string(util::short_var_name(letter[0]));
            for (std::size_t f = k; f < parts.size(); ++f) {
                if (!util::is_filter_name(trim(std::string_view(parts[f]).substr(0, parts[f].find('(')))))
                    return false;
                kept += " | " + parts[f];
            }
            out += kept + "}";
        }
        i = close;
    }
    return true;
}

Output translate(const Tree& tree, const std::string& source, const std::string& files_dir) {
    Output out;
    Ctx c{tree, out, tree.is_24() ? "/run/dovecot" : "/var/run/dovecot", files_dir};
    if (const Node* b = c.top("base_dir")) c.base_dir = b->value;

    // [auth]
    std::vector<std::string> mechs;
    bool want_anonymous = false;
    const Node* mech_node = c.top("auth_mechanisms");
    for (auto m : words(mech_node ? mech_node->value : "plain", " \t,")) {
        m = upper(m);
        if (std::find(std::begin(kMechs), std::end(kMechs), m) == std::end(kMechs)) {
            c.left(*mech_node, m + " is not served");
            continue;
        }
        if (m == "ANONYMOUS") want_anonymous = true;
        if (std::find(mechs.begin(), mechs.end(), m) == mechs.end()) mechs.push_back(m);
    }
    if (mechs.empty()) throw ConfError(where(*mech_node) + ": auth_mechanisms: no mechanism left that postern serves");
    std::string t;
    t += "# postern.conf made by `postern config import --from " + source + "` (Dovecot " +
         (tree.is_24() ? tree.version : std::string("2.3")) + " configuration).\n\n";
    t += "[auth]\nmechanisms = " + str_list(mechs) + "\n";
    std::string fmt = "%Lu";
    if (const Node* f = c.top("auth_username_format")) {
        if (auto v = c.vars(*f, f->value)) fmt = *v;
    }
    t += "username_format = " + toml(fmt) + "\n";
    long long delay_ms = 2000;
    if (const Node* d = c.top("auth_failure_delay")) {
        auto ms = parse_time(d->value);
        if (!ms) throw ConfError(where(*d) + ": auth_failure_delay: \"" + d->value + "\" is not a time");
        if (*ms > 60000) {
            c.left(*d, "more than postern's limit of 60s; 60s used");
            *ms = 60000;
        }
        delay_ms = *ms;
    }
    t += "failure_delay = " + duration(delay_ms) + "\n";
    // Dovecot 2.4 refuses logins with weak hashes (MD5-CRYPT, PLAIN...) unless
    // auth_allow_weak_schemes = yes; 2.3 accepts them all.
    if (tree.is_24()) {
        const Node* w = c.top("auth_allow_weak_schemes");
        t += std::string("weak_schemes = ") + (w && yes(w->value) ? "\"allow\"" : "\"refuse\"") + "\n";
    } else {
        t += "weak_schemes = \"allow\"\n";
    }
    if (want_anonymous) {
        const Node* a = c.top("auth_anonymous_username");
        t += "anonymous_user = " + toml(a ? a->value : "anonymous") + "\n";
    }
    if (const Node* r = c.top("auth_realms"); r && !trim(r->value).empty())
        t += "realms = " + str_list(words(r->value)) + "\n";
    for (const char* k : {"auth_default_realm", "auth_default_domain"})
        if (const Node* r = c.top(k); r && !trim(r->value).empty())
            c.left(*r, "postern does not append a default domain to names without one");
    if (const Node* u = c.top("auth_username_chars"); u && !trim(u->value).empty())
        c.note(*u, "auth_username_chars: postern accepts any name without control characters up to "
                   "max_username_length (256) bytes");
    if (const Node* u = c.top("auth_username_translation"); u && !trim(u->value).empty())
        c.left(*u, "character translation of user names is not served");
    if (const Node* p = c.top("auth_policy_server_url"); p && !trim(p->value).empty())
        c.left(*p, "an auth policy server (weakforced) is not consulted");
    for (const auto& n : tree.top)
        if (!n.section && n.key.starts_with("auth_") && !auth_setting_ignored(n.key) &&
            n.key != "auth_default_realm" && n.key != "auth_default_domain" && n.key != "auth_username_translation" &&
            n.key != "auth_policy_server_url" && !trim(n.value).empty())
            c.left(n, "not carried over");

    // Passdbs, userdbs; master passdbs apart.
    std::vector<Db> passdbs, masters, userdbs;
    bool master_without_pass = false;
    for (const auto& n : tree.top) {
        if (!n.section) continue;
        if (n.key == "passdb" || n.key == "userdb") {
            const bool passdb = n.key == "passdb";
            auto d = database(c, n, passdb);
            if (!d) continue;
            const Node* m = n.setting("master");
            if (passdb && m && yes(m->value)) {
                const Node* pass = n.setting("pass");
                const Node* rs = n.setting("result_success");
                if (!(pass && yes(pass->value)) && !(rs && lowercase(rs->value) == "continue")) {
                    master_without_pass = true;
                    c.note(n, "master passdb without pass = yes (2.4: result_success = continue): postern still "
                              "checks that the target user exists in the passdbs");
                }
                masters.push_back(std::move(*d));
            } else {
                (passdb ? passdbs : userdbs).push_back(std::move(*d));
            }
        } else if (n.key == "protocol" || n.key == "local" || n.key == "remote" || n.key == "local_name") {
            for (const auto& s : n.children)
                if ((s.section && (s.key == "passdb" || s.key == "userdb")) ||
                    (!s.section && s.key.starts_with("auth_")))
                    c.left(s, "applies only within " + n.key + " " + n.name + " (postern has no per-" + n.key +
                                  " settings)");
        }
    }
    (void)master_without_pass;
    if (passdbs.empty()) {
        std::string why = tree.main_file + ": no passdb could be carried over:";
        for (const auto& l : out.not_carried) why += "\n  not carried over: " + l;
        throw ConfError(why);
    }

    std::string sep;
    if (const Node* s = c.top("auth_master_user_separator"); s && !s->value.empty()) {
        if (s->value.size() != 1) c.left(*s, "postern's separator is one character");
        else if (masters.empty()) c.left(*s, "no master passdb was carried over");
        else sep = s->value;
    }
    if (!sep.empty()) t += "master_user_separator = " + toml(sep) + "\n";
    t += "\n";

    // [cache]: Dovecot's is off unless auth_cache_size is set.
    const Node* size = c.top("auth_cache_size");
    std::optional<long long> bytes = size ? parse_size(size->value) : 0LL;
    if (!bytes) throw ConfError(where(*size) + ": auth_cache_size: \"" + size->value + "\" is not a size");
    if (*bytes == 0) {
        t += "# auth_cache_size = 0: Dovecot's cache was off.\n[cache]\nenabled = false\n\n";
    } else {
        t += "[cache]\nsize = " + std::to_string(std::max(*bytes, 4096LL)) + "\n";
        for (const auto& [key, dflt] : {std::pair<const char*, const char*>{"auth_cache_ttl", "ttl"},
                                        {"auth_cache_negative_ttl", "negative_ttl"}}) {
            long long ms = 3600000;
            if (const Node* n = c.top(key)) {
                auto v = parse_time(n->value);
                if (!v) throw ConfError(where(*n) + ": " + key + ": \"" + n->value + "\" is not a time");
                ms = *v;
            }
            t += std::string(dflt) + " = " + duration(ms) + "\n";
        }
        t += "\n";
    }

    // [penalty]: Dovecot's anvil penalty (2 s doubling to 15 s); mode = 0 on
    // anvil-auth-penalty is how Dovecot's documentation switches it off.
    bool penalty = true;
    for (const auto& n : tree.top) {
        if (!n.section || n.key != "service" || n.name != "anvil") continue;
        for (const auto& l : n.children)
            if (l.section && l.key == "unix_listener" && l.name == "anvil-auth-penalty")
                if (const Node* m = l.setting("mode"); m && (trim(m->value) == "0" || trim(m->value) == "0000")) {
                    penalty = false;
                    c.note(*m, "the brute-force penalty was switched off (anvil-auth-penalty mode 0)");
                }
    }
    if (penalty) {
        t += "[penalty]\nbase = \"2s\"\nmax = \"15s\"\n";
        if (const Node* tn = c.top("login_trusted_networks"); tn && !trim(tn->value).empty()) {
            t += "exempt = " + str_list(words(tn->value, " \t,")) + "\n";
        } else {
            t += "exempt = []\n";
        }
        t += "\n";
    } else {
        t += "[penalty]\nenabled = false\n\n";
    }

    // Sockets of service auth: Dovecot's default ones (auth-client,
    // auth-login, auth-master, auth-userdb under base_dir) unless the config
    // names them itself, then the config's own.
    std::vector<Listener> listeners;
    std::vector<const Node*> given;
    for (const auto& n : tree.top) {
        if (!n.section || n.key != "service" || n.name != "auth") continue;
        for (const auto& l : n.children)
            if (l.section) given.push_back(&l);
    }
    for (const auto& d : kDefaultSockets) {
        const bool named = std::any_of(given.begin(), given.end(), [&](const Node* l) {
            return l->key == "unix_listener" && l->name == d.name;
        });
        if (named) continue;
        if (std::string_view(d.name) == "login/login") {
            out.notes.push_back(tree.main_file + ": Dovecot's login/login socket (for its own login processes, in " +
                                c.base_dir + "/login) is left out");
            continue;
        }
        Node implicit;
        implicit.section = true;
        implicit.key = "unix_listener";
        implicit.name = d.name;
        implicit.file = tree.main_file;
        if (auto x = listener(c, implicit)) listeners.push_back(std::move(*x));
    }
    for (const Node* l : given)
        if (auto x = listener(c, *l)) listeners.push_back(std::move(*x));
    for (const auto& l : listeners) t += "[[listener]]\n" + l.toml + "\n";
    for (const auto& d : passdbs) t += "[[passdb]]\n" + d.toml + "\n";
    for (const auto& d : masters) t += "[[master_passdb]]\n" + d.toml + "\n";
    for (const auto& d : userdbs) t += "[[userdb]]\n" + d.toml + "\n";
    out.config = std::move(t);
    return out;
}

}  // namespace postern::cli::dovecot
