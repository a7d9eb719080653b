// Filter and DN escaping; entry-to-fields mapping.
#include "backends/ldap/entry.hpp"

#include <strings.h>

#include "password/scheme.hpp"

namespace postern::backend::ldap {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void hex_escape(std::string& out, unsigned char c) {
    out += '\\';
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string escape_filter_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        // Non-ASCII is escaped too: the filter stays plain ASCII whatever the
        // user sent, and the server compares the same octets.
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c >= 0x80) hex_escape(out, c);
        else out += ch;
    }
    return out;
}

std::string escape_dn_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char ch = v[i];
        const auto c = static_cast<unsigned char>(ch);
        if (c == 0) {
            hex_escape(out, c);
        } else if (ch == '"' || ch == '+' || ch == ',' || ch == ';' || ch == '<' || ch == '>' || ch == '\\' ||
                   ch == '=') {
            out += '\\';
            out += ch;
        } else if ((i == 0 && (ch == ' ' || ch == '#')) || (i + 1 == v.size() && ch == ' ')) {
            out += '\\';
            out += ch;
        } else {
            out += ch;
        }
    }
    return out;
}

Result<std::string> expand_filter(std::string_view tmpl, const util::VarLookup& vars) {
    return util::expand(tmpl, vars, [](std::string_view v) { return escape_filter_value(v); });
}

Result<std::string> expand_dn(std::string_view tmpl, const util::VarLookup& vars) {
    return util::expand(tmpl, vars, [](std::string_view v) { return escape_dn_value(v); });
}

const std::vector<std::string>* Entry::find(std::string_view attr) const {
    for (const auto& [name, values] : attrs)
        if (iequal(name, attr)) return &values;
    return nullptr;
}

MultiArgs parse_ldap_multi(std::string_view args) {
    MultiArgs a{args, " ", {}};
    const auto colon = args.find(':');
    if (colon == std::string_view::npos) return a;
    a.attr = args.substr(0, colon);
    const std::string_view rest = args.substr(colon + 1);
    if (rest == ":" || rest.substr(0, 2) == "::") {
        // "attr::" and "attr:::default": the separator is ':' itself.
        a.sep = ":";
        a.fallback = rest.size() > 2 ? rest.substr(2) : std::string_view();
        return a;
    }
    const auto c2 = rest.find(':');
    if (c2 != 0 && !rest.empty()) a.sep = rest.substr(0, c2);
    if (c2 != std::string_view::npos) a.fallback = rest.substr(c2 + 1);
    return a;
}

Mapped map_entry(const Entry& entry, const std::vector<AttrMapping>& map, const util::VarLookup& vars, MapFor use) {
    Mapped out;
    for (const auto& m : map) {
        const std::vector<std::string>* values = m.attr.empty() ? nullptr : entry.find(m.attr);
        if (!m.attr.empty() && (!values || values->empty())) continue;  // absent: the field is not set
        if (!m.has_template && use == MapFor::Userdb && m.field == "gid") {
            // The primary group first, the others as supplementary groups.
            std::string joined;
            for (const auto& v : *values) joined += (joined.empty() ? "" : ",") + v;
            out.fields.emplace_back(m.field, std::move(joined));
            continue;
        }
        if (!m.has_template) {
            if (values->size() > 1)
                out.warnings.push_back("multiple values found for '" + m.attr + "', using the first");
            out.fields.emplace_back(m.field, values->front());
            continue;
        }
        // %$ is the mapping's own attribute: rewritten to %{ldap:ATTR}.
        std::string tmpl = m.tmpl;
        for (std::size_t p = tmpl.find("%$"); p != std::string::npos; p = tmpl.find("%$", p)) {
            const std::string repl = "%{ldap:" + m.attr + "}";
            tmpl.replace(p, 2, repl);
            p += repl.size();
        }
        util::VarLookup lookup = [&entry, &vars](std::string_view n) -> std::optional<std::string> {
            const bool multi = n.substr(0, 11) == "ldap_multi:";
            if (multi || n.substr(0, 5) == "ldap:") {
                std::string_view rest = n.substr(multi ? 11 : 5);
                const auto colon = rest.find(':');
                std::string_view attr = rest.substr(0, colon);
                std::string_view fallback = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
                std::string_view sep;
                if (multi) {
                    const MultiArgs a = parse_ldap_multi(rest);
                    attr = a.attr;
                    sep = a.sep;
                    fallback = a.fallback;
                }
                const auto* vals = entry.find(attr);
                if (!vals || vals->empty()) return std::string(fallback);
                if (!multi) return vals->front();
                std::string joined;
                for (std::size_t i = 0; i < vals->size(); ++i) {
                    if (i) joined += sep;
                    joined += (*vals)[i];
                }
                return joined;
            }
            return vars ? vars(n) : std::nullopt;
        };
        auto r = util::expand(tmpl, lookup);
        if (!r) {
            out.warnings.push_back("template of field '" + m.field + "': " + r.error().message);
            continue;
        }
        out.fields.emplace_back(m.field, std::move(*r));
    }
    return out;
}

std::vector<std::string> iterate_users(const Entry& entry, const std::vector<AttrMapping>& map) {
    std::vector<std::string> users;
    for (const auto& m : map) {
        if (m.field != "user") continue;
        if (!m.has_template) {
            if (const auto* vals = entry.find(m.attr))
                for (const auto& v : *vals) users.push_back(v);
        } else {
            auto mapped = map_entry(entry, {m}, {});
            for (auto& [k, v] : mapped.fields) users.push_back(std::move(v));
        }
    }
    std::erase_if(users, [](const std::string& u) { return u.empty(); });
    return users;
}

std::string password_attribute(const std::vector<AttrMapping>& pass_attrs) {
    for (const auto& m : pass_attrs)
        if (m.field == "password" && !m.has_template && !m.attr.empty()) return m.attr;
    return {};
}

std::string directory_form(const std::string& stored) {
    if (!stored.starts_with('{')) return stored;
    const auto close = stored.find('}');
    if (close == std::string::npos) return stored;
    const auto scheme = password::canonical_name(stored.substr(1, close - 1));
    const std::string data = stored.substr(close + 1);
    // Only data that names its own algorithm ($id$) reads the same under {CRYPT}.
    if (scheme && data.starts_with('$') &&
        (*scheme == "SHA512-CRYPT" || *scheme == "SHA256-CRYPT" || *scheme == "BLF-CRYPT" ||
         *scheme == "MD5-CRYPT" || *scheme == "YESCRYPT"))
        return "{CRYPT}" + data;
    return stored;
}

}  // namespace postern::backend::ldap
