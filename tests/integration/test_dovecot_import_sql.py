# `postern config import` of PostfixAdmin setups on MySQL/MariaDB and
# PostgreSQL, proven against the real Dovecot: a 2.3 tree (passdb/userdb sql
# with args = dovecot-sql.conf.ext) run by Debian 12's Dovecot 2.3 on the
# host, and a 2.4 tree (sql_driver, a `mysql HOST { }` / `pgsql HOST {
# parameters { } }` block, passdb sql { query } and userdb sql { query,
# iterate_query }) run by Dovecot 2.4.1 from the Debian 13 root; posternd
# serves the import (the 2.4 one with the settings inline in postern.conf).
# Both get the conversations of test_dovecot_import.py (right, wrong,
# unknown, %Lu case variants, master users, SQL metacharacters, '%', UTF-8,
# USER/PASS/LIST on the master socket) against the same database rows, and
# the answers are compared field by field; the differences left are listed
# at the end with why. The 2.4 user query also selects ten columns made of
# 2.4 filters over the user name (md5, sha1, sha256 | truncate(8), sha384,
# sha512 | base64, sha256(rounds=3), hexlify, reverse, lfill, base64(url=1),
# regexp, index, if, concat),
# so USER compares posternd's filter output with Dovecot 2.4.1's. The same
# 2.4 tree once more with a fields { } block in the passdb and the userdb
# (templates over the columns, %{passdb:..}, %{userdb:..}, a NULL column).

import hashlib
import os
import stat
import unittest

import databases
import dovecot24_support as d24
import harness
from databases import PFA_ITERATE_QUERY, PFA_PASSWORD_QUERY, PFA_USER_QUERY, mailbox_insert, sql_file
from dovecot_support import dovecot_missing
from harness import ALICE_PASSWORD, bob_hash, require_binaries, run_cli, sha512_crypt, write_file
from test_dovecot_import import KNOWN_DIFFERENCES_23, ImportCase, tree_23, tree_24

harness.register_secret(databases.DB_PASSWORD)

DATABASES = databases.ServerSet(lambda s: load(s))


def load(server):
    sql = "INSERT INTO domain (domain, description, active) VALUES ('example.com', 'test', '1');\n"
    sql += mailbox_insert(server, "alice@example.com", "{SHA512-CRYPT}" + sha512_crypt(ALICE_PASSWORD))
    sql += mailbox_insert(server, "bob@example.com", bob_hash())  # bare $6$, as PostfixAdmin writes it
    server.sql(sql, databases.DB_NAME)


def setUpModule():
    if not harness.binaries_missing():
        DATABASES.start()


def tearDownModule():
    DATABASES.destroy()


def v24(query):
    """A PostfixAdmin query in Dovecot 2.4's variables."""
    return query.replace("'%u'", "'%{user}'")


def sql_23(etc, server):
    """The 2.3 tree's database includes: passdb and userdb sql on one file."""
    os.makedirs(etc, exist_ok=True)
    path = sql_file(os.path.join(etc, "dovecot-sql.conf.ext"), server)
    return f"""passdb {{
  driver = sql
  args = {path}
}}
userdb {{
  driver = sql
  args = {path}
}}
"""


# fields { } of the 2.4 tree's databases (sql_24(fields=True)): templates
# over the row's columns, the fields they set and the request's variables.
# The passdb query then also returns a NULL column, which %{sql:...} reads
# as "yes" (Dovecot's auth_fields_add of a NULL value).
PASSDB_FIELDS_24 = """  fields {
    greeting = hi %{passdb:user} as %{sql:user | upper}
    null_is = [%{sql:nothing}][%{passdb:nothing}]
  }
"""
USERDB_FIELDS_24 = """  fields {
    home = /srv/mail/%{user | domain}/%{user | username}
    quota_rule = *:storage=%{sql:uid}M
    mail_path = ~/%{userdb:f_reverse}
  }
"""
GREETING = "greeting=hi alice@example.com as ALICE@EXAMPLE.COM"
NULL_IS = "null_is=[yes][]"


def sql_24(server, fields=False):
    """The 2.4 tree's: sql_driver and the host block at the top, the queries
    in the databases (and with `fields`, a fields { } block in each)."""
    if server.driver == "mysql":
        host = f"""mysql 127.0.0.1 {{
  port = {server.port}
  user = {databases.DB_USER}
  password = {databases.DB_PASSWORD}
  dbname = {databases.DB_NAME}
}}
"""
    else:
        host = f"""pgsql 127.0.0.1 {{
  parameters {{
    port = {server.port}
    user = {databases.DB_USER}
    password = {databases.DB_PASSWORD}
    dbname = {databases.DB_NAME}
  }}
}}
"""
    user_query = v24(PFA_USER_QUERY[server.driver]).replace(" FROM mailbox",
                                                           filtered_columns(server.driver) + " FROM mailbox")
    return f"""sql_driver = {server.driver}
{host}passdb sql {{
  default_password_scheme = SHA512-CRYPT
  query = {v24(PFA_PASSWORD_QUERY).replace(" FROM", ", NULL AS nothing FROM", 1) if fields else v24(PFA_PASSWORD_QUERY)}
{PASSDB_FIELDS_24 if fields else ""}}}
userdb sql {{
  query = {user_query}
  iterate_query = {PFA_ITERATE_QUERY}
{USERDB_FIELDS_24 if fields else ""}}}
"""


# Columns whose values are 2.4 filters over the user name, expanded by
# Dovecot 2.4.1 and by posternd into the user query: USER on the master
# socket returns them, and the differential compares them. No substr():
# Dovecot 2.4.1 expands the whole user query for LIST's request too, whose
# user is empty (or "*"): substr(1, 3) of that fails, and truncate(3) of a
# shorter value makes 2.4.1's auth-worker panic (buffer_set_used_size), so
# LIST fails; truncate is used on a digest only.
def filtered_columns(driver):
    text = "CHAR(200)" if driver == "mysql" else "TEXT"
    return "".join(f", CAST('%{{user | {f}}}' AS {text}) AS {name}" for name, f in (
        ("f_md5", "md5"), ("f_sha1", "sha1"), ("f_sha256_8", "sha256 | truncate(8)"), ("f_sha384", "sha384"),
        ("f_sha512_b64", "sha512 | base64"), ("f_sha256_r3", "sha256(rounds=3)"),
        ("f_hexlify", "username | hexlify"), ("f_reverse", "username | reverse"),
        ("f_lfill", "domain | lfill(16)"), ("f_b64url", "md5 | base64(pad=0, url=1)"),
        ("f_regexp", "regexp('(.*)@(.*)', '\\\\2/\\\\1')"), ("f_index", "index('.', -1)"),
        ("f_if", "if('*', '*@example.com', 'local', 'remote')"), ("f_concat", "username | concat('+', 'x')")))


class SqlImportCase(ImportCase):
    ALICE = "alice@example.com"
    BOB = "bob@example.com"
    DRIVER = None

    def setUp(self):
        super().setUp()
        self.server = DATABASES.get(self.DRIVER)


@require_binaries
class SqlImport24Test(SqlImportCase):
    """The 2.4 import writes the SQL settings inline, mode 0600, no file."""
    DRIVER = "mysql"

    def test_inline_form(self):
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=sql_24(self.server))
        p = self.run_import(self.etc)
        self.assertNotIn("not carried over", p.stderr)
        self.assertNotIn(databases.DB_PASSWORD, p.stderr + p.stdout)
        conf = self.path("postern.conf")
        self.assertEqual(stat.S_IMODE(os.stat(conf).st_mode), 0o600)
        self.assertEqual(sorted(f for f in os.listdir(self.tmp) if f.endswith(".conf.ext")), [])
        with open(conf, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('driver = "sql"\nsql_driver = "mysql"\nmysql_host = ["127.0.0.1"]\n', text)
        self.assertIn(f'mysql_port = {self.server.port}\n', text)
        self.assertIn("iterate_query = ", text)
        check = run_cli(["config", "check", conf])
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertNotIn(databases.DB_PASSWORD, check.stdout + check.stderr)

    def test_bad_inline_keys(self):
        """Settings postern cannot carry are listed with file:line; a bad
        value is an error naming file:line; the password is never echoed."""
        dbs = sql_24(self.server).replace("  dbname =", "  ssl_mode = maybe\n  dbname =")
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=dbs)
        p = self.run_import(self.etc, expect_rc=1)
        self.assertIn("ssl_mode: not a mysql setting postern has", p.stderr)
        self.assertIn(f"{self.etc}/conf.d/auth-passwdfile.conf.ext:6: ", p.stderr)
        self.assertNotIn(databases.DB_PASSWORD, p.stderr + p.stdout)
        dbs = sql_24(self.server).replace(f"port = {self.server.port}", "connect_timeout = soon")
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=dbs)
        os.unlink(self.path("postern.conf"))
        p = self.run_import(self.etc, expect_rc=78)
        self.assertIn(f"{self.etc}/conf.d/auth-passwdfile.conf.ext:3: connect_timeout: \"soon\" is not a time",
                      p.stderr)
        self.assertNotIn(databases.DB_PASSWORD, p.stderr + p.stdout)
        self.assertFalse(os.path.exists(self.path("postern.conf")))
        # Without sql_driver nothing checks passwords: an error, no file.
        dbs = sql_24(self.server).replace("sql_driver = mysql\n", "")
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=dbs)
        p = self.run_import(self.etc, expect_rc=78)
        self.assertIn("an sql passdb/userdb without sql_driver", p.stderr)
        self.assertNotIn(databases.DB_PASSWORD, p.stderr + p.stdout)
        self.assertFalse(os.path.exists(self.path("postern.conf")))


# The differences the passwd-file differential has (how master logins, an
# empty password and names outside Dovecot's auth_username_chars are
# reported), for the same reasons (test_dovecot_import.py), with the users'
# PostfixAdmin names.
def known_sql(user_names):
    known = {}
    for name, (dovecot, postern) in KNOWN_DIFFERENCES_23.items():
        def sub(answer):
            if isinstance(answer, list) and answer and isinstance(answer[0], list):
                return [sub(a) for a in answer]
            return [f.replace("user=alice", "user=" + user_names[0]).replace("user=bob", "user=" + user_names[1])
                    if f in ("user=alice", "user=bob") else f for f in answer]
        known[name] = (sub(dovecot), sub(postern))
    return known


KNOWN_SQL_24 = known_sql(("alice@example.com", "bob@example.com"))
KNOWN_SQL_23 = dict(KNOWN_SQL_24)
# Dovecot 2.3.19's sql passdb puts an empty field (two tabs in a row) into
# every OK and PASS reply for a user it found; 2.4.1 does not, nor does
# postern. It carries nothing.
for name, postern in (("right", ["OK", "user=alice@example.com"]),
                      ("upper case under %Lu", ["OK", "original_user=ALICE@EXAMPLE.COM", "user=alice@example.com"]),
                      ("mixed case under %Lu", ["OK", "original_user=Bob@example.com", "user=bob@example.com"]),
                      ("PASS known", ["PASS", "user=bob@example.com"])):
    KNOWN_SQL_23[name] = (postern[:1] + [""] + postern[1:], postern)
for name in ("master by separator", "master by authzid"):
    dovecot, postern = KNOWN_SQL_23[name]
    KNOWN_SQL_23[name] = (dovecot[:1] + [""] + dovecot[1:], postern)
KNOWN_SQL_23["LOGIN right"] = ([["CONT", "VXNlcm5hbWU6"], ["CONT", "UGFzc3dvcmQ6"], ["OK", "", "user=alice@example.com"]],
                               [["CONT", "VXNlcm5hbWU6"], ["CONT", "UGFzc3dvcmQ6"], ["OK", "user=alice@example.com"]])
# A LIST without a user= mask: Dovecot 2.4.1 lists nobody (the mask is the
# userdb's username format expanded for an empty user; see
# test_dovecot_import.py); "LIST user=*" lists the same users from both.
KNOWN_SQL_24["LIST"] = ([['DONE', '']], [['alice@example.com'], ['bob@example.com'], ['DONE', '']])

MISSING_23 = dovecot_missing()
MISSING_24 = d24.root_missing()
if not MISSING_24:
    for pkg in ("dovecot-mysql", "dovecot-pgsql"):
        if not os.path.exists(os.path.join(d24.ROOT, "var/lib/dpkg/info", pkg + ".list")):
            MISSING_24 = (f"the Dovecot 2.4 root at {d24.ROOT} lacks {pkg}: bash tests/dovecot24_root.sh "
                          "builds it again with it")


class Differential:
    """Mixed into a SqlImportCase: the 2.3 and the 2.4 differential."""

    @unittest.skipIf(MISSING_23, MISSING_23 or "")
    def test_same_answers_as_dovecot_23(self):
        tree_23(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=sql_23(self.etc, self.server))
        dovecot, postern = self.differential(self.start_dovecot_23, 1, KNOWN_SQL_23, f"2.3 {self.DRIVER} import")
        self.assertEqual(dovecot["USER known"][0], "USER")
        self.assertIn("home=/var/vmail/example.com/alice/", dovecot["USER known"])

    @unittest.skipIf(MISSING_24, MISSING_24 or "")
    def test_same_answers_as_dovecot_24(self):
        inside = d24.inside
        etc_inside = self.path("etc-dovecot-in-root")
        tree_24(etc_inside, inside(self.run_dir), inside(self.users), inside(self.masters), inside(self.socket),
                dbs=sql_24(self.server))
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=sql_24(self.server))
        dovecot, postern = self.differential(lambda: self.start_dovecot_24(etc_inside), 4, KNOWN_SQL_24,
                                             f"2.4 {self.DRIVER} import")
        self.assertEqual(dovecot["right"][0], "OK")
        self.assertEqual(dovecot["USER known"][0], "USER")
        # The filtered columns came back from Dovecot (and equal from posternd).
        self.assertIn("f_md5=" + hashlib.md5(self.ALICE.encode()).hexdigest(), dovecot["USER known"])
        self.assertEqual(len([f for f in dovecot["USER known"] if f.startswith("f_")]), 14, dovecot["USER known"])
        for field in ("f_regexp=example.com/alice", "f_index=com", "f_if=local", "f_concat=alice+x"):
            self.assertIn(field, dovecot["USER known"])

    @unittest.skipIf(MISSING_24, MISSING_24 or "")
    def test_fields_same_answers_as_dovecot_24(self):
        """fields { } in both databases: the passdb's greeting reaches every
        OK for a found user (the master logins' targets too), the userdb's
        fields every USER; both servers' answers compared."""
        inside = d24.inside
        etc_inside = self.path("etc-dovecot-in-root")
        tree_24(etc_inside, inside(self.run_dir), inside(self.users), inside(self.masters), inside(self.socket),
                dbs=sql_24(self.server, fields=True))
        tree_24(self.etc, self.run_dir, self.users, self.masters, self.socket, dbs=sql_24(self.server, fields=True))
        def greeted(answer):
            user = next((f[5:] for f in answer[1:] if f.startswith("user=")), "")
            return answer[:1] + sorted(answer[1:] + [f"greeting=hi {user} as {user.upper()}", NULL_IS])
        known = {name: tuple(greeted(a) if a and a[0] == "OK" else a for a in answers)
                 for name, answers in KNOWN_SQL_24.items()}
        dovecot, postern = self.differential(lambda: self.start_dovecot_24(etc_inside), 4, known,
                                             f"2.4 {self.DRIVER} import with fields")
        with open(self.path("postern.conf"), encoding="utf-8") as f:
            self.assertIn('fields = { "greeting" = "hi %{passdb:user} as %{sql:user | upper}", '
                          '"null_is" = "[%{sql:nothing}][%{passdb:nothing}]" }', f.read())
        self.assertIn(GREETING, dovecot["right"])
        self.assertIn(NULL_IS, dovecot["right"])
        user = dovecot["USER known"]
        self.assertEqual(user[0], "USER")
        for field in ("home=/srv/mail/example.com/alice", "quota_rule=*:storage=2000M",
                      "mail_path=~/" + "alice"[::-1]):
            self.assertIn(field, user)


@require_binaries
class MysqlDifferentialTest(Differential, SqlImportCase):
    DRIVER = "mysql"
    tmp_parent = None if MISSING_24 else d24.tmp_parent()


@require_binaries
class PgsqlDifferentialTest(Differential, SqlImportCase):
    DRIVER = "pgsql"
    tmp_parent = None if MISSING_24 else d24.tmp_parent()


if __name__ == "__main__":
    unittest.main()
