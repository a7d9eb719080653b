// What the ldap backend does with text, without a server: escaping of
// %-variable values in search filters (RFC 4515 section 3) and DNs (RFC 4514
// section 2.4), and an LDAP entry turned into passdb/userdb fields through an
// attribute map, the way Dovecot 2.3's db-ldap does it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/params.hpp"
#include "backends/ldap/ldap_config.hpp"
#include "util/result.hpp"
#include "util/var_expand.hpp"

namespace postern::backend::ldap {

// RFC 4515: '*' '(' ')' '\' NUL and every byte >= 0x80 as \XX, so a value
// can only ever be an assertion value, never filter syntax.
std::string escape_filter_value(std::string_view v);
// RFC 4514: '"' '+' ',' ';' '<' '>' '\' '=' backslash-escaped, a leading
// space or '#' and a trailing space escaped, NUL as \00.
std::string escape_dn_value(std::string_view v);

// A filter / DN template with every %-variable escaped for where it stands.
Result<std::string> expand_filter(std::string_view tmpl, const util::VarLookup& vars);
Result<std::string> expand_dn(std::string_view tmpl, const util::VarLookup& vars);

struct Entry {
    std::string dn;
    // Attribute (as the server named it) and its values, in server order.
    std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
    // Values of an attribute by case-insensitive name; nullptr when absent.
    const std::vector<std::string>* find(std::string_view attr) const;
};

struct Mapped {
    auth::Fields fields;               // in map order; a field absent from the entry is not set
    std::vector<std::string> warnings; // "Multiple values for 'x', using the first" etc. (safe to log)
};

enum class MapFor { Passdb, Userdb };

// The arguments of %{ldap_multi:attr[:sep[:default]]} as Dovecot 2.3 reads
// them: sep " " when absent or empty, ':' when written as "attr::" or
// "attr:::default"; default "" (what an absent attribute expands to).
struct MultiArgs {
    std::string_view attr, sep, fallback;
};
MultiArgs parse_ldap_multi(std::string_view args);

// Applies `map` to `entry`. Plain mappings take the attribute's first value
// (Dovecot warns and does the same), except a userdb's gid, which gets
// every value joined with "," (Dovecot's list of groups); templates are expanded with
// %{ldap:attr[:default]}, %{ldap_multi:attr[:sep[:default]]} (every value
// joined with sep, see parse_ldap_multi), %$ (the mapping's own attribute)
// and the request's variables from `vars`. Template output is not escaped.
Mapped map_entry(const Entry& entry, const std::vector<AttrMapping>& map, const util::VarLookup& vars,
                 MapFor use = MapFor::Passdb);

// The user names an iterate_attrs map finds in one entry: every value of
// the attribute mapped to "user" (Dovecot lists each), or a template's one;
// empty names left out.
std::vector<std::string> iterate_users(const Entry& entry, const std::vector<AttrMapping>& map);

// The attribute pass_attrs maps to the password field as it is ("" when
// none does, or only through a template): the one a password write goes to.
std::string password_attribute(const std::vector<AttrMapping>& pass_attrs);

// A stored password ("{SCHEME}data", as password::generate makes it) in the
// form a directory keeps it: crypt(3) hashes as {CRYPT}$id$..., which slapd
// verifies on binds and Dovecot and postern read; everything else unchanged.
std::string directory_form(const std::string& stored);

}  // namespace postern::backend::ldap
