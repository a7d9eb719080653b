// The ldap backend's settings: Dovecot 2.3's dovecot-ldap.conf.ext read as it
// is (keys of Dovecot's db-ldap.c settings table), plus the attribute maps
// of pass_attrs / user_attrs / iterate_attrs. Parsing is pure (no I/O but
// reading the file); errors are config::ConfigError naming file, line, key.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/conf_file.hpp"
#include "config/section.hpp"

namespace postern::backend::ldap {

// One entry of an attribute map (Dovecot 2.3 syntax, comma-separated):
//   ldapAttr                  field named as the attribute
//   ldapAttr=field            field gets the attribute's value
//   ldapAttr=field=template   field gets the template; %$ is the value
//   =field=template           field gets the template only (%{ldap:attr})
struct AttrMapping {
    std::string attr;      // LDAP attribute ("" for a pure template)
    std::string field;     // passdb/userdb field name
    std::string tmpl;      // "" = the attribute's value as it is
    bool has_template = false;
};

enum class Scope { Base, OneLevel, Subtree };
enum class Deref { Never, Searching, Finding, Always };
enum class RequireCert { Never, Allow, Try, Demand, Hard };

struct LdapFile : conf::KeyLines {
    std::string path;
    std::vector<std::string> uris;  // ldap://, ldaps://, ldapi:// (from uris or hosts), tried in turn
    std::string dn, dnpass;         // service account ("" = anonymous)
    bool starttls = false;          // tls = yes
    std::string tls_ca_cert_file, tls_ca_cert_dir, tls_cert_file, tls_key_file, tls_cipher_suite;
    RequireCert tls_require_cert = RequireCert::Demand;
    bool tls_require_cert_set = false;
    std::string base;
    Scope scope = Scope::Subtree;
    Deref deref = Deref::Never;
    int ldap_version = 3;
    std::string pass_filter = "(&(objectClass=posixAccount)(uid=%u))";
    std::string user_filter = "(&(objectClass=posixAccount)(uid=%u))";
    std::string iterate_filter = "(objectClass=posixAccount)";
    std::vector<AttrMapping> pass_attrs, user_attrs, iterate_attrs;
    std::string default_pass_scheme = "CRYPT";
    bool auth_bind = false;
    std::string auth_bind_userdn;  // template of the user's DN ("" = search with pass_filter)
    // sasl_bind = yes: the lookup connections authenticate with SASL
    // (sasl_mech; dn as the authentication id, dnpass, sasl_realm,
    // sasl_authz_id) instead of a simple bind as dn.
    bool sasl_bind = false;
    std::string sasl_mech, sasl_realm, sasl_authz_id;
    std::chrono::milliseconds connect_timeout{5000};
    // (KeyLines: the line of each key, for later messages.)
};

// The file's key = value lines: backends/conf_file.hpp.
using conf::RawSetting;
using conf::parse_settings_text;
using conf::read_settings_file;

// Throws config::ConfigError (file, line, key) on any bad or missing setting.
LdapFile parse_ldap_settings(const std::vector<RawSetting>& raw, const std::string& path);
LdapFile parse_ldap_file(const std::string& path);

// "uid=user,userPassword=password, =home=/var/mail/%{ldap:mailbox}".
// Throws ConfigError at (file, line, key) for an empty name or bad entry.
std::vector<AttrMapping> parse_attr_map(std::string_view text, const std::string& file, long line,
                                        const std::string& key);

// The LDAP attributes a map asks the server for (attributes named directly
// and those its templates read through %{ldap:...} / %{ldap_multi:...}).
std::vector<std::string> attributes_of(const std::vector<AttrMapping>& map);

}  // namespace postern::backend::ldap
