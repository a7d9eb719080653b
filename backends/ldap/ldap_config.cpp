// dovecot-ldap.conf.ext reader and attribute-map parser.
#include "backends/ldap/ldap_config.hpp"

#include <algorithm>
#include <cctype>

#include "password/scheme.hpp"
#include "util/var_expand.hpp"
#include "util/encoding.hpp"

namespace postern::backend::ldap {

namespace {

// Longest connect timeout accepted: past this a client has long given up.
constexpr long kMaxTimeoutSeconds = 300;

using conf::fail_at;
using conf::trim;

bool parse_bool(const RawSetting& s) {
    const std::string v = lowercase(s.value);
    if (v == "yes" || v == "true" || v == "1") return true;
    if (v == "no" || v == "false" || v == "0" || v.empty()) return false;
    fail_at(s.file, s.line, s.key, "expected yes or no, got \"" + s.value + "\"");
}

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == ',')) ++i;
        const auto start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != ',') ++i;
        if (i > start) out.emplace_back(text.substr(start, i - start));
    }
    return out;
}

bool valid_attr_name(std::string_view a) {
    // RFC 4512 descr / numericoid, plus ";option" suffixes.
    if (a.empty() || a.size() > 256) return false;
    return std::all_of(a.begin(), a.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ';' || c == '_';
    });
}

// Attribute names a template reads: %{ldap:NAME[:default]}, %{ldap_multi:NAME[:sep[:default]]}.
void template_attributes(std::string_view t, std::vector<std::string>& out) {
    util::VarLookup record = [&out](std::string_view n) -> std::optional<std::string> {
        for (std::string_view prefix : {std::string_view("ldap:"), std::string_view("ldap_multi:")}) {
            if (n.substr(0, prefix.size()) == prefix) {
                auto rest = n.substr(prefix.size());
                out.emplace_back(rest.substr(0, rest.find(':')));
            }
        }
        return std::string();
    };
    (void)util::expand(t, record);
}

void check_template(std::string_view t, const std::string& file, long line, const std::string& key) {
    // Only the syntax: names resolve at lookup time (unknown ones stay empty there).
    util::VarLookup any = [](std::string_view) -> std::optional<std::string> { return std::string(); };
    std::string probe(t);
    for (std::size_t p = probe.find("%$"); p != std::string::npos; p = probe.find("%$", p)) probe.replace(p, 2, "");
    auto r = util::expand(probe, any);
    if (!r) fail_at(file, line, key, "bad template \"" + std::string(t.substr(0, 80)) + "\": " + r.error().message);
}

std::vector<std::string> parse_uris(const RawSetting& s, bool hosts) {
    std::vector<std::string> out;
    for (auto& w : words(s.value)) {
        if (hosts) {
            // host[:port], Dovecot's older form.
            if (w.find("://") != std::string::npos) fail_at(s.file, s.line, s.key, "hosts takes host[:port]; use uris for URIs");
            out.push_back("ldap://" + w);
            continue;
        }
        const std::string l = lowercase(w);
        if (l.rfind("ldap://", 0) != 0 && l.rfind("ldaps://", 0) != 0 && l.rfind("ldapi://", 0) != 0)
            fail_at(s.file, s.line, s.key, "\"" + w.substr(0, 80) + "\" is not an ldap://, ldaps:// or ldapi:// URI");
        out.push_back(w);
    }
    if (out.empty()) fail_at(s.file, s.line, s.key, "no server given");
    return out;
}

}  // namespace

std::vector<AttrMapping> parse_attr_map(std::string_view text, const std::string& file, long line,
                                        const std::string& key) {
    std::vector<AttrMapping> out;
    // Entries are comma-separated; a comma inside %{...} is part of a template.
    std::vector<std::string> entries;
    std::string cur;
    int braces = 0;
    for (char c : text) {
        if (c == '{') ++braces;
        if (c == '}' && braces > 0) --braces;
        if (c == ',' && braces == 0) {
            entries.push_back(trim(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    entries.push_back(trim(cur));
    for (const auto& e : entries) {
        if (e.empty()) continue;
        AttrMapping m;
        const auto eq = e.find('=');
        if (eq == std::string::npos) {
            m.attr = e;
            m.field = e;
        } else {
            m.attr = trim(std::string_view(e).substr(0, eq));
            const std::string rest = std::string(std::string_view(e).substr(eq + 1));
            const auto eq2 = rest.find('=');
            m.field = trim(std::string_view(rest).substr(0, eq2));
            if (eq2 != std::string::npos) {
                m.tmpl = rest.substr(eq2 + 1);
                m.has_template = true;
                check_template(m.tmpl, file, line, key);
            }
            if (m.attr.empty() && !m.has_template)
                fail_at(file, line, key, "\"" + e.substr(0, 80) + "\": a mapping without an attribute needs =field=template");
        }
        if (!m.attr.empty() && !valid_attr_name(m.attr))
            fail_at(file, line, key, "bad LDAP attribute name \"" + m.attr.substr(0, 80) + "\"");
        if (m.field.empty()) fail_at(file, line, key, "\"" + e.substr(0, 80) + "\": empty field name");
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<std::string> attributes_of(const std::vector<AttrMapping>& map) {
    std::vector<std::string> out;
    for (const auto& m : map) {
        if (!m.attr.empty()) out.push_back(m.attr);
        if (m.has_template) template_attributes(m.tmpl, out);
    }
    std::vector<std::string> unique;
    for (auto& a : out) {
        const bool seen = std::any_of(unique.begin(), unique.end(), [&](const std::string& u) { return lowercase(u) == lowercase(a); });
        if (!seen && !a.empty()) unique.push_back(std::move(a));
    }
    return unique;
}

LdapFile parse_ldap_settings(const std::vector<RawSetting>& raw, const std::string& path) {
    LdapFile f;
    f.path = path;
    bool have_servers = false, have_base = false;
    bool pass_attrs_set = false, user_attrs_set = false, iterate_attrs_set = false;
    for (const auto& s : raw) {
        const std::string& k = s.key;
        if (k == "uris" || k == "hosts") {
            auto u = parse_uris(s, k == "hosts");
            f.uris.insert(f.uris.end(), u.begin(), u.end());
            have_servers = true;
        } else if (k == "dn") {
            f.dn = s.value;
        } else if (k == "dnpass") {
            f.dnpass = s.value;
        } else if (k == "tls") {
            f.starttls = parse_bool(s);
        } else if (k == "tls_ca_cert_file") {
            f.tls_ca_cert_file = s.value;
        } else if (k == "tls_ca_cert_dir") {
            f.tls_ca_cert_dir = s.value;
        } else if (k == "tls_cert_file") {
            f.tls_cert_file = s.value;
        } else if (k == "tls_key_file") {
            f.tls_key_file = s.value;
        } else if (k == "tls_cipher_suite") {
            f.tls_cipher_suite = s.value;
        } else if (k == "tls_require_cert") {
            const std::string v = lowercase(s.value);
            if (v == "never") f.tls_require_cert = RequireCert::Never;
            else if (v == "allow") f.tls_require_cert = RequireCert::Allow;
            else if (v == "try") f.tls_require_cert = RequireCert::Try;
            else if (v == "demand") f.tls_require_cert = RequireCert::Demand;
            else if (v == "hard") f.tls_require_cert = RequireCert::Hard;
            else fail_at(s.file, s.line, k, "expected never, allow, try, demand or hard");
            f.tls_require_cert_set = true;
        } else if (k == "base") {
            f.base = s.value;
            have_base = true;
        } else if (k == "scope") {
            const std::string v = lowercase(s.value);
            if (v == "base") f.scope = Scope::Base;
            else if (v == "onelevel" || v == "one") f.scope = Scope::OneLevel;
            else if (v == "subtree" || v == "sub") f.scope = Scope::Subtree;
            else fail_at(s.file, s.line, k, "expected base, onelevel or subtree");
        } else if (k == "deref") {
            const std::string v = lowercase(s.value);
            if (v == "never") f.deref = Deref::Never;
            else if (v == "searching") f.deref = Deref::Searching;
            else if (v == "finding") f.deref = Deref::Finding;
            else if (v == "always") f.deref = Deref::Always;
            else fail_at(s.file, s.line, k, "expected never, searching, finding or always");
        } else if (k == "ldap_version") {
            if (s.value == "3") f.ldap_version = 3;
            else if (s.value == "2") fail_at(s.file, s.line, k, "LDAPv2 is not supported (use 3)");
            else fail_at(s.file, s.line, k, "expected 3");
        } else if (k == "pass_filter") {
            f.pass_filter = s.value;
        } else if (k == "user_filter") {
            f.user_filter = s.value;
        } else if (k == "iterate_filter") {
            f.iterate_filter = s.value;
        } else if (k == "pass_attrs") {
            f.pass_attrs = parse_attr_map(s.value, s.file, s.line, k);
            pass_attrs_set = true;
        } else if (k == "user_attrs") {
            f.user_attrs = parse_attr_map(s.value, s.file, s.line, k);
            user_attrs_set = true;
        } else if (k == "iterate_attrs") {
            f.iterate_attrs = parse_attr_map(s.value, s.file, s.line, k);
            iterate_attrs_set = true;
        } else if (k == "default_pass_scheme") {
            if (!password::canonical_name(s.value)) fail_at(s.file, s.line, k, "unknown password scheme \"" + s.value + "\"");
            f.default_pass_scheme = s.value;
        } else if (k == "auth_bind") {
            f.auth_bind = parse_bool(s);
        } else if (k == "auth_bind_userdn") {
            f.auth_bind_userdn = s.value;
        } else if (k == "sasl_bind") {
            f.sasl_bind = parse_bool(s);
        } else if (k == "sasl_mech") {
            f.sasl_mech = s.value;
        } else if (k == "sasl_realm") {
            f.sasl_realm = s.value;
        } else if (k == "sasl_authz_id") {
            f.sasl_authz_id = s.value;
        } else if (k == "timeout" || k == "connect_timeout") {
            // Not in Dovecot 2.3's table; a postern extension for the connect step.
            const bool digits = !s.value.empty() && s.value.size() <= 4 &&
                                std::all_of(s.value.begin(), s.value.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits || std::stol(s.value) == 0 || std::stol(s.value) > kMaxTimeoutSeconds)
                fail_at(s.file, s.line, k, "expected a number of seconds between 1 and " + std::to_string(kMaxTimeoutSeconds));
            f.connect_timeout = std::chrono::seconds(std::stol(s.value));
        } else if (k == "blocking" || k == "debug_level" || k == "ldaprc_path" || k == "user_global_uid" ||
                   k == "user_global_gid") {
            // Accepted for compatibility: they change nothing here (postern's
            // lookups never block; logging is postern.conf's [log]).
        } else {
            fail_at(s.file, s.line, k, "unknown setting");
        }
        f.lines.emplace_back(k, s.line);
    }
    if (!have_servers) fail_at(path, 0, "uris", "required setting is missing (uris or hosts)");
    if (!have_base) fail_at(path, 0, "base", "required setting is missing");
    if (!pass_attrs_set) f.pass_attrs = parse_attr_map("userPassword=password", path, 0, "pass_attrs");
    if (!user_attrs_set) f.user_attrs = parse_attr_map("homeDirectory=home,uidNumber=uid,gidNumber=gid", path, 0, "user_attrs");
    if (!iterate_attrs_set) f.iterate_attrs = parse_attr_map("uid=user", path, 0, "iterate_attrs");
    for (const auto& [key, tmpl] : {std::pair<const char*, const std::string*>{"pass_filter", &f.pass_filter},
                                    {"user_filter", &f.user_filter}, {"iterate_filter", &f.iterate_filter},
                                    {"auth_bind_userdn", &f.auth_bind_userdn}}) {
        check_template(*tmpl, path, f.line_of(key), key);
    }
    if (f.sasl_bind && f.sasl_mech.empty())
        fail_at(path, f.line_of("sasl_bind"), "sasl_mech", "sasl_bind = yes needs sasl_mech (EXTERNAL, PLAIN, ...)");
    if (f.auth_bind && f.auth_bind_userdn.empty() && f.pass_filter.empty())
        fail_at(path, f.line_of("auth_bind"), "auth_bind", "needs pass_filter or auth_bind_userdn to find the user's DN");
    return f;
}

LdapFile parse_ldap_file(const std::string& path) { return parse_ldap_settings(read_settings_file(path), path); }

}  // namespace postern::backend::ldap
