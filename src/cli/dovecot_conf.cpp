// Dovecot configuration reader (doc.dovecot.org "Configuration file syntax",
// 2.3 and 2.4): see dovecot_conf.hpp.
#include "cli/dovecot_conf.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace postern::cli::dovecot {

const Node* Node::setting(const std::string& k) const {
    const Node* found = nullptr;
    for (const auto& c : children)
        if (!c.section && c.key == k) found = &c;
    return found;
}

namespace {

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string relative_to(const std::string& including_file, const std::string& path) {
    if (!path.empty() && path.front() == '/') return path;
    return dir_of(including_file) + "/" + path;
}

// Sections Dovecot 2.3 and 2.4 accept at the top level (filters and named
// lists); anything else is "Unknown section name", as doveconf says.
constexpr const char* kTopSections[] = {
    "service", "protocol", "local", "remote", "local_name", "passdb", "userdb", "namespace", "plugin",
    "dict", "dict_server", "dict_map", "mysql", "pgsql", "sqlite", "cassandra", "metric", "event_exporter",
    "fs", "language", "mail_plugins", "mail_attribute", "mailbox", "quota", "quota_clone", "sieve_script",
    "oauth2", "fts", "acl", "push_notification", "imapc", "doveadm", "ssl_client", "ssl_server",
    "auth_policy", "http_client", "lmtp", "submission_relay", "lua", "mail_lua", "settings",
    "replication", "ldap", "event", "log_debug", "userdb_ldap", "passdb_ldap", "userdb_lua", "passdb_lua",
    "mail_crypt", "fts_solr", "fts_flatcurve", "sieve", "imap_urlauth", "quota_root", "mail_log",
    "welcome", "virtual", "notify_status", "last_login", "lazy_expunge", "auth_oauth2", "mail_compress",
    "fs_compress", "fs_crypt", "fs_dict", "fs_posix", "fs_server", "charset_alias", "pop3c", "smtp",
    "sieve_imapsieve", "imapsieve", "sieve_extprograms", "mail_attachment", "trash", "dict_proxy",
    "dict_redis", "dict_ldap", "dict_file", "dict_sql", "auth", "ssl", "master",
};

// Settings doveconf knows before anything is written, so `$default_internal_user`
// works without the file setting it.
std::map<std::string, std::string> defaults(bool v24) {
    return {{"default_internal_user", "dovecot"}, {"default_internal_group", "dovecot"},
            {"default_login_user", "dovenull"},   {"base_dir", v24 ? "/run/dovecot" : "/var/run/dovecot"},
            {"mail_plugins", ""},                 {"protocols", "imap pop3 lmtp"},
            {"state_dir", "/var/lib/dovecot"},    {"auth_mechanisms", "plain"}};
}

struct Reader {
    const std::map<std::string, std::string>& env;
    std::map<std::string, std::string> set;  // settings seen so far, for $var
    std::vector<std::string> chain;          // files being read, outermost first (real paths)
    Tree tree;
    std::vector<Node*> stack;                // open sections
    std::vector<std::pair<std::string, long>> opened;  // where each open section began
    std::size_t total_bytes = 0;

    [[noreturn]] static void fail(const std::string& file, long line, const std::string& msg) {
        throw ConfError(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + msg);
    }

    std::string read_whole(const std::string& path, const std::string& from_file, long from_line) {
        struct stat st{};
        if (::stat(path.c_str(), &st) != 0) fail(from_file, from_line, path + ": " + std::strerror(errno));
        if (S_ISDIR(st.st_mode)) fail(from_file, from_line, path + ": is a directory");
        std::ifstream in(path, std::ios::binary);
        if (!in) fail(from_file, from_line, path + ": cannot read: " + std::strerror(errno));
        std::ostringstream ss;
        ss << in.rdbuf();
        if (in.bad()) fail(from_file, from_line, path + ": cannot read: " + std::strerror(errno));
        std::string text = ss.str();
        total_bytes += text.size();
        if (total_bytes > kMaxFileBytes)
            fail(from_file, from_line, path + ": the configuration is larger than " + std::to_string(kMaxFileBytes) +
                                           " bytes");
        return text;
    }

    void add(Node n) {
        if (stack.empty()) tree.top.push_back(std::move(n));
        else stack.back()->children.push_back(std::move(n));
    }

    // $name / $SET:name / $ENV:name words of a value, as doveconf expands them.
    std::string expand(const std::string& v, const std::string& file, long line, const std::string& key) {
        std::string out;
        std::size_t i = 0;
        while (i < v.size()) {
            const bool word_start = i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t' || v[i - 1] == ',';
            if (v[i] != '$' || !word_start || i + 1 >= v.size() ||
                !(std::isalpha(static_cast<unsigned char>(v[i + 1])) || v[i + 1] == '_')) {
                out += v[i++];
                continue;
            }
            std::size_t e = i + 1;
            while (e < v.size() && (std::isalnum(static_cast<unsigned char>(v[e])) || v[e] == '_' || v[e] == ':' ||
                                    v[e] == '/'))
                ++e;
            std::string name = v.substr(i + 1, e - i - 1);
            if (name.starts_with("ENV:")) {
                auto it = env.find(name.substr(4));
                out += it == env.end() ? std::string() : it->second;
            } else {
                if (name.starts_with("SET:")) name = name.substr(4);
                auto it = set.find(name);
                if (it == set.end()) fail(file, line, key + ": unknown setting $" + name + " in the value");
                out += it->second;
            }
            i = e;
        }
        return out;
    }

    // A value after '=': quoted, <file, or plain with $vars.
    std::string value_of(std::string raw, const std::string& file, long line, const std::string& key) {
        raw = trim(raw);
        if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
            const char q = raw.front();
            std::string out;
            std::size_t i = 1;
            for (; i < raw.size() && raw[i] != q; ++i) {
                if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
                out += raw[i];
            }
            if (i >= raw.size()) fail(file, line, key + ": unterminated quote");
            if (!trim(std::string_view(raw).substr(i + 1)).empty())
                fail(file, line, key + ": text after the closing quote");
            return out;
        }
        if (!raw.empty() && raw.front() == '<') {
            const std::string path = relative_to(file, trim(std::string_view(raw).substr(1)));
            std::string text = read_whole(path, file, line);
            while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
            return text;
        }
        return expand(raw, file, line, key);
    }

    // The part of `line` before a '#' that is outside quotes.
    static std::string strip_comment(const std::string& line) {
        char q = 0;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const char c = line[i];
            if (q) {
                if (c == '\\') ++i;
                else if (c == q) q = 0;
            } else if (c == '"' || c == '\'') {
                q = c;
            } else if (c == '#') {
                return line.substr(0, i);
            }
        }
        return line;
    }

    void include(const std::string& pattern, bool try_only, const std::string& file, long line) {
        const std::string full = relative_to(file, pattern);
        glob_t g{};
        const int rc = ::glob(full.c_str(), GLOB_BRACE, nullptr, &g);
        std::unique_ptr<glob_t, void (*)(glob_t*)> guard(&g, ::globfree);
        if (rc == GLOB_NOMATCH) {
            if (try_only) return;
            fail(file, line, "!include " + pattern + ": " +
                                 (full.find_first_of("*?[") == std::string::npos ? std::string("no such file")
                                                                                 : std::string("no file matches")));
        }
        if (rc != 0) fail(file, line, "!include " + pattern + ": cannot list");
        std::vector<std::string> paths(g.gl_pathv, g.gl_pathv + g.gl_pathc);
        std::sort(paths.begin(), paths.end());
        for (const auto& p : paths) {
            struct stat st{};
            if (try_only && ::stat(p.c_str(), &st) != 0) continue;
            char real[PATH_MAX];
            if (::realpath(p.c_str(), real) && std::find(chain.begin(), chain.end(), real) != chain.end())
                fail(file, line, "!include " + pattern + ": include loop (" + p + " is already being read)");
            read_file(p, file, line);
        }
    }

    void read_file(const std::string& path, const std::string& from_file, long from_line) {
        char real[PATH_MAX];
        const std::string id = ::realpath(path.c_str(), real) ? std::string(real) : path;
        if (std::find(chain.begin(), chain.end(), id) != chain.end())
            fail(from_file, from_line, "!include " + path + ": include loop (already being read)");
        if (static_cast<int>(chain.size()) >= kMaxIncludeDepth)
            fail(from_file, from_line, "!include " + path + ": includes nested too deep");
        const std::string text = read_whole(path, from_file, from_line);
        chain.push_back(id);
        const std::size_t depth_at_start = stack.size();
        std::istringstream in(text);
        std::string raw;
        long n = 0;
        std::string joined;
        long first = 0;
        while (std::getline(in, raw)) {
            ++n;
            if (!raw.empty() && raw.back() == '\r') raw.pop_back();
            if (raw.find('\0') != std::string::npos) fail(path, n, "NUL byte in the line");
            std::string t = trim(raw);
            if (joined.empty() && (t.empty() || t.front() == '#')) continue;
            if (!t.empty() && t.back() == '\\') {
                if (joined.empty()) first = n;
                t.pop_back();
                joined += trim(t) + " ";
                continue;
            }
            long at = n;
            if (!joined.empty()) {
                t = joined + t;
                at = first;
                joined.clear();
            }
            line(path, at, trim(strip_comment(t)));
        }
        if (!joined.empty()) line(path, first, trim(strip_comment(joined)));
        if (stack.size() > depth_at_start)
            fail(opened.back().first, opened.back().second,
                 "section " + stack.back()->key + " is not closed ('}' missing before the end of " + path + ")");
        chain.pop_back();
    }

    void line(const std::string& file, long n, const std::string& t) {
        if (t.empty()) return;
        if (t.starts_with("!include_try") || t.starts_with("!include")) {
            const bool try_only = t.starts_with("!include_try");
            std::string arg = trim(std::string_view(t).substr(try_only ? 12 : 8));
            if (!arg.empty() && (arg.front() == '"' || arg.front() == '\'')) arg = value_of(arg, file, n, "!include");
            if (arg.empty()) fail(file, n, "!include without a file");
            include(arg, try_only, file, n);
            return;
        }
        if (t == "}") {
            if (stack.empty() || opened.back().first != file)
                fail(file, n, "'}' without an open section");
            stack.pop_back();
            opened.pop_back();
            return;
        }
        const auto eq = t.find('=');
        if (t.back() == '{' && eq == std::string::npos) {
            // section: key [name] {
            std::string head = trim(std::string_view(t).substr(0, t.size() - 1));
            Node s;
            s.section = true;
            s.file = file;
            s.line = n;
            const auto sp = head.find_first_of(" \t");
            s.key = head.substr(0, sp);
            if (sp != std::string::npos) {
                std::string name = trim(std::string_view(head).substr(sp));
                if (!name.empty() && (name.front() == '"' || name.front() == '\'')) name = value_of(name, file, n, s.key);
                s.name = name;
            }
            if (s.key.empty()) fail(file, n, "section without a name");
            if (stack.empty() &&
                std::find_if(std::begin(kTopSections), std::end(kTopSections),
                             [&s](const char* k) { return s.key == k; }) == std::end(kTopSections))
                fail(file, n, "unknown section \"" + s.key + "\"");
            add(std::move(s));
            auto& list = stack.empty() ? tree.top : stack.back()->children;
            stack.push_back(&list.back());
            opened.emplace_back(file, n);
            return;
        }
        if (eq == std::string::npos || eq == 0)
            fail(file, n, "expected \"key = value\", \"name {\", \"}\" or !include");
        Node s;
        s.key = trim(std::string_view(t).substr(0, eq));
        s.file = file;
        s.line = n;
        if (s.key.find_first_of(" \t") != std::string::npos) fail(file, n, "\"" + s.key + "\": a key has no spaces");
        s.value = value_of(t.substr(eq + 1), file, n, s.key);
        if (stack.empty()) {
            set[s.key] = s.value;
            if (s.key == "dovecot_config_version") {
                if (!tree.top.empty() &&
                    std::any_of(tree.top.begin(), tree.top.end(), [](const Node& x) { return x.section; }))
                    fail(file, n, "dovecot_config_version must come before any section");
                tree.version = s.value;
            }
        } else {
            // A section's settings are also $-referable by their full name (service/auth/user).
            set[stack.back()->key + "_" + s.key] = s.value;
        }
        add(std::move(s));
    }
};

}  // namespace

Tree read(const std::string& path, const std::map<std::string, std::string>& env) {
    std::string file = path;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) throw ConfError(path + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) file = path + (path.ends_with("/") ? "" : "/") + "dovecot.conf";
    Reader r{env, {}, {}, {}, {}, {}, 0};
    // The version decides the defaults; look for it before reading properly.
    {
        std::ifstream in(file);
        std::string l;
        while (std::getline(in, l))
            if (trim(l).starts_with("dovecot_config_version")) {
                r.set = defaults(true);
                break;
            }
        if (r.set.empty()) r.set = defaults(false);
    }
    r.tree.main_file = file;
    r.read_file(file, file, 0);
    return std::move(r.tree);
}

}  // namespace postern::cli::dovecot
