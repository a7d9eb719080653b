// sql backend, the parts without a server: dovecot-sql.conf.ext reader,
// connect strings, %-variables to bound parameters / escaped literals, result
// columns to fields (allow_nets: fields_test.cpp). Against real servers: tests/integration/test_sql.py.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backends/sql/fields.hpp"
#include "backends/sql/query.hpp"
#include "backends/sql/sql_config.hpp"
#include "config/config.hpp"
#include "config/section.hpp"

using namespace postern::backend::sql;
using postern::config::ConfigError;
using postern::auth::Fields;
using namespace std::string_literals;

namespace {

SqlFile parse(const std::string& text) { return parse_sql_settings(parse_settings_text(text, "t.conf"), "t.conf"); }

postern::util::VarLookup user_vars(const std::string& user) {
    return [user](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return user;
        if (n == "username") return user.substr(0, user.find('@'));
        if (n == "domain") return user.find('@') == std::string::npos ? std::string() : user.substr(user.find('@') + 1);
        if (n == "service") return std::string("smtp");
        return std::nullopt;
    };
}

// Stands in for mysql_real_escape_string (the integration tests use the real one).
std::string fake_escape(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\'' || c == '"' || c == '\\') out += '\\';
        if (c == '\0') {
            out += "\\0";
            continue;
        }
        out += c;
    }
    return out;
}

const std::string kMinimal = "driver = mysql\nconnect = host=127.0.0.1 dbname=postfix user=postfix password=x\n";

}  // namespace

TEST_CASE("sql config: malformed files are errors naming line and key") {
    struct Case {
        const char* label;
        std::string text;
        long line;
        const char* key;
    };
    const std::vector<Case> cases = {
        {"no driver", "connect = host=127.0.0.1\n", 0, "driver"},
        {"unknown driver", "driver = sqlite\nconnect = /x.db\n", 1, "driver"},
        {"no connect", "driver = mysql\n", 0, "connect"},
        {"line without =", kMinimal + "password_query SELECT 1\n", 3, "password_query SELECT 1"},
        {"unknown setting", kMinimal + "pasword_query = SELECT 1\n", 3, "pasword_query"},
        {"unterminated quote", kMinimal + "password_query = \"SELECT 1\n", 3, "password_query"},
        {"unknown scheme", kMinimal + "default_pass_scheme = NOSUCH\n", 3, "default_pass_scheme"},
        {"connect: unknown key", "driver = mysql\nconnect = host=127.0.0.1 dbnme=postfix\n", 2, "connect"},
        {"connect: no =", "driver = pgsql\nconnect = host=127.0.0.1 postfix\n", 2, "connect"},
        {"connect: bad port", "driver = pgsql\nconnect = host=127.0.0.1 port=54x32\n", 2, "connect"},
        {"connect: port 0", "driver = mysql\nconnect = host=127.0.0.1 port=0\n", 2, "connect"},
        {"connect: port too big", "driver = mysql\nconnect = host=127.0.0.1 port=70000\n", 2, "connect"},
        {"connect: empty host", "driver = pgsql\nconnect = host=a,,b\n", 2, "connect"},
        {"connect: maxconns 0", "driver = pgsql\nconnect = host=127.0.0.1 maxconns=0\n", 2, "connect"},
        {"connect: unterminated quote", "driver = pgsql\nconnect = host=127.0.0.1 password='abc\n", 2, "connect"},
        {"connect: mysql key for pgsql", "driver = pgsql\nconnect = host=127.0.0.1 ssl_ca=/x\n", 2, "connect"},
        {"control character", kMinimal + "password_query = SELECT \x01\n", 3, ""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        try {
            parse(c.text);
            FAIL("no error");
        } catch (const ConfigError& e) {
            CHECK(e.file() == "t.conf");
            CHECK(e.line() == c.line);
            CHECK(e.key() == c.key);
        }
    }
}

TEST_CASE("sql config: Dovecot's syntax read unchanged") {
    const auto f = parse(
        "# PostfixAdmin\n"
        "driver = pgsql\n"
        "connect = host=/var/run/postgresql host=192.0.2.7 port=5433 dbname=postfix user=postfix "
        "password='p w\\'d' sslmode=disable maxconns=12 connect_timeout=3\n"
        "default_pass_scheme = SHA512-CRYPT   # php_crypt\n"
        "password_query = SELECT username AS user, password \\\n"
        "   FROM mailbox WHERE username = '%u' AND active = '1'\n"
        "user_query = \"SELECT maildir AS home FROM mailbox WHERE username = '%u' # not a comment\"\n"
        "iterate_query = SELECT username AS user FROM mailbox\n"
        "update_query = UPDATE x SET y = 1\n");
    CHECK(f.driver == DriverKind::Pgsql);
    REQUIRE(f.connect.hosts.size() == 2);
    CHECK(f.connect.hosts[0].name == "/var/run/postgresql");
    CHECK(f.connect.hosts[0].is_socket);
    CHECK(f.connect.hosts[1].name == "192.0.2.7");
    CHECK_FALSE(f.connect.hosts[1].is_socket);
    CHECK(f.connect.port == "5433");
    CHECK(f.connect.password == "p w'd");
    CHECK(f.connect.maxconns == 12);
    CHECK(f.connect.connect_timeout == std::chrono::seconds(3));
    REQUIRE(f.connect.options.size() == 1);
    CHECK(f.connect.options[0] == std::pair<std::string, std::string>{"sslmode", "disable"});
    CHECK(f.default_pass_scheme == "SHA512-CRYPT");
    CHECK(f.password_query == "SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active = '1'");
    CHECK(f.user_query == "SELECT maildir AS home FROM mailbox WHERE username = '%u' # not a comment");
    CHECK(f.iterate_query == "SELECT username AS user FROM mailbox");
    CHECK(f.line_of("password_query") == 5);

    const auto m = parse("driver = mysql\nconnect = host=localhost,127.0.0.1 dbname=mail\n");
    CHECK(m.connect.hosts.size() == 2);
    CHECK(m.default_pass_scheme == "MD5");  // Dovecot's default
    CHECK(m.password_query.find("'%n'") != std::string::npos);  // Dovecot's default query

    const auto d = parse("driver = mysql\nconnect = dbname=mail\n");
    REQUIRE(d.connect.hosts.size() == 1);
    CHECK(d.connect.hosts[0].is_socket);  // the library's default socket
}

TEST_CASE("sql query: pgsql turns every variable into a bound parameter") {
    struct Case {
        const char* label;
        std::string tmpl;
        std::string user;
        std::string text;
        std::vector<std::string> params;
    };
    const std::vector<Case> cases = {
        {"whole literal", "SELECT password FROM mailbox WHERE username = '%u'", "a@b",
         "SELECT password FROM mailbox WHERE username = $1", {"a@b"}},
        {"quotes in the value", "WHERE username = '%u'", "x' OR '1'='1", "WHERE username = $1", {"x' OR '1'='1"}},
        {"backslash and percent", "WHERE u = '%u'", "a\\'%u%%", "WHERE u = $1", {"a\\'%u%%"}},
        {"bare variable", "WHERE u = %u", "1 OR 1=1", "WHERE u = $1", {"1 OR 1=1"}},
        {"inside a longer literal", "SELECT '/var/mail/%d/%n' AS home", "al@ex.org",
         "SELECT ('/var/mail/' || $1 || '/' || $2) AS home", {"ex.org", "al"}},
        {"doubled quote kept", "SELECT 'it''s %n'", "bob", "SELECT ('it''s ' || $1)", {"bob"}},
        {"modifier before binding", "WHERE u = '%Lu'", "MiXeD@Ex", "WHERE u = $1", {"mixed@ex"}},
        {"literal percent", "WHERE u LIKE '%%x' AND v = '%n'", "q", "WHERE u LIKE '%x' AND v = $1", {"q"}},
        {"same variable twice", "'%s' = 'smtp' OR '%s' <> 'smtp'", "u", "$1 = 'smtp' OR $2 <> 'smtp'", {"smtp", "smtp"}},
        {"UTF-8", "WHERE u = '%u'", "j\xc3\xb6rg@b\xc3\xbc.de", "WHERE u = $1", {"j\xc3\xb6rg@b\xc3\xbc.de"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = mark(c.tmpl, user_vars(c.user));
        REQUIRE(m);
        auto st = render_pgsql(*m);
        REQUIRE(st);
        CHECK(st->text == c.text);
        CHECK(st->params == c.params);
    }
    SUBCASE("refused") {
        auto nul = mark("WHERE u = '%u'", user_vars("a\0b"s));
        REQUIRE(nul);
        CHECK_FALSE(render_pgsql(*nul));
        auto ident = mark("SELECT \"%u\" FROM t", user_vars("a"));
        REQUIRE(ident);
        CHECK_FALSE(render_pgsql(*ident));
        auto estr = mark("WHERE u = E'%u'", user_vars("a"));
        REQUIRE(estr);
        CHECK_FALSE(render_pgsql(*estr));
        auto open = mark("WHERE u = '%u", user_vars("a"));
        REQUIRE(open);
        CHECK_FALSE(render_pgsql(*open));
        CHECK_FALSE(mark("WHERE u = '%q'", user_vars("a")));
        CHECK_FALSE(mark("WHERE u = '%{nosuch}'", user_vars("a")));
    }
}

TEST_CASE("sql query: mysql escapes each value inside its literal") {
    struct Case {
        const char* label;
        std::string tmpl;
        std::string user;
        std::string text;
    };
    const std::vector<Case> cases = {
        {"whole literal", "WHERE username = '%u'", "a@b", "WHERE username = 'a@b'"},
        {"quote", "WHERE username = '%u'", "x' OR '1'='1", "WHERE username = 'x\\' OR \\'1\\'=\\'1'"},
        {"backslash", "WHERE username = '%u'", "a\\", "WHERE username = 'a\\\\'"},
        {"bare variable gets a literal", "WHERE id = %u", "1 OR 1=1", "WHERE id = '1 OR 1=1'"},
        {"inside a longer literal", "CONCAT('/var/mail/%d/', maildir)", "al@ex.org", "CONCAT('/var/mail/ex.org/', maildir)"},
        {"double-quoted literal", "WHERE u = \"%u\"", "a\"b", "WHERE u = \"a\\\"b\""},
        {"escaped quote in template kept", "WHERE u = 'it\\'s %n'", "b", "WHERE u = 'it\\'s b'"},
        {"NUL", "WHERE u = '%u'", "a\0b"s, "WHERE u = 'a\\0b'"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = mark(c.tmpl, user_vars(c.user));
        REQUIRE(m);
        auto st = render_mysql(*m, fake_escape);
        REQUIRE(st);
        CHECK(*st == c.text);
    }
    auto ident = mark("SELECT `%u` FROM t", user_vars("a"));
    REQUIRE(ident);
    CHECK_FALSE(render_mysql(*ident, fake_escape));
}

TEST_CASE("sql query: mysql prepared statements bind each literal holding values") {
    struct Case {
        const char* label;
        std::string tmpl;
        std::string user;
        std::string text;
        std::vector<std::string> params;
    };
    const std::vector<Case> cases = {
        {"whole literal", "SELECT password FROM mailbox WHERE username = '%u' AND active = '1'", "a@b",
         "SELECT password FROM mailbox WHERE username = ? AND active = '1'", {"a@b"}},
        {"quotes and backslashes in the value", "WHERE u = '%u'", "x' OR '1'='1\\", "WHERE u = ?",
         {"x' OR '1'='1\\"}},
        {"percent and question mark in the value", "WHERE u = '%u'", "%u%%?", "WHERE u = ?", {"%u%%?"}},
        {"bare variable", "WHERE id = %u", "1 OR 1=1", "WHERE id = ?", {"1 OR 1=1"}},
        {"inside a longer literal: one value", "WHERE username = '%n@%d'", "al@ex.org", "WHERE username = ?",
         {"al@ex.org"}},
        {"CONCAT keeps its parts", "CONCAT('/var/mail/%d/', maildir, '%n')", "al@ex.org",
         "CONCAT(?, maildir, ?)", {"/var/mail/ex.org/", "al"}},
        {"doubled quote in the fixed text", "SELECT 'it''s %n'", "bob", "SELECT ?", {"it's bob"}},
        {"double-quoted literal", "WHERE u = \"%u\" AND x = \"say \"\"hi\"\"\"", "a\"b",
         "WHERE u = ? AND x = \"say \"\"hi\"\"\"", {"a\"b"}},
        {"literal without values kept", "WHERE a = 'x\\'y' AND u = '%u'", "q", "WHERE a = 'x\\'y' AND u = ?",
         {"q"}},
        {"NUL in the value", "WHERE u = '%u'", "a\0b"s, "WHERE u = ?", {"a\0b"s}},
        {"UTF-8", "WHERE u = '%u'", "j\xc3\xb6rg@b\xc3\xbc.de", "WHERE u = ?", {"j\xc3\xb6rg@b\xc3\xbc.de"}},
        {"same variable twice", "'%s' = 'smtp' OR '%s' <> 'smtp'", "u", "? = 'smtp' OR ? <> 'smtp'",
         {"smtp", "smtp"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = mark(c.tmpl, user_vars(c.user));
        REQUIRE(m);
        auto st = render_mysql_params(*m);
        REQUIRE(st);
        REQUIRE(*st);
        CHECK((*st)->text == c.text);
        CHECK((*st)->params == c.params);
    }
    SUBCASE("the escaped path where a placeholder cannot stand") {
        for (const char* tmpl : {"WHERE u = 'it\\'s %n'",   // backslash escape in the fixed text
                                 "WHERE u = _utf8mb4'%u'",   // introducer
                                 "WHERE u = X'%u'",          // hex literal
                                 "WHERE u = N'%u'"}) {
            CAPTURE(tmpl);
            auto m = mark(tmpl, user_vars("b"));
            REQUIRE(m);
            auto st = render_mysql_params(*m);
            REQUIRE(st);
            CHECK_FALSE(*st);
            CHECK(render_mysql(*m, fake_escape));  // which still renders
        }
    }
    SUBCASE("refused") {
        auto ident = mark("SELECT `%u` FROM t", user_vars("a"));
        REQUIRE(ident);
        CHECK_FALSE(render_mysql_params(*ident));
        auto open = mark("WHERE u = '%u", user_vars("a"));
        REQUIRE(open);
        CHECK_FALSE(render_mysql_params(*open));
    }
}

TEST_CASE("sql fields: password_query columns") {
    const std::vector<std::string> cols = {"user", "password", "nologin", "reason", "userdb_home", "allow_nets", "proxy"};
    SUBCASE("all set") {
        Row row = {"Alice@Example.org", "{PLAIN}x", "Y", "moved", "/home/a", "10.0.0.0/8", std::nullopt};
        auto p = pass_row(cols, row, "alice@example.org");
        CHECK(p.user == "Alice@Example.org");
        CHECK(p.password_column);
        CHECK(p.password == "{PLAIN}x");
        CHECK(p.extra == Fields{{"nologin", "Y"}, {"reason", "moved"}, {"allow_nets", "10.0.0.0/8"}});
        CHECK(p.userdb == Fields{{"home", "/home/a"}});
    }
    SUBCASE("NULL password") {
        Row row = {std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
        auto p = pass_row(cols, row, "a");
        CHECK(p.password_column);
        CHECK_FALSE(p.password);
        CHECK(p.user.empty());
        CHECK(p.extra.empty());
    }
    SUBCASE("password_noscheme, username and domain rewrite") {
        auto p = pass_row({"password_noscheme", "username"}, Row{"{abc}", "bob"}, "alice@ex.org");
        CHECK(p.noscheme);
        CHECK(p.user == "bob@ex.org");
        auto q = pass_row({"password", "domain"}, Row{"x", "new.org"}, "alice@ex.org");
        CHECK(q.user == "alice@new.org");
    }
    SUBCASE("userdb query, iterate rows") {
        auto u = user_row({"home", "uid", "gid", "quota_rule", "user", "mail"}, Row{"/v/a", "2000", "2000", "*:bytes=0", "a@b", std::nullopt});
        CHECK(u.user == "a@b");
        CHECK(u.fields == Fields{{"home", "/v/a"}, {"uid", "2000"}, {"gid", "2000"}, {"quota_rule", "*:bytes=0"}});
        CHECK(iterate_user({"user"}, Row{"a@b"}) == "a@b");
        CHECK(iterate_user({"username", "domain"}, Row{"a", "b"}) == "a@b");
        CHECK_FALSE(iterate_user({"other"}, Row{"a"}));
        CHECK_FALSE(iterate_user({"user"}, Row{std::nullopt}));
    }
}

namespace {

const std::string kSqlHead = "[[listener]]\npath = \"/tmp/x\"\n";

// The inline settings of the first [[passdb]] (or [[userdb]]) of `body`.
SqlFile inline_settings(const std::string& body, bool passdb = true) {
    const auto c = postern::config::load_string(
        kSqlHead + (passdb ? "" : "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/tmp/u\"\n") + body, "p.conf");
    return read_sql_section((passdb ? c.passdbs : c.userdbs).at(0).settings, passdb);
}

}  // namespace

TEST_CASE("sql config: Dovecot 2.4 settings inline in postern.conf") {
    SUBCASE("mysql") {
        const SqlFile f = inline_settings(
            "[[passdb]]\ndriver = \"sql\"\nsql_driver = \"mysql\"\nmysql_host = [\"db1\", \"/run/mysqld/mysqld.sock\"]\n"
            "mysql_port = 3307\nmysql_user = \"postfix\"\nmysql_password = \"s3cret\"\nmysql_dbname = \"postfix\"\n"
            "mysql_connection_limit = 9\nmysql_connect_timeout = \"3s\"\nmysql_read_timeout = \"10s\"\n"
            "query = \"SELECT password FROM mailbox WHERE username = '%{user | lower}'\"\n"
            "default_password_scheme = \"MD5-CRYPT\"\n");
        CHECK(f.driver == DriverKind::Mysql);
        REQUIRE(f.connect.hosts.size() == 2);
        CHECK(f.connect.hosts[0].name == "db1");
        CHECK_FALSE(f.connect.hosts[0].is_socket);
        CHECK(f.connect.hosts[1].is_socket);
        CHECK(f.connect.port == "3307");
        CHECK(f.connect.user == "postfix");
        CHECK(f.connect.password == "s3cret");
        CHECK(f.connect.dbname == "postfix");
        CHECK(f.connect.maxconns == 9);
        CHECK(f.connect.connect_timeout == std::chrono::seconds(3));
        CHECK(f.connect.options == std::vector<std::pair<std::string, std::string>>{{"read_timeout", "10"}});
        CHECK(f.password_query == "SELECT password FROM mailbox WHERE username = '%{user | lower}'");
        CHECK(f.default_pass_scheme == "MD5-CRYPT");
        CHECK(f.path == "p.conf:3 passdb[0]");
    }
    SUBCASE("mysql with TLS") {
        const SqlFile f = inline_settings(
            "[[passdb]]\ndriver = \"sql\"\nsql_driver = \"mysql\"\nmysql_ssl = true\n"
            "ssl_client_ca_file = \"/etc/ssl/ca.pem\"\npassdb_sql_query = \"SELECT password FROM u\"\n");
        CHECK(f.connect.options == std::vector<std::pair<std::string, std::string>>{
                                       {"ssl_ca", "/etc/ssl/ca.pem"}, {"ssl_verify_server_cert", "yes"}});
        CHECK(f.password_query == "SELECT password FROM u");
        CHECK(f.connect.hosts.size() == 1);  // the default unix socket
        CHECK(f.connect.hosts[0].name.empty());
    }
    SUBCASE("pgsql userdb") {
        const SqlFile f = inline_settings(
            "[[userdb]]\ndriver = \"sql\"\nsql_driver = \"pgsql\"\npgsql_host = \"127.0.0.1\"\n"
            "userdb_sql_query = \"SELECT home FROM mailbox WHERE username = '%u'\"\n"
            "userdb_sql_iterate_query = \"SELECT username AS user FROM mailbox\"\n"
            "translate_fields = \"dovecot24\"\n"  // read by the configuration, not an SQL setting
            "[userdb.pgsql_parameters]\nuser = \"postfix\"\npassword = \"pw\"\ndbname = \"postfix\"\nport = 5433\n"
            "sslmode = \"disable\"\n",
            false);
        CHECK(f.driver == DriverKind::Pgsql);
        CHECK(f.connect.port == "5433");
        CHECK(f.connect.user == "postfix");
        CHECK(f.connect.password == "pw");
        CHECK(f.connect.options == std::vector<std::pair<std::string, std::string>>{{"sslmode", "disable"}});
        CHECK(f.user_query == "SELECT home FROM mailbox WHERE username = '%u'");
        CHECK(f.iterate_query == "SELECT username AS user FROM mailbox");
    }
}

TEST_CASE("sql config: bad inline settings name file, line and key, never a password") {
    struct Case {
        const char* label;
        std::string body;
        const char* where;  // "FILE:LINE: KEY"
        bool passdb = true;
    };
    const std::string db = "[[passdb]]\ndriver = \"sql\"\n";  // lines 3-4
    const std::vector<Case> cases = {
        {"neither args nor sql_driver", db + "query = \"SELECT 1\"\n", "p.conf:3: passdb[0].args"},
        {"args and inline", db + "args = \"/etc/x.conf.ext\"\nsql_driver = \"mysql\"\n", "p.conf:6: passdb[0].sql_driver"},
        {"unknown driver", db + "sql_driver = \"sqlite\"\nquery = \"x\"\n", "p.conf:5: passdb[0].sql_driver"},
        {"unknown key", db + "sql_driver = \"mysql\"\nquery = \"x\"\nmysql_pasword = \"hunter2\"\n",
         "p.conf:7: passdb[0].mysql_pasword"},
        {"other driver's key", db + "sql_driver = \"mysql\"\nquery = \"x\"\npgsql_host = \"h\"\n",
         "p.conf:7: passdb[0].pgsql_host"},
        {"no query", db + "sql_driver = \"mysql\"\nmysql_password = \"hunter2\"\n", "p.conf:3: passdb[0].query"},
        {"query twice", db + "sql_driver = \"mysql\"\nquery = \"a\"\npassdb_sql_query = \"b\"\n",
         "p.conf:7: passdb[0].passdb_sql_query"},
        {"bad port", db + "sql_driver = \"mysql\"\nquery = \"a\"\nmysql_port = 70000\n", "p.conf:7: passdb[0].mysql_port"},
        {"bad limit", db + "sql_driver = \"mysql\"\nquery = \"a\"\nmysql_connection_limit = 0\n",
         "p.conf:7: passdb[0].mysql_connection_limit"},
        {"ssl without ca", db + "sql_driver = \"mysql\"\nquery = \"a\"\nmysql_ssl = true\n", "p.conf:7: passdb[0].mysql_ssl"},
        {"ssl file without ssl", db + "sql_driver = \"mysql\"\nquery = \"a\"\nssl_client_ca_file = \"/x\"\n",
         "p.conf:7: passdb[0].ssl_client_ca_file"},
        {"unknown scheme", db + "sql_driver = \"mysql\"\nquery = \"a\"\ndefault_password_scheme = \"ROT13\"\n",
         "p.conf:7: passdb[0].default_password_scheme"},
        {"userdb key in a passdb", db + "sql_driver = \"mysql\"\nquery = \"a\"\niterate_query = \"b\"\n",
         "p.conf:7: passdb[0].iterate_query"},
        {"unknown pgsql parameter", db + "sql_driver = \"pgsql\"\nquery = \"a\"\n[passdb.pgsql_parameters]\n"
                                         "password = \"hunter2\"\npasswrd = \"hunter2\"\n",
         "p.conf:9: passdb[0].pgsql_parameters.passwrd"},
        {"bad pgsql port", db + "sql_driver = \"pgsql\"\nquery = \"a\"\n[passdb.pgsql_parameters]\nport = \"x\"\n",
         "p.conf:8: passdb[0].pgsql_parameters.port"},
        {"maxconns as a parameter", db + "sql_driver = \"pgsql\"\nquery = \"a\"\n[passdb.pgsql_parameters]\nmaxconns = 3\n",
         "p.conf:8: passdb[0].pgsql_parameters.maxconns"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        try {
            inline_settings(c.body, c.passdb);
            FAIL_CHECK("no error");
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find(c.where) == 0);
            CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
        }
    }
}

TEST_CASE("sql fields: Dovecot 2.4 fields { } templates over the row") {
    const auto vars = user_vars("Bob@Ex.org");
    SUBCASE("passdb: sql:, passdb:, request variables, rename, nopassword, replace") {
        const std::vector<std::string> cols = {"username", "password", "maildir", "nul", "reason"};
        const Row row = {"bob", "{PLAIN}x", "b/", std::nullopt, "column"};
        auto p = pass_row(cols, row, "Bob@Ex.org");
        const FieldTemplates f = {{"user", "%{sql:username}@%{user | domain | lower}"},
                                  {"nopassword", "yes"},
                                  {"userdb_home", "/v/%{passdb:maildir}"},
                                  {"flag", "%{sql:NUL}"},           // a NULL column reads "yes"
                                  {"empty", "<%{passdb:nul}>"},     // not set: ""
                                  {"pw", "<%{passdb:password}>"},   // the password is no field
                                  {"reason", "template"}};
        REQUIRE(apply_pass_fields(p, f, cols, row, vars));
        CHECK(p.user == "bob@ex.org");
        CHECK(p.password == "{PLAIN}x");
        CHECK(p.userdb == Fields{{"home", "/v/b/"}});
        CHECK(p.extra == Fields{{"maildir", "b/"}, {"nopassword", "yes"}, {"flag", "yes"}, {"empty", "<>"},
                                {"pw", "<>"}, {"reason", "template"}});
    }
    SUBCASE("every template is expanded before any field is set") {
        auto p = pass_row({"password", "b"}, Row{"x", "old"}, "a");
        REQUIRE(apply_pass_fields(p, {{"b", "new"}, {"a", "%{passdb:b}"}}, {"password", "b"}, Row{"x", "old"}, vars));
        CHECK(p.extra == Fields{{"b", "new"}, {"a", "old"}});
    }
    SUBCASE(":default and :remove") {
        const std::vector<std::string> cols = {"password", "proxy", "host"};
        const Row row = {"x", "y", "10.0.0.1"};
        auto p = pass_row(cols, row, "a");
        REQUIRE(apply_pass_fields(p, {{"host:default", "10.9.9.9"}, {"port:default", "143"}, {"proxy:remove", ""}},
                                  cols, row, vars));
        CHECK(p.extra == Fields{{"host", "10.0.0.1"}, {"port", "143"}});
    }
    SUBCASE("fields_import_all off: only the fields") {
        const std::vector<std::string> cols = {"password", "reason"};
        const Row row = {"{PLAIN}x", "r"};
        auto p = pass_row(cols, row, "a", false);
        CHECK(p.password_column);
        CHECK_FALSE(p.password);
        REQUIRE(apply_pass_fields(p, {{"password", "%{sql:password}"}, {"why", "<%{passdb:reason}>"}}, cols, row,
                                  vars, false));
        CHECK(p.password == "{PLAIN}x");
        CHECK(p.extra == Fields{{"why", "<>"}});
    }
    SUBCASE("a column the row lacks fails the lookup") {
        auto p = pass_row({"password"}, Row{"x"}, "a");
        auto r = apply_pass_fields(p, {{"home", "%{sql:nosuch}"}}, {"password"}, Row{"x"}, vars);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("field home") == 0);
        CHECK(r.error().message.find("sql:nosuch") != std::string::npos);
    }
    SUBCASE("userdb: sql:, userdb:, user rename; a NULL column is absent") {
        const std::vector<std::string> cols = {"uid", "maildir", "quota", "nul"};
        const Row row = {"2000", "b/", "1024", std::nullopt};
        auto u = user_row(cols, row);
        REQUIRE(apply_user_fields(u,
                                  {{"home", "/var/vmail/%{user | domain | lower}/%{user | username | lower}"},
                                   {"mail", "maildir:~/%{userdb:maildir}"},
                                   {"quota_rule", "*:bytes=%{sql:quota}"},
                                   {"uid", "%{userdb:uid}1"},
                                   {"user", "%{user | lower}"}},
                                  cols, row, vars));
        CHECK(u.user == "bob@ex.org");
        CHECK(u.fields == Fields{{"maildir", "b/"}, {"quota", "1024"}, {"home", "/var/vmail/ex.org/bob"},
                                 {"mail", "maildir:~/b/"}, {"quota_rule", "*:bytes=1024"}, {"uid", "20001"}});
        auto v = user_row(cols, row);
        CHECK_FALSE(apply_user_fields(v, {{"x", "%{sql:nul}"}}, cols, row, vars));
        auto w = user_row(cols, row, false);
        REQUIRE(apply_user_fields(w, {{"home", "/h/%{sql:maildir}<%{userdb:maildir}>"}}, cols, row, vars));
        CHECK(w.fields == Fields{{"home", "/h/b/<>"}});
    }
    SUBCASE("templates checked at start-up") {
        CHECK(check_field_template("/v/%{user | domain}/%{sql:x | lower}%{passdb:y}%{userdb:z}%{remote_ip}").empty());
        CHECK(check_field_template("%{nosuch}").find("nosuch") != std::string::npos);
        CHECK_FALSE(check_field_template("%{user | nosuchfilter}").empty());
        CHECK_FALSE(check_field_template("%{sql:}").empty());
    }
}

TEST_CASE("sql config: fields and fields_import_all in the table") {
    const SqlFile f = inline_settings(
        "[[passdb]]\ndriver = \"sql\"\nsql_driver = \"mysql\"\nquery = \"SELECT password FROM u\"\n"
        "fields_import_all = false\n"
        "fields = { user = \"%{sql:username}\", nopassword = \"yes\", \"home:default\" = \"/h\", a = \"%{user}\" }\n");
    REQUIRE(f.fields.size() == 4);
    CHECK(f.fields[0].name == "user");  // in the file's order
    CHECK(f.fields[0].tmpl == "%{sql:username}");
    CHECK(f.fields[1].name == "nopassword");
    CHECK(f.fields[2].name == "home:default");
    CHECK(f.fields[3].name == "a");
    CHECK_FALSE(f.fields_import_all);
    const SqlFile u = inline_settings(
        "[[userdb]]\ndriver = \"sql\"\nsql_driver = \"pgsql\"\nquery = \"SELECT uid FROM u\"\n"
        "[userdb.fields]\nhome = \"/v/%d/%n\"\nmail = \"maildir:~/%{userdb:maildir}\"\n",
        false);
    REQUIRE(u.fields.size() == 2);
    CHECK(u.fields[1].name == "mail");
    CHECK(u.fields_import_all);
    for (const auto& [body, where] : std::vector<std::pair<std::string, std::string>>{
             {"fields = { home = \"%{nosuch}\" }\n", "p.conf:7: passdb[0].fields.home"},
             {"[passdb.fields]\nhome = \"/h\"\nmail = \"%{user | nosuchfilter}\"\n", "p.conf:9: passdb[0].fields.mail"},
             {"fields = [\"home=/h\"]\n", "p.conf:7: passdb[0].fields"},
             {"fields = { home = 1 }\n", "p.conf:7: passdb[0].fields.home"},
             {"fields_import_all = \"no\"\n", "p.conf:7: passdb[0].fields_import_all"}}) {
        CAPTURE(body);
        try {
            inline_settings("[[passdb]]\ndriver = \"sql\"\nsql_driver = \"mysql\"\nquery = \"SELECT password FROM u\"\n" +
                            body);
            FAIL_CHECK("no error");
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find(where) == 0);
        }
    }
}
