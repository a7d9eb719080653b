// ldap backend, the parts without a server: dovecot-ldap.conf.ext reader,
// attribute maps, RFC 4515 / RFC 4514 escaping, entry-to-fields mapping.
// Against a real slapd: tests/integration/test_ldap.py.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "backends/ldap/entry.hpp"
#include "backends/ldap/ldap_config.hpp"
#include "config/section.hpp"

using namespace postern::backend::ldap;
using postern::config::ConfigError;
using namespace std::string_literals;

namespace {

LdapFile parse(const std::string& text) { return parse_ldap_settings(parse_settings_text(text, "l.conf"), "l.conf"); }

const std::string kMinimal = "uris = ldap://127.0.0.1\nbase = dc=example,dc=com\n";

postern::util::VarLookup user_vars(const std::string& user) {
    return [user](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return user;
        if (n == "username") return user.substr(0, user.find('@'));
        if (n == "domain") return user.find('@') == std::string::npos ? std::string() : user.substr(user.find('@') + 1);
        if (n == "service") return std::string("smtp");
        return std::nullopt;
    };
}

// A table of labelled inputs and what `escape` (or another rewrite) makes of them.
struct EscapeCase {
    const char* label;
    std::string in, out;
};
void check_escapes(const std::vector<EscapeCase>& cases, std::string (*escape)(std::string_view)) {
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(escape(c.in) == c.out);
    }
}

}  // namespace

TEST_CASE("ldap config: malformed files are errors naming line and key") {
    struct Case {
        const char* label;
        std::string text;
        long line;
        const char* key;
    };
    const std::vector<Case> cases = {
        {"no server", "base = dc=x\n", 0, "uris"},
        {"no base", "uris = ldap://127.0.0.1\n", 0, "base"},
        {"unknown setting", kMinimal + "pass_fliter = (uid=%u)\n", 3, "pass_fliter"},
        {"line without =", kMinimal + "auth_bind yes\n", 3, "auth_bind yes"},
        {"not an ldap URI", "uris = http://127.0.0.1\nbase = dc=x\n", 1, "uris"},
        {"URI in hosts", "hosts = ldap://127.0.0.1\nbase = dc=x\n", 1, "hosts"},
        {"empty uris", "uris =\nbase = dc=x\n", 1, "uris"},
        {"bad scope", kMinimal + "scope = everything\n", 3, "scope"},
        {"bad deref", kMinimal + "deref = sometimes\n", 3, "deref"},
        {"bad boolean", kMinimal + "auth_bind = maybe\n", 3, "auth_bind"},
        {"ldap v2", kMinimal + "ldap_version = 2\n", 3, "ldap_version"},
        {"bad require_cert", kMinimal + "tls_require_cert = sometimes\n", 3, "tls_require_cert"},
        {"unknown scheme", kMinimal + "default_pass_scheme = NOSUCH\n", 3, "default_pass_scheme"},
        {"sasl bind without a mechanism", kMinimal + "sasl_bind = yes\n", 3, "sasl_mech"},
        {"bad attribute name", kMinimal + "pass_attrs = user(x)=user\n", 3, "pass_attrs"},
        {"mapping without field", kMinimal + "pass_attrs = uid=\n", 3, "pass_attrs"},
        {"template without attr", kMinimal + "pass_attrs = =home\n", 3, "pass_attrs"},
        {"bad template", kMinimal + "user_attrs = =home=/var/%{ldap:x\n", 3, "user_attrs"},
        {"bad filter template", kMinimal + "pass_filter = (uid=%q)\n", 3, "pass_filter"},
        {"unterminated quote", kMinimal + "dn = \"cn=x\n", 3, "dn"},
        {"control character", kMinimal + "dn = cn=\x01\n", 3, ""},
        {"timeout zero", kMinimal + "timeout = 0\n", 3, "timeout"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        try {
            (void)parse(c.text);
            FAIL("no error");
        } catch (const ConfigError& e) {
            CHECK(e.file() == "l.conf");
            CHECK(e.line() == c.line);
            CHECK(e.key() == c.key);
        }
    }
}

TEST_CASE("ldap config: Dovecot defaults and every key") {
    const auto d = parse(kMinimal);
    CHECK(d.uris == std::vector<std::string>{"ldap://127.0.0.1"});
    CHECK(d.scope == Scope::Subtree);
    CHECK(d.deref == Deref::Never);
    CHECK(d.default_pass_scheme == "CRYPT");
    CHECK(d.pass_filter == "(&(objectClass=posixAccount)(uid=%u))");
    REQUIRE(d.pass_attrs.size() == 1);
    CHECK(d.pass_attrs[0].attr == "userPassword");
    CHECK(d.pass_attrs[0].field == "password");
    CHECK(d.user_attrs.size() == 3);
    CHECK_FALSE(d.auth_bind);

    const auto f = parse(
        "hosts = 10.0.0.1 10.0.0.2:3389\n"
        "uris = ldaps://ldap.example.com\n"
        "dn = cn=postern,dc=example,dc=com\n"
        "dnpass = 'se#cret'\n"
        "tls = yes\ntls_ca_cert_file = /etc/ssl/ca.pem\ntls_require_cert = hard\n"
        "base = o=domains,dc=example,dc=com\nscope = onelevel\nderef = always\nldap_version = 3\n"
        "pass_filter = (&(objectClass=mailUser)(mail=%u))\n"
        "pass_attrs = mail=user, userPassword=password, \\\n  =userdb_home=/var/vmail/%{ldap:mailMessageStore}\n"
        "user_filter = (mail=%u)\nuser_attrs = homeDirectory=home,uidNumber=uid\n"
        "iterate_filter = (objectClass=mailUser)\niterate_attrs = mail=user\n"
        "default_pass_scheme = SSHA\nauth_bind = yes\nauth_bind_userdn = mail=%u,ou=users,dc=example,dc=com\n"
        "blocking = yes\n");
    CHECK(f.uris == std::vector<std::string>{"ldap://10.0.0.1", "ldap://10.0.0.2:3389", "ldaps://ldap.example.com"});
    CHECK(f.dnpass == "se#cret");
    CHECK(f.starttls);
    CHECK(f.tls_require_cert == RequireCert::Hard);
    CHECK(f.scope == Scope::OneLevel);
    CHECK(f.deref == Deref::Always);
    REQUIRE(f.pass_attrs.size() == 3);
    CHECK(f.pass_attrs[2].attr.empty());
    CHECK(f.pass_attrs[2].field == "userdb_home");
    CHECK(f.pass_attrs[2].tmpl == "/var/vmail/%{ldap:mailMessageStore}");
    CHECK(attributes_of(f.pass_attrs) == std::vector<std::string>{"mail", "userPassword", "mailMessageStore"});
    CHECK(f.auth_bind);
    CHECK(f.line_of("auth_bind") == 20);  // after a continuation line
}

TEST_CASE("ldap filter escaping (RFC 4515)") {
    check_escapes({
        {"NUL", "a\0b"s, "a\\00b"},
        {"star", "*", "\\2a"},
        {"filter injection", "*)(uid=*", "\\2a\\29\\28uid=\\2a"},
        {"or injection", "admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"},
        {"backslash", "\\", "\\5c"},
        {"already escaped", "\\2a", "\\5c2a"},
        {"non-ASCII", "j\xc3\xb6rg", "j\\c3\\b6rg"},
        {"plain", "user@example.com", "user@example.com"},
    }, escape_filter_value);
    const std::string huge(10240, '*');
    const auto e = escape_filter_value(huge);
    CHECK(e.size() == huge.size() * 3);
    CHECK(e.find('*') == std::string::npos);

    auto r = expand_filter("(&(objectClass=mailUser)(mail=%u))", user_vars("*)(uid=*"));
    REQUIRE(r.has_value());
    CHECK(*r == "(&(objectClass=mailUser)(mail=\\2a\\29\\28uid=\\2a))");
    // The template's own syntax is kept; only values are escaped.
    r = expand_filter("(|(uid=%n)(mail=%u))", user_vars("a*@b"));
    REQUIRE(r.has_value());
    CHECK(*r == "(|(uid=a\\2a)(mail=a\\2a@b))");
}

TEST_CASE("ldap DN escaping (RFC 4514)") {
    check_escapes({
        {"NUL", "a\0b"s, "a\\00b"},
        {"comma", "a,ou=x", "a\\,ou\\=x"},
        {"plus", "a+b", "a\\+b"},
        {"quote and angles", "\"<>\"", "\\\"\\<\\>\\\""},
        {"semicolon", "a;b", "a\\;b"},
        {"backslash", "\\", "\\\\"},
        {"leading hash", "#a", "\\#a"},
        {"leading and trailing space", " a ", "\\ a\\ "},
        {"plain", "user@example.com", "user@example.com"},
    }, escape_dn_value);
    auto r = expand_dn("mail=%u,ou=users,dc=example,dc=com", user_vars("x,ou=admins"));
    REQUIRE(r.has_value());
    CHECK(*r == "mail=x\\,ou\\=admins,ou=users,dc=example,dc=com");
}

TEST_CASE("ldap entry mapping: plain, templates, multi-valued") {
    Entry e;
    e.dn = "mail=a@example.com,ou=users,dc=example,dc=com";
    e.attrs = {{"mail", {"a@example.com", "alias@example.com"}},
               {"userPassword", {"{SSHA}xyz"}},
               {"mailMessageStore", {"example.com/a/Maildir"}},
               {"uidNumber", {"5001"}}};
    const auto map = parse_attr_map(
        "MAIL=user, userPassword=password, uidNumber, homeDirectory=home, =mail=maildir:/var/vmail/%{ldap:mailMessageStore}, "
        "=aliases=%{ldap_multi:mail}, =tag=%{ldap:missing:none}-%d, uidNumber=uid=u%$",
        "l.conf", 1, "pass_attrs");
    const auto m = map_entry(e, map, user_vars("a@example.com"));
    const postern::auth::Fields want = {{"user", "a@example.com"},
                                        {"password", "{SSHA}xyz"},
                                        {"uidNumber", "5001"},
                                        {"mail", "maildir:/var/vmail/example.com/a/Maildir"},
                                        {"aliases", "a@example.com alias@example.com"},
                                        {"tag", "none-example.com"},
                                        {"uid", "u5001"}};
    CHECK(m.fields == want);  // homeDirectory is absent: no home field
    REQUIRE(m.warnings.size() == 1);
    CHECK(m.warnings[0].find("multiple values found for 'MAIL'") != std::string::npos);
}

TEST_CASE("ldap entry mapping: %{ldap_multi:attr:sep:default} read as Dovecot 2.3 reads it") {
    struct Case {
        const char* in;
        const char* attr;
        const char* sep;
        const char* fallback;
    };
    // Dovecot's own vectors (test-db-ldap.c): " " when no separator is
    // given, ':' from "attr::", the default after the separator's colon.
    const Case cases[] = {{"", "", " ", ""},          {"f", "f", " ", ""},        {"f:", "f", " ", ""},
                          {"f::", "f", ":", ""},       {"f:::", "f", ":", ""},     {"f:s", "f", "s", ""},
                          {"f:s:", "f", "s", ""},      {"f:s::", "f", "s", ":"},   {"f::d", "f", " ", "d"},
                          {"f:::d", "f", ":", "d"},    {"f::d:", "f", " ", "d:"},  {"f:::d:", "f", ":", "d:"}};
    for (const auto& c : cases) {
        CAPTURE(c.in);
        const auto a = parse_ldap_multi(c.in);
        CHECK(a.attr == c.attr);
        CHECK(a.sep == c.sep);
        CHECK(a.fallback == c.fallback);
    }
    Entry e;
    e.attrs = {{"mail", {"a@example.com", "b@example.com"}}};
    const auto map = parse_attr_map("=a=%{ldap_multi:mail}, =b=%{ldap_multi:mail:;}, =c=%{ldap_multi:mail::}, "
                                    "=d=%{ldap_multi:nothing::none}, =e=<%{ldap_multi:nothing}>",
                                    "l.conf", 1, "user_attrs");
    const auto m = map_entry(e, map, user_vars("a@example.com"), MapFor::Userdb);
    CHECK(m.fields == postern::auth::Fields{{"a", "a@example.com b@example.com"},
                                            {"b", "a@example.com;b@example.com"},
                                            {"c", "a@example.com:b@example.com"},
                                            {"d", "none"},
                                            {"e", "<>"}});
}

TEST_CASE("ldap entry mapping: a userdb gid takes every value, other fields the first") {
    Entry e;
    e.attrs = {{"gidNumber", {"5000", "6007"}}, {"mail", {"a@example.com", "b@example.com"}}};
    const auto map = parse_attr_map("gidNumber=gid, mail=mail", "l.conf", 1, "user_attrs");
    const auto user = map_entry(e, map, user_vars("a@example.com"), MapFor::Userdb);
    CHECK(user.fields == postern::auth::Fields{{"gid", "5000,6007"}, {"mail", "a@example.com"}});
    REQUIRE(user.warnings.size() == 1);
    CHECK(user.warnings[0].find("'mail'") != std::string::npos);
    // A passdb field is one value, gid included.
    const auto pass = map_entry(e, map, user_vars("a@example.com"));
    CHECK(pass.fields == postern::auth::Fields{{"gid", "5000"}, {"mail", "a@example.com"}});
    CHECK(pass.warnings.size() == 2);
}

TEST_CASE("ldap writes: password attribute, directory form, iterate users") {
    CHECK(password_attribute(parse_attr_map("mail=user, userPassword=password", "l.conf", 1, "pass_attrs")) ==
          "userPassword");
    // Only a mapping as it is names an attribute a write can go to.
    CHECK(password_attribute(parse_attr_map("=password={PLAIN}%{ldap:secret}", "l.conf", 1, "pass_attrs")).empty());
    CHECK(password_attribute(parse_attr_map("mail=user", "l.conf", 1, "pass_attrs")).empty());

    check_escapes({
        {"sha512-crypt", "{SHA512-CRYPT}$6$salt$hash", "{CRYPT}$6$salt$hash"},
        {"bcrypt", "{BLF-CRYPT}$2y$05$abc", "{CRYPT}$2y$05$abc"},
        {"lower-case scheme", "{sha256-crypt}$5$s$h", "{CRYPT}$5$s$h"},
        {"ssha kept", "{SSHA}abcd", "{SSHA}abcd"},
        {"argon2 kept", "{ARGON2ID}$argon2id$v=19$x", "{ARGON2ID}$argon2id$v=19$x"},
        {"crypt kept", "{CRYPT}$6$s$h", "{CRYPT}$6$s$h"},
        {"no scheme", "cleartext", "cleartext"},
        {"unterminated", "{SHA512-CRYPT$6$", "{SHA512-CRYPT$6$"},
    }, [](std::string_view v) { return directory_form(std::string(v)); });

    Entry e;
    e.attrs = {{"mail", {"a@example.com", "", "b@example.com"}}, {"uid", {"a"}}};
    CHECK(iterate_users(e, parse_attr_map("mail=user", "l.conf", 1, "iterate_attrs")) ==
          std::vector<std::string>{"a@example.com", "b@example.com"});
    CHECK(iterate_users(e, parse_attr_map("=user=%{ldap:uid}@x", "l.conf", 1, "iterate_attrs")) ==
          std::vector<std::string>{"a@x"});
}
