// %-variable expander.
#include "util/var_expand.hpp"

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
        if (t[i] == '{') {
            const auto close = t.find('}', i);
            if (close == std::string_view::npos) return fail("unterminated %{ variable");
            name = std::string(t.substr(i + 1, close - i - 1));
            i = close;
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
        out += escape ? escape(v) : v;
    }
    return out;
}

}  // namespace postern::util
