// %-variable expander.
#include "util/var_expand.hpp"

#include <vector>

#include <algorithm>
#include <cctype>

namespace postern::util {

std::string_view short_var_name(char c) {
    switch (c) {
        case 'u': return "user";
        case 'n': return "username";
        case 'd': return "domain";
        case 's': return "service";
        case 'l': return "lip";
        case 'r': return "rip";
        case 'a': return "lport";
        case 'b': return "rport";
        case 'p': return "pid";
        case 'w': return "password";
        case 'm': return "mech";
        case 'c': return "secured";
        case 'h': return "home";
        case 'i': return "uid";
        default: return "";
    }
}

std::string user_part(std::string_view user) {
    const auto at = user.find('@');
    return std::string(at == std::string_view::npos ? user : user.substr(0, at));
}

std::string domain_part(std::string_view user) {
    const auto at = user.find('@');
    return at == std::string_view::npos ? std::string() : std::string(user.substr(at + 1));
}

namespace {
std::string trim_spaces(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}
}  // namespace

Result<std::string> expand(std::string_view t, const VarLookup& lookup, const VarEscape& escape) {
    std::string out;
    out.reserve(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '%') {
            out += t[i];
            continue;
        }
        if (++i >= t.size()) return fail("template ends with a lone '%'");
        if (t[i] == '%') {
            out += '%';
            continue;
        }
        bool lower = false, upper = false, reverse = false;
        std::size_t offset = 0, width = std::string::npos;
        // Modifiers and [offset.]width, in any order before the variable.
        for (;;) {
            if (i >= t.size()) return fail("incomplete %-variable");
            const char c = t[i];
            if (c == 'L') lower = true;
            else if (c == 'U') upper = true;
            else if (c == 'R') reverse = true;
            else if (std::isdigit(static_cast<unsigned char>(c))) {
                std::size_t n = 0;
                while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
                    n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(t[i] - '0'), 1 << 20);
                    ++i;
                }
                if (i < t.size() && t[i] == '.') {
                    offset = n;
                    ++i;
                    n = 0;
                    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
                        n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(t[i] - '0'), 1 << 20);
                        ++i;
                    }
                }
                width = n;
                continue;
            } else break;
            ++i;
        }
        std::string name;
        std::vector<std::string> filters;  // Dovecot 2.4: %{user | domain | lower}
        if (t[i] == '{') {
            const auto close = t.find('}', i);
            if (close == std::string_view::npos) return fail("unterminated %{ variable");
            name = std::string(t.substr(i + 1, close - i - 1));
            i = close;
            if (name.find('|') != std::string::npos) {
                std::size_t b = 0;
                for (;;) {
                    const auto bar = name.find('|', b);
                    filters.push_back(trim_spaces(std::string_view(name).substr(b, bar == std::string::npos ? bar : bar - b)));
                    if (bar == std::string::npos) break;
                    b = bar + 1;
                }
                name = filters.front();
                filters.erase(filters.begin());
            } else {
                name = trim_spaces(name);
            }
        } else {
            name = std::string(short_var_name(t[i]));
            if (name.empty()) return fail(std::string("unknown variable %") + t[i]);
        }
        auto value = lookup(name);
        if (!value) return fail("unknown variable %{" + name + "}");
        std::string v = std::move(*value);
        if (reverse) std::reverse(v.begin(), v.end());
        if (offset > 0 || width != std::string::npos) v = offset >= v.size() ? std::string() : v.substr(offset, width);
        if (lower) for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (upper) for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        for (const auto& f : filters) {
            if (f == "lower") for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            else if (f == "upper") for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            else if (f == "username") v = user_part(v);
            else if (f == "domain") v = domain_part(v);
            else if (f == "reverse") std::reverse(v.begin(), v.end());
            else if (f == "safe") continue;  // accepted, changes nothing (below)
            else if (f.starts_with("default(") && f.ends_with(")")) {
                if (v.empty()) {
                    std::string arg = trim_spaces(std::string_view(f).substr(8, f.size() - 9));
                    if (arg.size() >= 2 && (arg.front() == '\'' || arg.front() == '"') && arg.back() == arg.front())
                        arg = arg.substr(1, arg.size() - 2);
                    v = arg;
                }
            } else {
                return fail("unknown filter \"" + f + "\" in %{" + name + " | ...}");
            }
        }
        // Every value is escaped, | safe or not: an sql escape turns values
        // into bound parameters, and a template must never splice raw input.
        out += escape ? escape(v) : v;
    }
    return out;
}

}  // namespace postern::util
