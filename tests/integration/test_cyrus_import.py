# `postern config import --from-cyrus`: Cyrus SASL application configs
# (written from Cyrus SASL's documentation: pwcheck_method saslauthd and
# auxprop, auxprop_plugin sasldb and sql, mech_list) and saslauthd defaults
# files (-a pam, shadow, sasldb, rimap; -O; -m; -r) turned into postern.conf;
# what cannot be carried over is listed with FILE:LINE and the exit status
# says so; bad input gets a clear error and leaves no file behind.
#
# End to end: a Postfix smtpd with Cyrus SASL (smtpd_sasl_type = cyrus)
# checks users in a saslpasswd2-made sasldb2 and in a MariaDB table (the sql
# auxprop plugin); the same users then authenticate through posternd running
# the imported configuration, behind a Postfix smtpd with
# smtpd_sasl_type = dovecot, with the same answers.

import os
import re
import stat
import unittest

import databases
import harness
from harness import (ALICE_PASSWORD, SASLPASSWD2, WRONG_PASSWORD, DaemonTestCase, free_tcp_port,
                     register_secret, require_binaries, run_cli, saslpasswd2, write_file)
from postfix_support import PostfixTestCase, postfix_missing

CYRUS_SQL_PASSWORD = "Cyrus-clear-Pa55-8d2e"
HOSTILE_DB_PASSWORD = "db'pa\"ss#wo\\rd 7"
for _secret in (CYRUS_SQL_PASSWORD, HOSTILE_DB_PASSWORD):
    register_secret(_secret)
CYRUS_SQL_PLUGIN = any(os.path.exists(os.path.join(d, "libsql.so.2"))
                       for d in ("/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/aarch64-linux-gnu/sasl2",
                                 "/usr/lib/sasl2"))


def import_cyrus(*args):
    return run_cli(["config", "import", *args])


@require_binaries
class TranslationTest(DaemonTestCase):
    """Each pwcheck_method/plugin combination and saslauthd mechanism."""

    def conf(self, name, text):
        return write_file(self.path(name), text) or self.path(name)

    def run_import(self, cyrus_text, saslauthd_text=None, expect_rc=0):
        args = ["--from-cyrus", self.conf("smtpd.conf", cyrus_text), "-o", self.path("postern.conf"),
                "--socket", self.path("auth")]
        if saslauthd_text is not None:
            args += ["--saslauthd", self.conf("saslauthd", saslauthd_text)]
        p = import_cyrus(*args)
        self.assertEqual(p.returncode, expect_rc, p.stdout + p.stderr)
        with open(self.path("postern.conf"), encoding="utf-8") as f:
            return f.read(), p.stderr

    def check_valid(self):
        p = run_cli(["config", "check", self.path("postern.conf")])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def test_auxprop_sasldb(self):
        text, err = self.run_import("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                    "sasldb_path: /etc/postfix/sasldb2\nmech_list: PLAIN LOGIN CRAM-MD5 DIGEST-MD5\n")
        self.assertIn('driver = "sasldb"\npath = "/etc/postfix/sasldb2"', text)
        self.assertIn('mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"]', text)
        self.assertIn('username_format = "%u"', text)
        self.assertNotIn("not carried over", err)
        self.assertIn("passdb: sasldb", self.check_valid())

    def test_auxprop_sql_mysql_and_pgsql(self):
        for engine, driver in (("mysql", "mysql"), ("pgsql", "pgsql")):
            with self.subTest(engine=engine):
                text, err = self.run_import(
                    f"pwcheck_method: auxprop\nauxprop_plugin: sql\nsql_engine: {engine}\n"
                    "sql_hostnames: 127.0.0.1:3306, db2.example.com:3306\nsql_user: postfix\n"
                    f"sql_passwd: {HOSTILE_DB_PASSWORD}\nsql_database: postfix\n"
                    "sql_select: SELECT passwd FROM users WHERE userid = '%u' AND realm = '%r' AND p = '%p'\n"
                    "mech_list: plain login\n")
                sqlconf = self.path("dovecot-sql-cyrus.conf.ext")
                self.assertIn(f'args = "{sqlconf}"', text)
                with open(sqlconf, encoding="utf-8") as f:
                    sql = f.read()
                self.assertEqual(stat.S_IMODE(os.stat(sqlconf).st_mode), 0o640)
                self.assertIn(f"driver = {driver}", sql)
                self.assertIn("default_pass_scheme = PLAIN", sql)
                self.assertIn("password_query = SELECT passwd AS password FROM users WHERE userid = '%n' "
                              "AND realm = '%d' AND p = 'userPassword'", sql)
                self.assertRegex(sql, r"connect = \"host='127\.0\.0\.1' host='db2\.example\.com' port=3306 ")
                # The database password is in the file, and nowhere else.
                self.assertNotIn(HOSTILE_DB_PASSWORD, err)
                self.assertNotIn(HOSTILE_DB_PASSWORD, text)
                self.assertIn("cleartext", err)
                # The file postern reads back gives the password unchanged:
                # `config check` parses the connect string.
                self.check_valid()

    def test_saslauthd_mechanisms(self):
        cases = [
            ('MECHANISMS="pam"\nOPTIONS="-c -m /var/run/saslauthd"\n', 'driver = "pam"\nservice = "%s"', "%n"),
            ('MECHANISMS="shadow"\n', 'driver = "pam"', "%n"),
            ('MECHANISMS="sasldb"\nOPTIONS="-r"\n', 'driver = "sasldb"\npath = "/etc/sasldb2"', "%u"),
            ('MECHANISMS="rimap"\nMECH_OPTIONS="127.0.0.1"\n', 'driver = "imap"\nhost = "127.0.0.1"\ntls = "none"', "%n"),
            ('MECHANISMS="rimap"\nMECH_OPTIONS="imap.example.com/993"\n',
             'driver = "imap"\nhost = "imap.example.com"\nport = 993\ntls = "implicit"', "%n"),
            ('OPTIONS="-a rimap -O mail.example.com"\n',
             'driver = "imap"\nhost = "mail.example.com"\ntls = "starttls"', "%n"),
        ]
        for sd, expect, fmt in cases:
            with self.subTest(saslauthd=sd):
                text, err = self.run_import("pwcheck_method: saslauthd\nmech_list: PLAIN LOGIN\n", sd)
                self.assertIn(expect, text)
                self.assertIn(f'username_format = "{fmt}"', text)
        # -m: Cyrus clients keep their socket, now served by postern.
        text, _ = self.run_import("pwcheck_method: saslauthd\n", 'MECHANISMS="pam"\nOPTIONS="-m /run/sasl"\n')
        self.assertIn('path = "/run/sasl/mux"\nmode = "0666"\nrole = "saslauthd"', text)
        self.check_valid()

    def test_settings_not_carried_over_are_listed(self):
        text, err = self.run_import(
            "# Cyrus SASL\npwcheck_method: auxprop saslauthd\nauxprop_plugin: ldapdb sasldb\n"
            "mech_list: PLAIN GSSAPI NTLM CRAM-MD5\nldapdb_uri: ldap://localhost\n",
            'MECHANISMS="ldap"\n', expect_rc=1)
        self.assertIn("not carried over: " + self.path("smtpd.conf") + ':3: auxprop_plugin: "ldapdb" is not served',
                      err)
        self.assertIn(self.path("smtpd.conf") + ":4: mech_list: GSSAPI is not served", err)
        self.assertIn(self.path("smtpd.conf") + ":4: mech_list: NTLM is not served", err)
        self.assertIn(self.path("smtpd.conf") + ":5: ldapdb_uri: not carried over", err)
        self.assertIn(self.path("saslauthd") + ':1: MECHANISMS: saslauthd mechanism "ldap" is not served', err)
        self.assertIn('mechanisms = ["PLAIN", "CRAM-MD5"]', text)
        self.check_valid()

    def test_challenge_response_needs_stored_secrets(self):
        text, err = self.run_import("pwcheck_method: saslauthd\nmech_list: PLAIN CRAM-MD5\n",
                                    'MECHANISMS="pam"\n', expect_rc=1)
        self.assertIn("CRAM-MD5 needs stored secrets", err)
        self.assertIn('mechanisms = ["PLAIN"]', text)

    def test_bad_input(self):
        out = self.path("out.conf")
        # Unreadable, malformed, and nothing to carry over: 78, no output file.
        for args, why in (([self.path("missing.conf")], "cannot read"),
                          ([self.conf("bad.conf", "pwcheck_method auxprop\n")], ":1: expected \"option: value\""),
                          ([self.conf("none.conf", "pwcheck_method: kerberos_v4\n")], "no password store"),
                          ([self.conf("ok.conf", "pwcheck_method: saslauthd\n"), "--saslauthd",
                            self.conf("sd", 'MECHANISMS="pam\n')], ":1: MECHANISMS: unterminated quote")):
            with self.subTest(why=why):
                p = import_cyrus("--from-cyrus", *args, "-o", out)
                self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
                self.assertIn(why, p.stderr)
                self.assertFalse(os.path.exists(out))
        # An output directory that cannot be written: 73, nothing left behind.
        ro = self.path("ro")
        os.mkdir(ro, 0o555)
        if os.geteuid() != 0:
            p = import_cyrus("--from-cyrus", self.conf("s.conf", "pwcheck_method: auxprop\n"), "-o",
                             os.path.join(ro, "postern.conf"))
            self.assertEqual(p.returncode, 73, p.stdout + p.stderr)
        p = import_cyrus("--from-cyrus", self.conf("s.conf", "pwcheck_method: auxprop\n"), "-o",
                         os.path.join(self.path("no-such-dir"), "postern.conf"))
        self.assertEqual(p.returncode, 73, p.stdout + p.stderr)
        self.assertEqual(os.listdir(ro), [])
        # An sql store without a place for its settings file: a usage error.
        p = import_cyrus("--from-cyrus", self.conf("q.conf", "pwcheck_method: auxprop\nauxprop_plugin: sql\n"
                                                                "sql_select: SELECT password FROM t WHERE u='%u'\n"))
        self.assertEqual(p.returncode, 64, p.stdout + p.stderr)


def cyrus_missing():
    if postfix_missing():
        return postfix_missing()
    if not SASLPASSWD2:
        return "saslpasswd2 not installed (package sasl2-bin)"
    return None


@unittest.skipIf(cyrus_missing(), cyrus_missing() or "")
class CyrusToPosternTest(PostfixTestCase):
    """One Postfix: Cyrus smtpds (sasldb, sql) and, after the import, dovecot
    smtpds through posternd on the imported configurations."""
    tmp_prefix = "postern-it-cyrus-"

    @classmethod
    def prepare(cls):
        cls.db = None
        if CYRUS_SQL_PLUGIN and not databases.mariadb_missing():
            cls.db = databases.MariaDB()
            try:
                cls.db.start()
                cls.db.setup_postfixadmin()
                cls.db.sql("INSERT INTO domain (domain, description, active) VALUES ('example.com', 'c', '1');\n"
                           "INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, "
                           f"active) VALUES ('sqluser@example.com', '{CYRUS_SQL_PASSWORD}', '', 'x/', 0, "
                           "'sqluser', 'example.com', '1');\n", databases.DB_NAME)
            except Exception:
                cls.db.destroy()
                raise
            cls.addClassCleanup(cls.db.destroy)
        cls.sasldb = os.path.join(cls.tmp, "sasldb2")
        saslpasswd2(cls.sasldb, "alice", ALICE_PASSWORD, realm="example.com")
        os.chmod(cls.sasldb, 0o644)
        # Cyrus SASL application configs, as an administrator writes them.
        cls.cyrus_confs = {
            "sasldb": cls.pf.add_sasl_config("smtpd-sasldb",
                                             "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                             f"sasldb_path: {cls.sasldb}\nmech_list: PLAIN LOGIN CRAM-MD5\n")}
        if cls.db:
            cls.cyrus_confs["sql"] = cls.pf.add_sasl_config(
                "smtpd-sql",
                "pwcheck_method: auxprop\nauxprop_plugin: sql\nsql_engine: mysql\n"
                f"sql_hostnames: 127.0.0.1:{cls.db.port}\nsql_user: {databases.DB_USER}\n"
                f"sql_passwd: {databases.DB_PASSWORD}\nsql_database: {databases.DB_NAME}\n"
                "sql_select: SELECT password FROM mailbox WHERE username = '%u@%r' AND active = '1'\n"
                "mech_list: PLAIN LOGIN CRAM-MD5\n")
        cls.ports = {}
        for store in cls.cyrus_confs:
            cyrus, dovecot = free_tcp_port(), free_tcp_port()
            cls.ports[store] = (cyrus, dovecot)
            cls.pf.add_smtpd(cyrus, smtpd_sasl_type="cyrus", smtpd_sasl_path=f"smtpd-{store}")
            cls.pf.add_smtpd(dovecot, smtpd_sasl_type="dovecot", smtpd_sasl_path=f"private/auth-{store}")

    @classmethod
    def make_daemons(cls):
        # The imports, then one posternd per imported configuration.
        cls.store_daemons = {}
        for store, path in cls.cyrus_confs.items():
            out = os.path.join(cls.tmp, f"postern-{store}.conf")
            p = import_cyrus("--from-cyrus", path, "-o", out, "--socket",
                             os.path.join(cls.pf.private, f"auth-{store}"))
            if p.returncode != 0:
                raise AssertionError(f"import of {path} failed:\n{p.stdout}{p.stderr}")
            with open(out, encoding="utf-8") as f:
                conf = f.read()
            cls.store_daemons[store] = harness.Daemon(
                cls.tmp, '[log]\nlevel = "debug"\n' + conf.replace("[auth]\n", "[auth]\nfailure_delay = 0\n", 1),
                name=f"posternd-{store}")
        return list(cls.store_daemons.values())

    def reply_code(self, port, mech, user, password):
        """235, 535, ... from an AUTH on port, or the transcript if none."""
        out = self.auth(mech, user, password, port)
        m = re.search(r"(?m)^<[-~*]\*?\s+(235|535|454|501|504)[ -]", out)
        return m.group(1) if m else out

    def compare(self, store, cases):
        cyrus, dovecot = self.ports[store]
        for mech, user, password, expected in cases:
            with self.subTest(store=store, mech=mech, user=user, expected=expected):
                before = self.reply_code(cyrus, mech, user, password)
                after = self.reply_code(dovecot, mech, user, password)
                self.assertEqual(before, expected, f"Cyrus smtpd: {before}\n{self.pf.log()[-3000:]}")
                self.assertEqual(after, expected, f"posternd: {after}\n{self.store_daemons[store].stderr()[-3000:]}")

    def test_sasldb_same_answers(self):
        self.compare("sasldb", [
            ("PLAIN", "alice@example.com", ALICE_PASSWORD, "235"),
            ("LOGIN", "alice@example.com", ALICE_PASSWORD, "235"),
            ("CRAM-MD5", "alice@example.com", ALICE_PASSWORD, "235"),
            ("PLAIN", "alice@example.com", WRONG_PASSWORD, "535"),
            ("PLAIN", "nobody@example.com", ALICE_PASSWORD, "535"),
        ])

    def test_sql_same_answers(self):
        if "sql" not in self.ports:
            self.skipTest("needs MariaDB and Cyrus SASL's sql plugin (mariadb-server, libsasl2-modules-sql)")
        self.compare("sql", [
            ("PLAIN", "sqluser@example.com", CYRUS_SQL_PASSWORD, "235"),
            ("LOGIN", "sqluser@example.com", CYRUS_SQL_PASSWORD, "235"),
            ("CRAM-MD5", "sqluser@example.com", CYRUS_SQL_PASSWORD, "235"),
            ("PLAIN", "sqluser@example.com", WRONG_PASSWORD, "535"),
            ("PLAIN", "nobody@example.com", CYRUS_SQL_PASSWORD, "535"),
        ])


if __name__ == "__main__":
    unittest.main()
