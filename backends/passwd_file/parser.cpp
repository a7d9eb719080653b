// passwd-file parser.
#include "backends/passwd_file/parser.hpp"

#include <grp.h>
#include <pwd.h>

#include <vector>

#include "util/encoding.hpp"

namespace postern::backend::passwd_file {
namespace {

std::vector<std::string_view> split_colons(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const auto c = line.find(':', start);
        if (c == std::string_view::npos) {
            out.push_back(line.substr(start));
            return out;
        }
        out.push_back(line.substr(start, c - start));
        start = c + 1;
    }
}

bool resolve_id(std::string_view text, bool group, IdResolver resolver, std::string& out) {
    if (text.empty()) return true;
    if (auto n = parse_uint(text)) {
        if (*n == 0) return false;  // root ids are never valid mail ids
        out = std::to_string(*n);
        return true;
    }
    auto r = resolver ? resolver(text, group) : std::nullopt;
    if (!r || *r == 0) return false;
    out = std::to_string(*r);
    return true;
}

}  // namespace

std::optional<unsigned long> resolve_system_id(std::string_view name, bool group) {
    std::string n(name);
    std::vector<char> buf(16384);
    if (group) {
        struct group gr {};
        struct group* res = nullptr;
        if (getgrnam_r(n.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
        return res->gr_gid;
    }
    struct passwd pw {};
    struct passwd* res = nullptr;
    if (getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return res->pw_uid;
}

std::optional<Entry> parse_line(std::string_view line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                IdResolver resolver) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') return std::nullopt;
    if (line.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;  // blank
    if (line.front() == ':') {
        warnings.push_back({lineno, "empty user name; line skipped"});
        return std::nullopt;
    }
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 && c != '\t') {
            warnings.push_back({lineno, "control character in line; line skipped"});
            return std::nullopt;
        }
    }
    auto f = split_colons(line);
    Entry e;
    e.line = lineno;
    e.user = std::string(f[0]);
    if (e.user.find('\t') != std::string::npos) {
        warnings.push_back({lineno, "TAB in user name; line skipped"});
        return std::nullopt;
    }
    if (f.size() > 1) e.password = std::string(f[1]);
    else warnings.push_back({lineno, "no ':' in line: user \"" + e.user.substr(0, 64) + "\" has no password field"});
    if (f.size() > 2 && !resolve_id(f[2], false, resolver, e.uid)) {
        // The field is not quoted: with a ':' in a password it holds part of it.
        warnings.push_back({lineno, "invalid uid field (not a number or known user, or 0); line skipped"});
        return std::nullopt;
    }
    if (f.size() > 3 && !resolve_id(f[3], true, resolver, e.gid)) {
        warnings.push_back({lineno, "invalid gid field (not a number or known group, or 0); line skipped"});
        return std::nullopt;
    }
    if (f.size() > 5) e.home = std::string(f[5]);
    if (f.size() > 7) {
        std::string extra;
        std::size_t first = 7;
        // Old format: an empty field 8 followed by a mail location.
        if (f.size() > 8 && f[7].empty()) {
            std::string mail;
            for (std::size_t i = 8; i < f.size(); ++i) {
                if (i > 8) mail += ':';
                mail += f[i];
            }
            e.userdb.emplace_back("mail", mail);
            first = f.size();
        }
        for (std::size_t i = first; i < f.size(); ++i) {
            if (i > first) extra += ':';
            extra += f[i];
        }
        std::size_t pos = 0;
        while (pos < extra.size()) {
            auto sp = extra.find(' ', pos);
            if (sp == std::string::npos) sp = extra.size();
            std::string item = extra.substr(pos, sp - pos);
            pos = sp + 1;
            if (item.empty()) continue;
            const auto eq = item.find('=');
            std::string key = item.substr(0, eq);
            std::string value = eq == std::string::npos ? std::string() : item.substr(eq + 1);
            if (key.rfind("userdb_", 0) == 0) e.userdb.emplace_back(key.substr(7), value);
            else e.extra.emplace_back(key, value);
        }
    }
    return e;
}

Table parse(std::string_view text, IdResolver resolver) {
    Table t;
    std::size_t lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        ++lineno;
        auto e = parse_line(text.substr(pos, nl - pos), lineno, t.warnings, resolver);
        pos = nl + 1;
        if (!e) continue;
        if (t.users.count(e->user)) {
            t.warnings.push_back({lineno, "duplicate user (the first entry is used); line skipped"});
            continue;
        }
        t.order.push_back(e->user);
        std::string key = e->user;
        t.users.emplace(std::move(key), std::move(*e));
    }
    return t;
}

}  // namespace postern::backend::passwd_file
