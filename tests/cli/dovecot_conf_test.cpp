#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/dovecot_conf.hpp"
#include "cli/import_dovecot.hpp"

namespace dc = postern::cli::dovecot;
namespace fs = std::filesystem;

namespace {

// A configuration tree in a fresh temporary directory, removed afterwards.
struct TempTree {
    fs::path dir;
    TempTree() {
        char tmpl[] = "/tmp/postern-dovecot-conf-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~TempTree() { fs::remove_all(dir); }
    std::string put(const std::string& rel, const std::string& text) const {
        const fs::path p = dir / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p.string();
    }
    std::string path(const std::string& rel = "dovecot.conf") const { return (dir / rel).string(); }
};

std::string error_of(const std::string& path) {
    try {
        dc::read(path);
    } catch (const dc::ConfError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("dovecot conf: malformed input names file:line") {
    TempTree t;
    struct Case {
        const char* label;
        const char* text;
        const char* expect;  // in the error
    };
    const Case cases[] = {
        {"unbalanced close", "a = 1\n}\n", "dovecot.conf:2: '}' without an open section"},
        {"unclosed section", "passdb {\n  driver = pam\n", "dovecot.conf:1: section passdb is not closed"},
        {"not a setting", "just words\n", "dovecot.conf:1: expected"},
        {"unknown section", "frobnicate {\n}\n", "dovecot.conf:1: unknown section \"frobnicate\""},
        {"unterminated quote", "a = \"open\n", "dovecot.conf:1: a: unterminated quote"},
        {"missing include", "\n!include nothere.conf\n", "dovecot.conf:2: !include nothere.conf: no such file"},
        {"glob without match", "!include conf.d/*.conf\n", "no file matches"},
        {"unknown variable", "a = $nosuch\n", "dovecot.conf:1: a: unknown setting $nosuch"},
        {"version after a section", "service x {\n}\ndovecot_config_version = 2.4.0\n",
         "dovecot.conf:3: dovecot_config_version must come before any section"},
        {"NUL", "a = b\0c\n", "NUL"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        std::string text = c.text;
        if (std::string(c.label) == "NUL") text = std::string("a = b\0c\n", 8);
        t.put("dovecot.conf", text);
        CHECK(error_of(t.path()).find(c.expect) != std::string::npos);
    }
}

TEST_CASE("dovecot conf: include loop and unreadable file") {
    TempTree t;
    t.put("dovecot.conf", "!include a.conf\n");
    t.put("a.conf", "x = 1\n!include b.conf\n");
    t.put("b.conf", "!include a.conf\n");
    const auto e = error_of(t.dir.string());
    CHECK(e.find("b.conf:1: !include") != std::string::npos);
    CHECK(e.find("include loop") != std::string::npos);

    t.put("dovecot.conf", "!include secret.conf\n");
    const auto p = t.put("secret.conf", "x = 1\n");
    ::chmod(p.c_str(), 0);
    if (::geteuid() != 0) CHECK(error_of(t.path()).find("dovecot.conf:1: ") != std::string::npos);
    // A directory where a file is expected.
    fs::create_directories(t.dir / "d.conf");
    t.put("dovecot.conf", "!include d.conf\n");
    CHECK(error_of(t.path()).find("is a directory") != std::string::npos);
}

TEST_CASE("dovecot conf: includes, globs, sections, values") {
    TempTree t;
    t.put("dovecot.conf",
          "# comment\n"
          "protocols = imap pop3\n"
          "!include conf.d/*.conf\n"
          "!include_try local.conf\n"
          "!include_try nothere/*.conf\n"
          "auth_mechanisms = plain \\\n"
          "   login # trailing comment\n"
          "quoted = \"a # not a comment\\\" x\"\n"
          "ref = $protocols lmtp\n"
          "set = $SET:quoted\n"
          "env = $ENV:HOME_X\n"
          "secret = <secret.txt\n"
          "crypt = $1$salt$hash\n");
    t.put("conf.d/10-auth.conf", "!include auth-passwdfile.conf.ext\nauth_username_format = %Lu\n");
    t.put("conf.d/auth-passwdfile.conf.ext",
          "passdb {\n  driver = passwd-file\n  args = scheme=CRYPT username_format=%u /etc/dovecot/users\n}\n");
    t.put("conf.d/20-master.conf",
          "service auth {\n  unix_listener \"/var/spool/postfix/private/auth\" {\n    mode = 0660\n"
          "    user = $default_internal_user\n  }\n}\n");
    t.put("secret.txt", "from a file\n");
    auto tree = dc::read(t.dir.string(), {{"HOME_X", "/home/x"}});
    CHECK_FALSE(tree.is_24());
    auto get = [&](const std::string& k) -> std::string {
        for (const auto& n : tree.top)
            if (!n.section && n.key == k) return n.value;
        return "<unset>";
    };
    CHECK(get("auth_mechanisms") == "plain login");
    CHECK(get("quoted") == "a # not a comment\" x");
    CHECK(get("ref") == "imap pop3 lmtp");
    CHECK(get("set") == get("quoted"));
    CHECK(get("env") == "/home/x");
    CHECK(get("secret") == "from a file");
    CHECK(get("crypt") == "$1$salt$hash");
    CHECK(get("auth_username_format") == "%Lu");
    const dc::Node* passdb = nullptr;
    const dc::Node* service = nullptr;
    for (const auto& n : tree.top) {
        if (n.section && n.key == "passdb") passdb = &n;
        if (n.section && n.key == "service") service = &n;
    }
    REQUIRE(passdb);
    CHECK(passdb->file.ends_with("conf.d/auth-passwdfile.conf.ext"));
    CHECK(passdb->line == 1);
    REQUIRE(passdb->setting("args"));
    CHECK(passdb->setting("args")->line == 3);
    REQUIRE(service);
    CHECK(service->name == "auth");
    REQUIRE(service->children.size() == 1);
    CHECK(service->children[0].name == "/var/spool/postfix/private/auth");
    CHECK(service->children[0].setting("user")->value == "dovecot");
}

TEST_CASE("dovecot conf: 2.4 version, named sections, filters") {
    TempTree t;
    t.put("dovecot.conf",
          "dovecot_config_version = 2.4.1\n"
          "dovecot_storage_version = 2.4.1\n"
          "passdb passwd-file {\n  passwd_file_path = /etc/dovecot/users\n  fields {\n    home=/h/%{user}\n  }\n}\n"
          "protocol imap {\n  auth_mechanisms = plain\n}\n"
          "service auth {\n  user = $SET:default_internal_user\n}\n");
    auto tree = dc::read(t.path());
    CHECK(tree.is_24());
    CHECK(tree.version == "2.4.1");
    REQUIRE(tree.top.size() == 5);
    CHECK(tree.top[2].name == "passwd-file");
    CHECK(tree.top[2].children[1].section);
    CHECK(tree.top[2].children[1].children[0].key == "home");
    CHECK(tree.top[2].children[1].children[0].value == "/h/%{user}");
    CHECK(tree.top[4].setting("user")->value == "dovecot");
}

TEST_CASE("dovecot import: 2.4 variables in postern's form") {
    struct Case {
        const char* in;
        const char* out;  // nullptr: refused
    };
    const Case cases[] = {
        {"%{user | nosuchfilter}", nullptr},
        {"%{user | lower | upper}", "%{user | lower | upper}"},
        {"%{user | username | lower | md5}", "%{username | lower | md5}"},
        {"%{user | sha256 | truncate(8)}", "%{user | sha256 | truncate(8)}"},
        {"%{local_ip | md5}", "%{lip | md5}"},
        {"%{user | md6}", nullptr},
        {"%{unknown}", nullptr},
        {"%{user", nullptr},
        {"%u", "%u"},
        {"%Lu", "%Lu"},
        {"%%", "%%"},
        {"%{user}", "%u"},
        {"%{user | lower}", "%Lu"},
        {"%{user|lower}", "%Lu"},
        {"%{user | username}", "%n"},
        {"%{user | domain | lower}", "%Ld"},
        {"/var/vmail/%{user | domain}/%{user | username}", "/var/vmail/%d/%n"},
        {"%{service}", "%s"},
        {"%{user | index('@', 0) | if('eq', 'root', 'admin', 'user')}",
         "%{user | index('@', 0) | if('eq', 'root', 'admin', 'user')}"},
        {"%{literal('x') | upper}", "%{literal('x') | upper}"},
        {"%{literal('x') | nosuchfilter}", nullptr},
        {"%{sql:home}", nullptr},  // only in an sql database's fields { }
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        std::string out;
        const bool ok = dc::to_postern_vars(c.in, out);
        CHECK(ok == (c.out != nullptr));
        if (ok && c.out) CHECK(out == c.out);
    }
}

TEST_CASE("dovecot import: a Debian-like 2.3 tree") {
    TempTree t;
    t.put("dovecot.conf", "!include conf.d/*.conf\n");
    t.put("conf.d/10-auth.conf",
          "auth_mechanisms = plain login cram-md5 gssapi\n"
          "auth_master_user_separator = *\n"
          "auth_failure_delay = 3 secs\n"
          "auth_cache_size = 10M\nauth_cache_ttl = 30 mins\n"
          "!include auth-master.conf.ext\n!include auth-passwdfile.conf.ext\n");
    t.put("conf.d/auth-master.conf.ext",
          "passdb {\n  driver = passwd-file\n  master = yes\n  args = /etc/dovecot/master-users\n  pass = yes\n}\n");
    t.put("conf.d/auth-passwdfile.conf.ext",
          "passdb {\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT username_format=%Lu /etc/dovecot/users\n}\n"
          "passdb {\n  driver = lua\n  args = file=/etc/dovecot/auth.lua\n}\n"
          "userdb {\n  driver = static\n  args = uid=vmail gid=vmail home=/var/vmail/%d/%n\n}\n");
    t.put("conf.d/10-master.conf",
          "service auth {\n  unix_listener auth-userdb {\n    mode = 0660\n    user = vmail\n  }\n"
          "  unix_listener /var/spool/postfix/private/auth {\n    mode = 0660\n    user = postfix\n"
          "    group = postfix\n  }\n  unix_listener imap-master {\n  }\n}\n"
          "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n");
    const auto out = dc::translate(dc::read(t.dir.string()), t.dir.string());
    const auto& c = out.config;
    CHECK(c.find("mechanisms = [\"PLAIN\", \"LOGIN\", \"CRAM-MD5\"]") != std::string::npos);
    CHECK(c.find("username_format = \"%Lu\"") != std::string::npos);
    CHECK(c.find("failure_delay = \"3s\"") != std::string::npos);
    CHECK(c.find("master_user_separator = \"*\"") != std::string::npos);
    CHECK(c.find("[cache]\nsize = 10485760\nttl = \"1800s\"\nnegative_ttl = \"3600s\"") != std::string::npos);
    CHECK(c.find("[penalty]\nenabled = false") != std::string::npos);
    CHECK(c.find("path = \"/var/run/dovecot/auth-userdb\"\nmode = \"0660\"\nuser = \"vmail\"\nrole = \"userdb\"") !=
          std::string::npos);
    CHECK(c.find("path = \"/var/spool/postfix/private/auth\"\nmode = \"0660\"\nuser = \"postfix\"\n"
                 "group = \"postfix\"\nrole = \"client\"") != std::string::npos);
    CHECK(c.find("path = \"/var/run/dovecot/imap-master\"\nmode = \"0600\"\nrole = \"master\"") != std::string::npos);
    // Dovecot's default sockets the config does not set itself, as Dovecot creates them.
    CHECK(c.find("path = \"/var/run/dovecot/auth-client\"\nmode = \"0600\"\nuser = \"dovecot\"\nrole = \"client\"") !=
          std::string::npos);
    CHECK(c.find("path = \"/var/run/dovecot/auth-login\"\nmode = \"0600\"\nuser = \"dovecot\"\nrole = \"login\"") !=
          std::string::npos);
    CHECK(c.find("path = \"/var/run/dovecot/auth-master\"\nmode = \"0600\"\nrole = \"master\"") != std::string::npos);
    CHECK(c.find("/var/run/dovecot/auth-userdb") == c.rfind("/var/run/dovecot/auth-userdb"));  // the config's only
    CHECK(c.find("login/login") == std::string::npos);
    CHECK(c.find("[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/dovecot/users\"\ndefault_scheme = "
                 "\"SHA512-CRYPT\"\nusername_format = \"%Lu\"") != std::string::npos);
    CHECK(c.find("[[master_passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/dovecot/master-users\"") !=
          std::string::npos);
    CHECK(c.find("fields = [\"uid=vmail\", \"gid=vmail\", \"home=/var/vmail/%d/%n\"]") != std::string::npos);
    REQUIRE(out.not_carried.size() == 2);
    CHECK(out.not_carried[0].find("conf.d/10-auth.conf:1: auth_mechanisms: GSSAPI is not served") !=
          std::string::npos);
    CHECK(out.not_carried[1].find("auth-passwdfile.conf.ext:5: passdb: passdb driver lua is not served") !=
          std::string::npos);
}

TEST_CASE("dovecot import: 2.4 tree with sql file, pam, listener types") {
    TempTree t;
    t.put("dovecot.conf",
          "dovecot_config_version = 2.4.1\n"
          "auth_mechanisms = plain login\n"
          "auth_username_format = %{user | lower}\n"
          "passdb master {\n  driver = passwd-file\n  master = yes\n  result_success = continue\n"
          "  passwd_file_path = /etc/dovecot/masters\n}\n"
          "passdb passwd-file {\n  default_password_scheme = crypt\n  passwd_file_path = /etc/dovecot/users\n"
          "  auth_username_format = %{user | username | lower}\n}\n"
          "passdb sql {\n  args = /etc/dovecot/dovecot-sql.conf.ext\n}\n"
          "passdb pam {\n  service_name = smtp\n  session = yes\n}\n"
          "passdb checkpassword {\n  driver = checkpassword\n}\n"
          "userdb passwd-file {\n  passwd_file_path = /etc/dovecot/users\n  fields {\n"
          "    home = /var/vmail/%{user}\n  }\n}\n"
          "userdb prefetch {\n}\n"
          "service auth {\n  unix_listener auth-client {\n    type = auth\n  }\n"
          "  unix_listener private/foo {\n    type = userdb\n    mode = 0666\n  }\n}\n");
    const auto out = dc::translate(dc::read(t.path()), t.path());
    const auto& c = out.config;
    CHECK(c.find("# postern.conf made by `postern config import --from") == 0);
    CHECK(c.find("username_format = \"%Lu\"") != std::string::npos);
    CHECK(c.find("[cache]\nenabled = false") != std::string::npos);
    CHECK(c.find("[penalty]\nbase = \"2s\"\nmax = \"15s\"\nexempt = []") != std::string::npos);
    CHECK(c.find("path = \"/run/dovecot/auth-client\"\nmode = \"0600\"\nuser = \"dovecot\"\nrole = \"client\"") !=
          std::string::npos);
    CHECK(c.find("path = \"/run/dovecot/private/foo\"\nmode = \"0666\"\nrole = \"userdb\"") != std::string::npos);
    CHECK(c.find("default_scheme = \"CRYPT\"\nusername_format = \"%Ln\"") != std::string::npos);
    CHECK(c.find("driver = \"sql\"\nargs = \"/etc/dovecot/dovecot-sql.conf.ext\"") != std::string::npos);
    CHECK(c.find("driver = \"pam\"\nservice = \"smtp\"\nsession = true") != std::string::npos);
    CHECK(c.find("[[master_passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/dovecot/masters\"") != std::string::npos);
    CHECK(c.find("[[userdb]]\ndriver = \"prefetch\"") != std::string::npos);
    CHECK(c.find("path = \"/run/dovecot/auth-userdb\"\nmode = \"0666\"\nuser = \"dovecot\"\ngroup = \"dovecot\"\n"
                 "role = \"userdb\"") != std::string::npos);
    CHECK(c.find("path = \"/run/dovecot/auth-master\"\nmode = \"0600\"\nrole = \"master\"") != std::string::npos);
    CHECK(c.find("/run/dovecot/auth-client") == c.rfind("/run/dovecot/auth-client"));
    REQUIRE(out.notes.size() == 1);
    CHECK(out.notes[0].find("login/login") != std::string::npos);
    CHECK_FALSE(out.config_has_secret);
    REQUIRE(out.not_carried.size() == 2);
    CHECK(out.not_carried[0].find("dovecot.conf:22: passdb checkpassword: passdb driver checkpassword") !=
          std::string::npos);
    CHECK(out.not_carried[1].find("dovecot.conf:27: fields: not served for this driver") != std::string::npos);
}

TEST_CASE("dovecot import: nothing to check passwords with, bad values") {
    TempTree t;
    t.put("dovecot.conf", "passdb {\n  driver = checkpassword\n  args = /usr/bin/checkpw\n}\n");
    CHECK_THROWS_AS(dc::translate(dc::read(t.path()), t.path()), dc::ConfError);
    t.put("dovecot.conf", "auth_failure_delay = soon\npassdb {\n  driver = pam\n}\n");
    try {
        dc::translate(dc::read(t.path()), t.path());
        FAIL("no error");
    } catch (const dc::ConfError& e) {
        CHECK(std::string(e.what()).find("dovecot.conf:1: auth_failure_delay") != std::string::npos);
    }
}

TEST_CASE("dovecot import: 2.4 inline SQL settings stay inline") {
    TempTree t;
    t.put("dovecot.conf",
          "dovecot_config_version = 2.4.1\n"
          "default_internal_user = mailauth\n"
          "sql_driver = pgsql\n"
          "pgsql db1.example {\n  parameters {\n    user = postfix\n    password = s3cret\n    dbname = pfa\n"
          "    sslmode = require\n  }\n}\n"
          "pgsql db2.example {\n  parameters {\n    user = postfix\n    password = s3cret\n    dbname = pfa\n"
          "    sslmode = require\n  }\n}\n"
          "passdb sql {\n  passdb_default_password_scheme = md5-crypt\n"
          "  query = SELECT password FROM mailbox WHERE username = '%{user | lower}' AND active = '1'\n}\n"
          "userdb sql {\n  query = SELECT home FROM mailbox WHERE local_part = '%{user | username}'\n"
          "  iterate_query = SELECT username AS user FROM mailbox\n}\n"
          "passdb sql2 {\n  driver = sql\n  sql_driver = mysql\n  mysql /run/mysqld/mysqld.sock {\n"
          "    user = a\n    password = s3cret\n    connect_timeout = 3 secs\n    ssl = yes\n    nosuch = 1\n  }\n"
          "  ssl_client_ca_file = /etc/ssl/ca.pem\n"
          "  query = SELECT password FROM u WHERE id = '%{user | sha256 | truncate(8)}'\n}\n");
    const auto out = dc::translate(dc::read(t.path()), t.path());
    const auto& c = out.config;
    CHECK(c.find("[[passdb]]\ndriver = \"sql\"\nsql_driver = \"pgsql\"\npgsql_host = [\"db1.example\", \"db2.example\"]\n"
                 "pgsql_parameters = { user = \"postfix\", password = \"s3cret\", dbname = \"pfa\", sslmode = "
                 "\"require\" }\nquery = \"SELECT password FROM mailbox WHERE username = '%Lu' AND active = '1'\"\n"
                 "default_password_scheme = \"MD5-CRYPT\"\n") != std::string::npos);
    CHECK(c.find("[[userdb]]\ndriver = \"sql\"\nsql_driver = \"pgsql\"\npgsql_host = [\"db1.example\", "
                 "\"db2.example\"]\n") != std::string::npos);
    CHECK(c.find("query = \"SELECT home FROM mailbox WHERE local_part = '%n'\"\n"
                 "iterate_query = \"SELECT username AS user FROM mailbox\"\n") != std::string::npos);
    CHECK(c.find("driver = \"sql\"\nsql_driver = \"mysql\"\nmysql_host = [\"/run/mysqld/mysqld.sock\"]\n"
                 "mysql_user = \"a\"\nmysql_password = \"s3cret\"\nmysql_connect_timeout = \"3s\"\nmysql_ssl = true\n"
                 "ssl_client_ca_file = \"/etc/ssl/ca.pem\"\n"
                 "query = \"SELECT password FROM u WHERE id = '%{user | sha256 | truncate(8)}'\"\n") != std::string::npos);
    // Default sockets owned by default_internal_user.
    CHECK(c.find("path = \"/run/dovecot/auth-client\"\nmode = \"0600\"\nuser = \"mailauth\"\nrole = \"client\"") !=
          std::string::npos);
    CHECK(out.config_has_secret);
    CHECK(out.files.empty());
    // The unknown mysql setting is listed with its line.
    REQUIRE(out.not_carried.size() == 1);
    CHECK(out.not_carried[0].find("dovecot.conf:36: nosuch: not a mysql setting postern has") != std::string::npos);
    for (const auto& l : out.not_carried) CHECK(l.find("s3cret") == std::string::npos);
}

TEST_CASE("dovecot import: 2.4 SQL hosts with different settings are left behind") {
    TempTree t;
    t.put("dovecot.conf",
          "dovecot_config_version = 2.4.1\nsql_driver = pgsql\n"
          "pgsql db1 {\n  parameters {\n    user = a\n    password = s3cret\n  }\n}\n"
          "pgsql db2 {\n  parameters {\n    user = b\n    password = s3cret\n  }\n}\n"
          "passdb sql {\n  query = SELECT password FROM u WHERE id = '%{user}'\n}\n"
          "passdb pam {\n}\n");
    const auto out = dc::translate(dc::read(t.path()), t.path());
    CHECK(out.config.find("sql") == std::string::npos);
    REQUIRE(out.not_carried.size() == 1);
    CHECK(out.not_carried[0].find("dovecot.conf:9: pgsql db2: pgsql host db2: parameters differ from host db1's") !=
          std::string::npos);
    CHECK(out.not_carried[0].find("s3cret") == std::string::npos);
}

TEST_CASE("dovecot import: 2.4 fields { } of an sql passdb/userdb") {
    TempTree t;
    t.put("dovecot.conf",
          "dovecot_config_version = 2.4.1\nsql_driver = pgsql\n"
          "pgsql db1 {\n  parameters {\n    user = a\n  }\n}\n"
          "passdb sql {\n  query = SELECT username, password FROM mailbox WHERE username = '%{user | safe}'\n"
          "  fields {\n    user = %{passdb:username}\n    nopassword = yes\n  }\n"
          "  fields {\n    nopassword = no\n    host:default = %{sql:host | lower}\n  }\n}\n"
          "userdb sql {\n  query = SELECT uid FROM mailbox WHERE username = '%{user}'\n"
          "  fields_import_all = no\n"
          "  fields {\n    home = /var/vmail/%{user | domain}/%{user | username}\n    uid = %{sql:uid}\n  }\n}\n"
          "userdb sql2 {\n  driver = sql\n  query = SELECT 1\n"
          "  fields {\n    home = %{sql:home | nosuchfilter}\n    quota {\n    }\n  }\n}\n");
    const auto out = dc::translate(dc::read(t.path()), t.path());
    const auto& c = out.config;
    CHECK(c.find("query = \"SELECT username, password FROM mailbox WHERE username = '%{user | safe}'\"\n"
                 "fields = { \"user\" = \"%{passdb:username}\", \"nopassword\" = \"no\", "
                 "\"host:default\" = \"%{sql:host | lower}\" }\n") != std::string::npos);
    CHECK(c.find("query = \"SELECT uid FROM mailbox WHERE username = '%u'\"\n"
                 "fields = { \"home\" = \"/var/vmail/%d/%n\", \"uid\" = \"%{sql:uid}\" }\nfields_import_all = false\n") !=
          std::string::npos);
    // The third database is left behind: a filter postern lacks, a section.
    REQUIRE(out.not_carried.size() == 2);
    CHECK(out.not_carried[0].find("dovecot.conf:31: home: \"%{sql:home | nosuchfilter}\" uses a %{...} filter") !=
          std::string::npos);
    CHECK(out.not_carried[1].find("dovecot.conf:32: quota: a section inside fields is not read") != std::string::npos);
    CHECK(c.find("sql2") == std::string::npos);
    CHECK(c.find("nosuchfilter") == std::string::npos);
}
