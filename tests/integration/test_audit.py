# `postern user audit`: exact counts per scheme, cost, weak, cleartext, no
# password, unknown scheme and shared hashes for a passwd-file, a sasldb2
# file made by the real saslpasswd2, and PostfixAdmin tables on MariaDB and
# PostgreSQL (servers started once for this module, databases.py); the
# rehash log with --since; the bar chart on a terminal only; the error exits.
# No stored value or password of the fixtures may appear in any output.

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
import unittest

import databases
import harness
from databases import PFA_ITERATE_QUERY, mailbox_insert, sql_file
from harness import (EX_CONFIG, POSTERN, SASLPASSWD2, DaemonTestCase, passwd_line,
                     register_secret, require_binaries, run_cli, saslpasswd2, toml_str, write_file)

EX_TEMP = 2
EX_USAGE = 64

register_secret(databases.DB_PASSWORD)


def password_of(user):
    """A distinctive password per fixture user (registered as a secret)."""
    pw = f"Audit-{user}-Pa55-9c1e"
    register_secret(pw)
    return pw


def make_hash(scheme, password, rounds=None):
    """{SCHEME}data made by the real `postern pw` (registered as a secret)."""
    args = ["pw", "-s", scheme] + (["-r", str(rounds)] if rounds else [])
    p = run_cli(args, stdin_text=password + "\n")
    if p.returncode != 0 or not p.stdout.startswith("{"):
        raise AssertionError(f"postern pw -s {scheme} failed: {p.stderr}")
    stored = p.stdout.strip()
    register_secret(stored)
    register_secret(data_of(stored))
    return stored


def data_of(stored):
    """The stored value without its {SCHEME} prefix."""
    return stored.split("}", 1)[1] if stored.startswith("{") else stored


class Fixture:
    """Users and stored values; every value and password is kept to check
    that none shows up in an output."""

    def __init__(self):
        self.users = []       # (user, stored value)
        self.secrets = set()  # stored values, their data parts, passwords

    def add(self, user, stored, password=None):
        self.users.append((user, stored))
        if stored and not stored.startswith("{NOSUCH}"):
            self.secrets.update({stored, data_of(stored)})
        if password:
            self.secrets.add(password)
        return stored

    def hashed(self, user, scheme, rounds=None, prefix=None):
        pw = password_of(user)
        stored = make_hash(scheme, pw, rounds)
        if prefix is not None:  # the same data under another prefix, or bare ("")
            stored = prefix + data_of(stored)
        return self.add(user, stored, pw)


def passwd_file_fixture():
    """The known mix of the spec; expected counts in PASSWD_FILE_EXPECTED."""
    f = Fixture()
    pw = password_of("plain")
    f.add("plain@example.com", "{PLAIN}" + pw, pw)
    f.hashed("sha-default@example.com", "SHA512-CRYPT")
    f.hashed("sha-20000-a@example.com", "SHA512-CRYPT", rounds=20000)
    f.hashed("sha-20000-b@example.com", "SHA512-CRYPT", rounds=20000)
    copied = f.hashed("copied-1@example.com", "SHA512-CRYPT")
    f.add("copied-2@example.com", copied)                 # the same salt and hash
    f.hashed("blf@example.com", "BLF-CRYPT", rounds=10)
    f.hashed("argon@example.com", "ARGON2ID")
    f.hashed("md5crypt@example.com", "MD5-CRYPT")
    f.hashed("bare-md5@example.com", "MD5-CRYPT", prefix="")  # bare $1$: MD5-CRYPT in a passwd-file
    f.hashed("des@example.com", "DES-CRYPT", prefix="{CRYPT}")
    twin = f.hashed("md5-twin-1@example.com", "PLAIN-MD5")
    f.add("md5-twin-2@example.com", twin)                 # unsalted: the same password
    f.hashed("ssha@example.com", "SSHA")
    f.add("nopass@example.com", "")
    f.add("unknown@example.com", "{NOSUCH}not-a-scheme")
    return f


def scheme(users, weak=0, cleartext=0, malformed=0, costs=None):
    return {"users": users, "weak": weak, "cleartext": cleartext, "malformed": malformed,
            "costs": costs or {}}


PASSWD_FILE_EXPECTED = {
    "users": 16, "no_password": 1, "unknown_scheme": 1, "malformed": 0, "weak": 5, "cleartext": 1,
    "duplicates": {"groups": 2, "users": 4, "unsalted_groups": 1, "unsalted_schemes": ["PLAIN-MD5"]},
    "schemes": {
        "ARGON2ID": scheme(1, costs={"m=65536,t=3,p=1": 1}),
        "BLF-CRYPT": scheme(1, costs={"cost=10": 1}),
        "CRYPT": scheme(1, weak=1, costs={"DES-CRYPT": 1}),
        "MD5-CRYPT": scheme(2, weak=2),
        "PLAIN": scheme(1, cleartext=1),
        "PLAIN-MD5": scheme(2, weak=2),
        "SHA512-CRYPT": scheme(5, costs={"rounds=5000": 3, "rounds=20000": 2}),
        "SSHA": scheme(1),
    },
}


def counts_only(passdb):
    """The counting keys of one passdb's JSON (without passdb/driver/store)."""
    return {k: v for k, v in passdb.items() if k not in ("passdb", "driver", "store")}


class AuditCase(DaemonTestCase):

    def audit(self, *args):
        return run_cli(["user", "audit", *args])

    def assert_no_secrets(self, fixture, *procs):
        for p in procs:
            for text in (p.stdout, p.stderr):
                for secret in fixture.secrets:
                    self.assertNotIn(secret, text)

    def audit_json(self, *args):
        p = self.audit(*args, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return p, json.loads(p.stdout)


@require_binaries
class PasswdFileAuditTest(AuditCase):

    def setUp(self):
        super().setUp()
        self.fixture = passwd_file_fixture()
        self.users = self.path("users")
        write_file(self.users, "# audit fixture\n" + "".join(
            passwd_line(u, s) for u, s in self.fixture.users))
        self.conf = self.path("postern.conf")

    def config(self, rehash_log=None, default_scheme=None, sasldb=None):
        lines = ["[auth]"]
        if rehash_log:
            lines.append(f"rehash_log = {toml_str(rehash_log)}")
        lines += ["", "[[listener]]", 'type = "unix"', f"path = {toml_str(self.path('auth'))}", "",
                  "[[passdb]]", 'driver = "pam"', "",
                  "[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(self.users)}"]
        if default_scheme:
            lines.append(f"default_scheme = {toml_str(default_scheme)}")
        if sasldb:
            lines += ["", "[[passdb]]", 'driver = "sasldb"', f"path = {toml_str(sasldb)}",
                      'default_realm = "example.com"']
        write_file(self.conf, "\n".join(lines) + "\n")
        return self.conf

    def test_json_counts(self):
        p, out = self.audit_json("-f", self.users)
        self.assertEqual(len(out["passdbs"]), 1)
        db = out["passdbs"][0]
        self.assertEqual((db["passdb"], db["driver"], db["store"]),
                         (0, "passwd-file", "passwd-file " + self.users))
        self.assertEqual(counts_only(db), PASSWD_FILE_EXPECTED)
        self.assertNotIn("rehash", out)  # -f alone reads no configuration
        self.assert_no_secrets(self.fixture, p)

    def test_text_table(self):
        p = self.audit("-f", self.users)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "passwd-file " + self.users)
        self.assertEqual(lines[1].split(), ["SCHEME", "USERS", "COST", "NOTE"])
        rows = [line.split(None, 2) for line in lines[2:lines.index("")]]
        self.assertEqual(rows, [
            ["ARGON2ID", "1", "m=65536,t=3,p=1"],
            ["BLF-CRYPT", "1", "cost=10"],
            ["CRYPT", "1", "DES-CRYPT        weak"],
            ["MD5-CRYPT", "2", "weak"],
            ["PLAIN", "1", "cleartext"],
            ["PLAIN-MD5", "2", "weak"],
            ["SHA512-CRYPT", "3", "rounds=5000"],
            ["SHA512-CRYPT", "2", "rounds=20000"],
            ["SSHA", "1"],
            ["(no", "password)", "1"],
            ["(unknown", "scheme)", "1"],
        ])
        # Columns line up: every count ends where the USERS heading does.
        ends = {re.match(r"^  (.+?) +(\d+|USERS)(?:  |$)", line).end(2) for line in lines[1:len(rows) + 2]}
        self.assertEqual(len(ends), 1, p.stdout)
        for expected in ("  users: 16", "  no password: 1", "  unknown scheme: 1", "  malformed: 0",
                         "  weak: 5 (Dovecot 2.4 refuses these schemes unless auth_allow_weak_schemes is set)",
                         "  cleartext: 1 (stored in clear, not hashed)",
                         "  duplicated hashes: 2 groups, 4 users with a stored value another user has too",
                         "    1 group in PLAIN-MD5, which is unsalted: equal hashes there mean equal passwords",
                         "    1 group with the same salt and hash: one hash copied to several users"):
            self.assertIn(expected, lines)
        self.assertNotIn("#", p.stdout)  # no bar chart into a pipe
        self.assert_no_secrets(self.fixture, p)

    def test_bar_chart_on_a_terminal(self):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        proc = subprocess.Popen([POSTERN, "user", "audit", "-f", self.users], stdout=slave,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: _read(master), b"")))
        reader.start()
        self.assertEqual(proc.wait(timeout=60), 0)
        reader.join(timeout=10)
        os.close(master)
        proc.stderr.close()
        text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
        harness.save_log("cli.log", text)
        bars = {line.split()[0]: line.split()[-1] for line in text.splitlines() if line.endswith("#")}
        self.assertEqual(set(bars), {"ARGON2ID", "BLF-CRYPT", "CRYPT", "MD5-CRYPT", "PLAIN", "PLAIN-MD5",
                                     "SHA512-CRYPT", "SSHA", "(no", "(unknown"})
        self.assertTrue(all(len(line) <= 100 for line in text.splitlines()), text)
        # Scaled to the largest (SHA512-CRYPT, 5 users).
        longest = len(bars["SHA512-CRYPT"])
        self.assertGreater(longest, 40)
        self.assertEqual(len(bars["MD5-CRYPT"]), round(longest * 2 / 5))
        for secret in self.fixture.secrets:
            self.assertNotIn(secret, text)

    def test_configured_passdbs_and_default_scheme(self):
        # Bare $6$ under default_scheme = SHA512-CRYPT, as the daemon reads it.
        bare = self.fixture.hashed("bare-sha@example.com", "SHA512-CRYPT", prefix="")
        with open(self.users, "a", encoding="utf-8") as f:
            f.write(passwd_line("bare-sha@example.com", bare))
        p, out = self.audit_json("-f", self.users)
        self.assertEqual(out["passdbs"][0]["schemes"]["CRYPT"]["costs"],
                         {"DES-CRYPT": 1, "SHA512-CRYPT rounds=5000": 1})
        # The configured passdb (the pam one before it is skipped) with its default scheme.
        p2, out = self.audit_json("-c", self.config(default_scheme="SHA512-CRYPT"))
        self.assertEqual(len(out["passdbs"]), 1)
        db = out["passdbs"][0]
        self.assertEqual((db["passdb"], db["driver"]), (2, "passwd-file"))
        self.assertEqual(db["schemes"]["CRYPT"]["costs"], {"DES-CRYPT": 1})
        self.assertEqual(db["schemes"]["SHA512-CRYPT"]["costs"], {"rounds=5000": 4, "rounds=20000": 2})
        self.assertEqual(db["users"], 17)
        p3 = self.audit("-c", self.conf, "--passdb", "2")
        self.assertEqual(p3.returncode, 0, p3.stderr)
        self.assertTrue(p3.stdout.startswith(f"passdb 2: passwd-file {self.users}\n"), p3.stdout)
        self.assert_no_secrets(self.fixture, p, p2, p3)

    def test_rehash_log_since(self):
        log = self.path("rehash.log")
        day = int(time.mktime(time.strptime("2025-03-01", "%Y-%m-%d")))  # local midnight
        write_file(log, "".join([
            f"{day - 86400}\told@example.com\tMD5-CRYPT\tSHA512-CRYPT\n",   # before --since
            f"{day - 1}\told@example.com\tPLAIN-MD5\tSHA512-CRYPT\n",       # one second before
            f"{day}\tmd5crypt@example.com\tMD5-CRYPT\tSHA512-CRYPT\n",     # at the moment: counted
            f"{day + 60}\tbare-md5@example.com\tMD5-CRYPT\tSHA512-CRYPT\n",
            f"{day + 120}\tmd5crypt@example.com\tMD5-CRYPT\tSHA512-CRYPT\n",  # same user again
            f"{day + 180}\tdes@example.com\tCRYPT\tARGON2ID\n",
            "not a rehash line\n",
            f"{day + 240}\tx@example.com\tMD5-CRYPT\n",                     # a field short
            f"12ab\tx@example.com\tMD5-CRYPT\tSHA512-CRYPT\n",              # not a time
        ]))
        conf = self.config(rehash_log=log)
        for since in ("2025-03-01", str(day)):
            p, out = self.audit_json("-c", conf, "--since", since)
            self.assertEqual(out["rehash"], {
                "log": log, "present": True, "since": day, "upgrades": 4, "users": 3,
                "malformed_lines": 3,
                "pairs": [{"old": "CRYPT", "new": "ARGON2ID", "upgrades": 1, "users": 1},
                          {"old": "MD5-CRYPT", "new": "SHA512-CRYPT", "upgrades": 3, "users": 2}]})
        p, out = self.audit_json("-c", conf)
        self.assertEqual((out["rehash"]["since"], out["rehash"]["upgrades"], out["rehash"]["users"]), (0, 6, 4))
        self.assertEqual(len(out["rehash"]["pairs"]), 3)
        p = self.audit("-c", conf, "--since", "2025-03-01")
        self.assertEqual(p.returncode, 0, p.stderr)
        tail = p.stdout.split("\n\n")[-1].splitlines()
        self.assertTrue(tail[0].startswith(f"rehash log {log}, since 2025-03-01 00:00:00 ({day})"), tail)
        self.assertEqual([line.split() for line in tail[1:]], [
            ["OLD", "NEW", "UPGRADES", "USERS"],
            ["CRYPT", "ARGON2ID", "1", "1"],
            ["MD5-CRYPT", "SHA512-CRYPT", "3", "2"],
            ["upgrades:", "4,", "users:", "3,", "malformed", "lines", "skipped:", "3"]])
        self.assert_no_secrets(self.fixture, p)

    def test_no_rehash_log(self):
        missing = self.path("no-such-rehash.log")
        p = self.audit("-c", self.config(rehash_log=missing))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], f"no rehash log ({missing} does not exist)")
        p, out = self.audit_json("-c", self.conf)
        self.assertEqual(out["rehash"], {"log": missing, "present": False, "since": 0, "upgrades": 0,
                                         "users": 0, "malformed_lines": 0, "pairs": []})
        p = self.audit("-c", self.config())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "no rehash log (rehash_log is not set in [auth])")
        p, out = self.audit_json("-c", self.conf, "--since", "2025-01-01")
        self.assertEqual((out["rehash"]["log"], out["rehash"]["present"]), ("", False))

    def test_errors(self):
        # Missing passwd-file: the store is unavailable (2), with the reason.
        p = self.audit("-f", self.path("nosuch"))
        self.assertEqual(p.returncode, EX_TEMP, p.stdout + p.stderr)
        self.assertIn(f"postern: passwd-file {self.path('nosuch')}: ", p.stderr)
        self.assertIn("No such file or directory", p.stderr)
        p = self.audit("-f", self.path("nosuch"), "--json")
        self.assertEqual(p.returncode, EX_TEMP)
        self.assertIn("No such file or directory", json.loads(p.stdout)["passdbs"][0]["error"])
        # Broken configuration: file, line and key; 78.
        write_file(self.conf, "[auth]\nrehash_log = 12\n")
        p = self.audit("-c", self.conf)
        self.assertEqual(p.returncode, EX_CONFIG, p.stdout + p.stderr)
        self.assertRegex(p.stderr, rf"^postern: {self.conf}:2: .*rehash_log")
        write_file(self.conf, "[auth\n")
        p = self.audit("-c", self.conf)
        self.assertEqual(p.returncode, EX_CONFIG, p.stdout + p.stderr)
        self.assertIn(self.conf + ":1", p.stderr)
        p = self.audit("-c", self.path("nosuch.conf"))
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn("cannot open", p.stderr)
        # A passdb that has no store, asked for by number; a number too large.
        self.config()
        p = self.audit("-c", self.conf, "--passdb", "1")
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn('driver "pam" has no store postern user can read', p.stderr)
        p = self.audit("-c", self.conf, "--passdb", "3")
        self.assertEqual(p.returncode, EX_USAGE)
        self.assertIn("has 2 [[passdb]] sections, not 3", p.stderr)
        # Only passdbs without a store.
        write_file(self.conf, "[[listener]]\ntype = \"unix\"\npath = \"/tmp/x\"\n\n"
                              "[[passdb]]\ndriver = \"pam\"\n")
        p = self.audit("-c", self.conf)
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn("no [[passdb]] that postern user can read", p.stderr)
        # --since that is no date; CLI usage errors.
        for bad in ("2025-02-30", "yesterday", "2025-1-1", "-5"):
            p = self.audit("-f", self.users, "--since", bad)
            self.assertEqual(p.returncode, EX_USAGE, bad)
        self.assertEqual(self.audit("-f", self.users, "--passdb", "0").returncode, EX_USAGE)
        self.assertEqual(self.audit("-f", self.users, "--nosuch").returncode, EX_USAGE)

    def test_unreadable_store_among_others(self):
        # The other passdbs are still reported; the exit says one failed.
        p = run_cli(["user", "audit", "-c", self.config(sasldb=self.path("no-sasldb2")), "--json"])
        self.assertEqual(p.returncode, EX_TEMP, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual([d["passdb"] for d in out["passdbs"]], [2, 3])
        self.assertEqual(counts_only(out["passdbs"][0]), PASSWD_FILE_EXPECTED)
        self.assertIn("error", out["passdbs"][1])
        self.assertIn("no-sasldb2", p.stderr)


def _read(fd):
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other side is closed
        return b""


@require_binaries
@unittest.skipUnless(SASLPASSWD2, "saslpasswd2 not installed (package sasl2-bin)")
class SasldbAuditTest(AuditCase):

    def test_cleartext_store(self):
        db = self.path("sasldb2")
        f = Fixture()
        shared = password_of("shared")
        for user, realm, pw in (("alice", "example.com", password_of("alice")),
                                ("bob", "example.com", shared),
                                ("carol", "other.org", shared)):
            saslpasswd2(db, user, pw, realm=realm)
            f.secrets.add(pw)
        conf = self.path("postern.conf")
        write_file(conf, "\n".join([
            "[[listener]]", 'type = "unix"', f"path = {toml_str(self.path('auth'))}", "",
            "[[passdb]]", 'driver = "sasldb"', f"path = {toml_str(db)}", 'default_realm = "example.com"', ""]))
        p, out = self.audit_json("-c", conf)
        db_out = out["passdbs"][0]
        self.assertEqual((db_out["passdb"], db_out["driver"], db_out["store"]), (1, "sasldb", "sasldb " + db))
        self.assertEqual(counts_only(db_out), {
            "users": 3, "no_password": 0, "unknown_scheme": 0, "malformed": 0, "weak": 0, "cleartext": 3,
            "duplicates": {"groups": 1, "users": 2, "unsalted_groups": 1, "unsalted_schemes": ["PLAIN"]},
            "schemes": {"PLAIN": scheme(3, cleartext=3)}})
        t = self.audit("-c", conf)
        self.assertEqual(t.returncode, 0, t.stderr)
        lines = t.stdout.splitlines()
        self.assertEqual(lines[2].split(), ["PLAIN", "3", "cleartext"])
        self.assertIn("  cleartext: 3 (stored in clear, not hashed)", lines)
        self.assertIn("  weak: 0", lines)
        self.assertIn("    1 group in PLAIN, which is unsalted: equal hashes there mean equal passwords", lines)
        self.assert_no_secrets(f, p, t)


# ---- PostfixAdmin on MariaDB and PostgreSQL ----



def sql_fixture():
    """The mix loaded into both databases (default_pass_scheme = SHA512-CRYPT)."""
    f = Fixture()
    pw = password_of("sql-plain")
    f.add("plain@example.com", "{PLAIN}" + pw, pw)
    bare = f.hashed("bare-sha@example.com", "SHA512-CRYPT", prefix="")      # as PostfixAdmin writes
    f.hashed("sha-20000@example.com", "SHA512-CRYPT", rounds=20000, prefix="")
    f.add("prefixed-copy@example.com", "{SHA512-CRYPT}" + bare)             # same salt and hash
    f.hashed("blf@example.com", "BLF-CRYPT", rounds=10)
    f.hashed("argon@example.com", "ARGON2ID")
    f.hashed("md5crypt@example.com", "MD5-CRYPT")
    f.hashed("plainmd5@example.com", "PLAIN-MD5")
    f.add("nopass@example.com", "")
    f.add("unknown@example.com", "{NOSUCH}not-a-scheme")
    return f


SQL_FIXTURE = None
SQL_INACTIVE = ("inactive@example.com", "{PLAIN}Audit-inactive-Pa55-9c1e")
register_secret(SQL_INACTIVE[1])
SQL_EXPECTED = {
    "users": 10, "no_password": 1, "unknown_scheme": 1, "malformed": 0, "weak": 2, "cleartext": 1,
    "duplicates": {"groups": 1, "users": 2, "unsalted_groups": 0, "unsalted_schemes": []},
    "schemes": {
        "ARGON2ID": scheme(1, costs={"m=65536,t=3,p=1": 1}),
        "BLF-CRYPT": scheme(1, costs={"cost=10": 1}),
        "MD5-CRYPT": scheme(1, weak=1),
        "PLAIN": scheme(1, cleartext=1),
        "PLAIN-MD5": scheme(1, weak=1),
        "SHA512-CRYPT": scheme(3, costs={"rounds=5000": 2, "rounds=20000": 1}),
    },
}


def _load(s):
    sql = "INSERT INTO domain (domain, description, active) VALUES ('example.com', 'audit', '1');\n"
    for user, stored in SQL_FIXTURE.users:
        sql += mailbox_insert(s, user, stored)
    sql += mailbox_insert(s, *SQL_INACTIVE, active="0")  # not in iterate_query: not audited
    s.sql(sql, databases.DB_NAME)


DATABASES = databases.ServerSet(_load)


def setUpModule():
    global SQL_FIXTURE
    if harness.binaries_missing():
        return
    SQL_FIXTURE = sql_fixture()
    DATABASES.start()


def tearDownModule():
    DATABASES.destroy()


class SqlAudit:
    driver = None

    @classmethod
    def setUpClass(cls):
        cls.server = DATABASES.get(cls.driver)

    def test_postfixadmin_counts(self):
        path = sql_file(self.path("sql.conf.ext"), self.server, iterate_query=PFA_ITERATE_QUERY,
                        scheme="SHA512-CRYPT")
        conf = self.path("postern.conf")
        write_file(conf, "\n".join([
            "[[listener]]", 'type = "unix"', f"path = {toml_str(self.path('auth'))}", "",
            "[[passdb]]", 'driver = "sql"', f"args = {toml_str(path)}", ""]))
        p, out = self.audit_json("-c", conf)
        db = out["passdbs"][0]
        self.assertEqual((db["passdb"], db["driver"]), (1, "sql"))
        self.assertEqual(counts_only(db), SQL_EXPECTED)
        t = self.audit("-c", conf)
        self.assertEqual(t.returncode, 0, t.stderr)
        lines = t.stdout.splitlines()
        self.assertIn("  users: 10", lines)
        self.assertIn("  weak: 2 (Dovecot 2.4 refuses these schemes unless auth_allow_weak_schemes is set)", lines)
        self.assertIn("    1 group with the same salt and hash: one hash copied to several users", lines)
        fixture = SQL_FIXTURE
        fixture.secrets.add(SQL_INACTIVE[1])
        self.assert_no_secrets(fixture, p, t)
        self.assertNotIn(databases.DB_PASSWORD, t.stdout + t.stderr + p.stdout + p.stderr)

    def test_database_down(self):
        # A wrong port: the store is unavailable (2), said in one line.
        path = sql_file(self.path("down.conf.ext"), self.server, scheme="SHA512-CRYPT",
                        connect=self.server.connect_string().replace(
                            f"port={self.server.port}", f"port={harness.free_tcp_port()}"))
        conf = self.path("down.conf")
        write_file(conf, "\n".join([
            "[[listener]]", 'type = "unix"', f"path = {toml_str(self.path('auth'))}", "",
            "[[passdb]]", 'driver = "sql"', f"args = {toml_str(path)}", ""]))
        p = self.audit("-c", conf)
        self.assertEqual(p.returncode, EX_TEMP, p.stdout + p.stderr)
        self.assertIn("postern: sql ", p.stderr)
        self.assertNotIn(databases.DB_PASSWORD, p.stdout + p.stderr)


@require_binaries
class MysqlAuditTest(SqlAudit, AuditCase):
    driver = "mysql"


@require_binaries
class PgsqlAuditTest(SqlAudit, AuditCase):
    driver = "pgsql"
