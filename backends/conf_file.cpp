// Dovecot-style settings file reader, shared by the sql and ldap backends.
#include "backends/conf_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace postern::backend::conf {

namespace {

// A settings file larger than this is a mistake, not a configuration.
constexpr std::size_t kMaxFileSize = 1 << 20;
// !include depth limit (a file including itself).
constexpr int kMaxIncludeDepth = 8;

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// The whole file, or nullopt when it cannot be opened (errno says why).
std::optional<std::string> slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return std::nullopt;
    std::ostringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    if (text.size() > kMaxFileSize) fail_at(path, 0, "", "file too large");
    return text;
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

void parse_into(std::string_view text, const std::string& name, std::vector<RawSetting>& out, int depth);

void include_file(const std::string& from, long line, std::string target, bool optional,
                  std::vector<RawSetting>& out, int depth) {
    if (target.size() >= 2 && (target.front() == '"' || target.front() == '\''))
        target = target.substr(1, target.size() - 2);
    if (target.empty()) fail_at(from, line, "!include", "missing file name");
    if (target.front() != '/') target = dir_of(from) + "/" + target;
    if (depth >= kMaxIncludeDepth) fail_at(from, line, "!include", "includes nested too deep");
    auto inner = slurp(target);
    if (!inner) {
        if (optional) return;
        fail_at(from, line, "!include", "cannot open " + target + ": " + std::strerror(errno));
    }
    parse_into(*inner, target, out, depth + 1);
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
        // A trailing backslash continues the line (pass_attrs = \ ...); at
        // the end of the file it is dropped.
        for (;;) {
            std::string t = trim(line);
            if (t.empty() || t.back() != '\\' || pos > text.size()) break;
            t.pop_back();
            if (pos >= text.size()) {
                line = t;
                break;
            }
            auto nl2 = text.find('\n', pos);
            if (nl2 == std::string_view::npos) nl2 = text.size();
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
            include_file(name, first_line, trim(std::string_view(t).substr(optional ? 12 : 8)), optional, out, depth);
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

}  // namespace

void fail_at(const std::string& file, long line, const std::string& key, const std::string& msg) {
    throw config::ConfigError(file, line, key, msg);
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

long KeyLines::line_of(std::string_view key) const {
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
    auto text = slurp(path);
    if (!text) fail_at(path, 0, "", std::string("cannot open: ") + std::strerror(errno));
    return parse_settings_text(*text, path);
}

}  // namespace postern::backend::conf
