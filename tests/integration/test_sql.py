# The sql passdb/userdb against real MariaDB and PostgreSQL servers holding
# PostfixAdmin's schema: PostfixAdmin's recommended queries, hostile user
# names, broken rows and queries, a wrong connect string, a query slower than
# the timeout, the database stopped under load, the PostfixAdmin user store,
# and Postfix + swaks authenticating through posternd against both.
# Each server starts once for the module (databases.py).

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

import databases
import harness
from databases import PFA_PASSWORD_QUERY, mailbox_insert, sql_file
from harness import (ALICE_PASSWORD, BUILD_DIR, EX_CONFIG, MASTER_PASSWORD, SECRETS, WRONG_PASSWORD,
                     AuthClient, DaemonTestCase, b64, bob_hash, bob_password, passwd_line,
                     plain_payload, require_binaries, scram_login, toml_str, write_file)
from postfix_support import PostfixTestCase

CAROL_PASSWORD = "Carol-Pa55w0rd-sql-5b1d"
HOSTILE_PASSWORD = "Hostile-Pa55-sql-77ae"
STORE_PASSWORD = "Store-Added-Pa55-c3d9"
LIMITED_PASSWORD = "Limited-Db-Pa55-0f6b"   # a database user allowed 2 connections
SECRETS.extend([databases.DB_PASSWORD, CAROL_PASSWORD, HOSTILE_PASSWORD, STORE_PASSWORD,
                LIMITED_PASSWORD])

STORE_DRIVER = os.path.join(BUILD_DIR, "tests", "backends", "store_driver")

# Users whose rows are in both databases: name -> (stored password, password to type).
# Real names with SQL metacharacters must work like any other.
HOSTILE_REAL = ["o'brien@example.com", "back\\slash@example.com", "pct%u%%@example.com",
                "j\u00f6rg@example.com"]

DATABASES = databases.ServerSet(lambda s: load_test_data(s))
SERVERS = DATABASES.servers


def load_test_data(server):
    sql = ("INSERT INTO domain (domain, description, active) VALUES "
           "('example.com', 'test', '1'), ('off.example', 'inactive domain', '0');\n")
    sql += mailbox_insert(server, "alice@example.com", "{PLAIN}" + ALICE_PASSWORD)
    sql += mailbox_insert(server, "bob@example.com", bob_hash())  # bare $6$, like php_crypt
    sql += mailbox_insert(server, "carol@off.example", "{PLAIN}" + CAROL_PASSWORD)
    sql += mailbox_insert(server, "dave@example.com", "{PLAIN}" + CAROL_PASSWORD, active="0")
    sql += mailbox_insert(server, "weird@example.com", "{NOSUCH}abcdef")
    for name in HOSTILE_REAL:
        sql += mailbox_insert(server, name, "{PLAIN}" + HOSTILE_PASSWORD)
    # One user only in each database, for the chained Postfix test.
    sql += mailbox_insert(server, f"only-{server.driver}@example.com", "{PLAIN}" + ALICE_PASSWORD)
    server.sql(sql, databases.DB_NAME)
    if server.driver == "mysql":
        server.sql(f"CREATE USER 'limited'@'127.0.0.1' IDENTIFIED BY '{LIMITED_PASSWORD}' "
                   "WITH MAX_USER_CONNECTIONS 2;\n"
                   f"GRANT SELECT ON {databases.DB_NAME}.* TO 'limited'@'127.0.0.1';\n")
    else:
        server.sql(f"CREATE ROLE limited LOGIN PASSWORD '{LIMITED_PASSWORD}' CONNECTION LIMIT 2;\n")
        server.sql("GRANT SELECT ON mailbox, domain TO limited;\n", databases.DB_NAME)


def setUpModule():
    if not harness.binaries_missing():
        DATABASES.start()


def tearDownModule():
    DATABASES.destroy()


def daemon_config(sock, master, sql_paths, pool_size=None, query_timeout=None, extra_auth="", extra=""):
    lines = ["[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0",
             'username_format = "%u"', extra_auth, "",
             "[[listener]]", 'type = "unix"', f"path = {toml_str(sock)}", 'mode = "0666"',
             'role = "client"', ""]
    if master:
        lines += ["[[listener]]", 'type = "unix"', f"path = {toml_str(master)}", 'mode = "0666"',
                  'role = "master"', ""]
    for p in sql_paths:
        lines += ["[[passdb]]", 'driver = "sql"', f"args = {toml_str(p)}"]
        if pool_size:
            lines.append(f"pool_size = {pool_size}")
        if query_timeout:
            lines.append(f"query_timeout = {toml_str(query_timeout)}")
        lines.append("")
    for p in sql_paths:
        lines += ["[[userdb]]", 'driver = "sql"', f"args = {toml_str(p)}", ""]
    return "\n".join(lines) + extra


def master_passdb(path):
    """A master passdb (admin / MASTER_PASSWORD) and the "target*master" separator."""
    write_file(path, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD))
    return ('master_user_separator = "*"',
            f'\n[[master_passdb]]\ndriver = "passwd-file"\npath = {toml_str(path)}\n')


def master_request(path, *lines, timeout=10):
    """Sends auth-master lines; returns the reply lines after the handshake."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(("VERSION\t1\t0\n" + "".join(line + "\n" for line in lines)).encode())
        buf = b""
        want = len(lines)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [l for l in buf.decode("utf-8", "replace").split("\n")[:-1]
                   if not l.startswith(("VERSION", "SPID"))]
            if len(got) >= want:
                return got
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return [l for l in buf.decode("utf-8", "replace").split("\n") if l and
                not l.startswith(("VERSION", "SPID"))]


# Rehash on login writes through this: the new hash, compared with the one
# the login verified, so a password changed meanwhile is never overwritten.
REHASH_UPDATE = ("UPDATE mailbox SET password = '%{password}' "
                 "WHERE username = '%u' AND password = '%{old_password}'")
REHASH_PASSWORD = "Rehash-sql-Pa55-e41b"
SECRETS.append(REHASH_PASSWORD)


def md5_crypt(password):
    p = subprocess.run(["openssl", "passwd", "-1", password], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    harness.register_secret(p.stdout.strip())
    return p.stdout.strip()


def add_mailboxes(server, rows):
    """Inserts (user, stored) rows; returns a function that removes them."""
    server.sql("".join(mailbox_insert(server, user, stored) for user, stored in rows), databases.DB_NAME)
    names = ", ".join(server.quote(user) for user, _ in rows)
    return lambda: server.sql(f"DELETE FROM mailbox WHERE username IN ({names});\n", databases.DB_NAME)


def stored_password(server, user):
    return server.sql(f"SELECT password FROM mailbox WHERE username = {server.quote(user)};\n",
                      databases.DB_NAME).strip()


def wait_until(predicate, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def is_temp_fail(fields):
    return fields[0] == "FAIL" and "code=temp_fail" in fields[2:]


class SqlCase(DaemonTestCase):
    driver = None

    @classmethod
    def setUpClass(cls):
        cls.server = DATABASES.get(cls.driver)

    def start_sql(self, name="sql.conf.ext", master=True, pool_size=None, query_timeout=None,
                  extra_auth="", extra="", **kw):
        path = sql_file(self.path(name), self.server, **kw)
        sock = self.path("auth")
        msock = self.path("auth-master") if master else None
        d = self.start_daemon(daemon_config(sock, msock, [path], pool_size, query_timeout,
                                            extra_auth, extra))
        return d, sock, msock

    def auth(self, sock, user, password, req_id=1, mech="PLAIN"):
        with AuthClient(sock) as c:
            c.handshake()
            if mech == "PLAIN":
                c.auth_plain(req_id, user, password)
            else:
                c.auth(req_id, "LOGIN", "lip=127.0.0.1", "rip=127.0.0.1", "secured")
                assert c.reply()[0] == "CONT"
                c.send_line("CONT", str(req_id), b64(user))
                r = c.reply()
                if r[0] != "CONT":
                    return r  # the mechanism refused the name itself
                c.send_line("CONT", str(req_id), b64(password))
            return c.reply(timeout=15)


class SqlTests:
    """Mixed into one class per driver."""

    def test_postfixadmin_queries(self):
        d, sock, _ = self.start_sql()
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        self.assert_ok(self.auth(sock, "bob@example.com", bob_password()), 1, "bob@example.com")
        for user, pw in (("alice@example.com", WRONG_PASSWORD),        # wrong password
                         ("nobody@example.com", ALICE_PASSWORD),       # unknown user
                         ("carol@off.example", CAROL_PASSWORD),        # inactive domain
                         ("dave@example.com", CAROL_PASSWORD)):        # inactive mailbox
            r = self.auth(sock, user, pw)
            self.assert_fail(r, 1)
            self.assertFalse(is_temp_fail(r), (user, r))
        # MySQL's PostfixAdmin collation matches case-insensitively and the
        # user column gives the canonical name; PostgreSQL compares exactly.
        r = self.auth(sock, "ALICE@Example.COM", ALICE_PASSWORD)
        if self.driver == "mysql":
            self.assert_ok(r, 1, "alice@example.com")
        else:
            self.assert_fail(r, 1)
        self.assertNotIn("temporary failure", d.stderr())

    def master_auth(self, sock, target, password=MASTER_PASSWORD, separator=False):
        if separator:
            payload = plain_payload(f"{target}*admin", password)
        else:
            payload = plain_payload("admin", password, authzid=target)
        with AuthClient(sock) as c:
            c.handshake()
            c.auth(1, "PLAIN", "rip=127.0.0.1", resp=b64(payload))
            return c.reply(timeout=15)

    def test_scram_from_cleartext(self):
        # {PLAIN} rows: SCRAM keys derived (PBKDF2) per login on the hashing
        # pool; in builds with assertions a derivation on the event loop
        # thread aborts the daemon (util/loop_thread.hpp).
        d, sock, _ = self.start_sql(
            extra_auth='mechanisms = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]')
        c = self.connect(sock)
        for i, mech in enumerate(("SCRAM-SHA-256", "SCRAM-SHA-1"), 1):
            self.assert_ok(scram_login(c, i, mech, "alice@example.com", ALICE_PASSWORD), i,
                           "alice@example.com")
        self.assert_fail(scram_login(c, 3, "SCRAM-SHA-256", "alice@example.com", WRONG_PASSWORD), 3)
        self.assert_fail(scram_login(c, 4, "SCRAM-SHA-256", "dave@example.com", CAROL_PASSWORD), 4)
        self.assertTrue(d.alive())

    # --- rehash on login ---

    def start_rehash(self, rows, **kw):
        self.addCleanup(add_mailboxes(self.server, rows))
        return self.start_sql(update_query=REHASH_UPDATE,
                              extra_auth='rehash_scheme = "ARGON2ID"\nweak_schemes = "refuse"', **kw)

    def test_rehash_on_login(self):
        md5 = md5_crypt(REHASH_PASSWORD)
        # Hostile names are values in the UPDATE as in the SELECT.
        users = ["rehash@example.com", "re'hash\\x%u@example.com", "rehash-crypt@example.com"]
        rows = [(users[0], "{MD5-CRYPT}" + md5), (users[1], "{MD5-CRYPT}" + md5), (users[2], "{CRYPT}" + md5)]
        d, sock, _ = self.start_rehash(rows)
        for user in users:
            with self.subTest(user=user):
                self.assert_ok(self.auth(sock, user, REHASH_PASSWORD), 1, user)
                self.assertTrue(wait_until(lambda: stored_password(self.server, user).startswith("{ARGON2ID}$argon2id$")),
                                f"{stored_password(self.server, user)[:12]}...\n{d.stderr()[-2000:]}")
                new = stored_password(self.server, user)
                harness.register_secret(new)
                if shutil.which("doveadm"):
                    p = subprocess.run(["doveadm", "-c", "/dev/null", "pw", "-t", new, "-p", REHASH_PASSWORD],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                # The next login verifies the new hash; nothing is rewritten.
                self.assert_ok(self.auth(sock, user, REHASH_PASSWORD), 1, user)
                self.assert_fail(self.auth(sock, user, WRONG_PASSWORD), 1)
                time.sleep(0.5)
                self.assertEqual(stored_password(self.server, user), new)
                logged = user.replace("\\", "\\x5c").replace('"', "\\x22")  # as log lines escape it
                self.assertEqual(d.stderr().count(f'rehashed user "{logged}"'), 1, d.stderr()[-2000:])
        # Other rows were not touched by the UPDATEs.
        self.assertEqual(stored_password(self.server, "alice@example.com"), "{PLAIN}" + ALICE_PASSWORD)

    def test_rehash_update_refused_keeps_the_old_hash(self):
        # A database user that may only SELECT: the login still succeeds
        # (the policy lets it in to be rehashed), the old hash stays, and
        # the next login tries again.
        user = "rehash-ro@example.com"
        stored = "{MD5-CRYPT}" + md5_crypt(REHASH_PASSWORD)
        conn = self.server.connect_string().replace(f"user={databases.DB_USER}", "user=limited").replace(
            f"password={databases.DB_PASSWORD}", f"password={LIMITED_PASSWORD}")
        d, sock, _ = self.start_rehash([(user, stored)], connect=conn, pool_size=1)
        for n in (1, 2):
            self.assert_ok(self.auth(sock, user, REHASH_PASSWORD), 1, user)
            self.assertTrue(wait_until(lambda: len(re.findall(r"not written; the old hash stays", d.stderr())) >= n),
                            d.stderr()[-2000:])
        self.assertRegex(d.stderr(), rf'update_query for user "{re.escape(user)}" failed: ')
        self.assertEqual(stored_password(self.server, user), stored)

    def test_rehash_never_overwrites_a_changed_password(self):
        # The row changes between the login's SELECT and the rehash's UPDATE:
        # a transaction holds the new password uncommitted while the login
        # reads the old one, so the UPDATE waits for it and then finds
        # another value than the one verified.
        user = "rehash-race@example.com"
        d, sock, _ = self.start_rehash([(user, "{MD5-CRYPT}" + md5_crypt(REHASH_PASSWORD))])
        changed = "{PLAIN}" + ALICE_PASSWORD
        s = self.server.session(databases.DB_NAME)
        try:
            s.stdin.write(f"BEGIN;\nUPDATE mailbox SET password = {self.server.quote(changed)} "
                          f"WHERE username = {self.server.quote(user)};\n")
            s.stdin.flush()
            time.sleep(0.5)
            self.assert_ok(self.auth(sock, user, REHASH_PASSWORD), 1, user)
            time.sleep(1.5)  # the rehash is hashed and its UPDATE waits for the lock
            s.stdin.write("COMMIT;\n")
            s.stdin.close()
            s.wait(30)
        finally:
            if s.poll() is None:
                s.kill()
        self.assertTrue(wait_until(lambda: "changed no row" in d.stderr()), d.stderr()[-2000:])
        self.assertEqual(stored_password(self.server, user), changed)
        self.assertNotIn(f'rehashed user "{user}"', d.stderr())

    def test_weak_scheme_policy(self):
        user = "weak-policy@example.com"
        self.addCleanup(add_mailboxes(self.server, [(user, "{PLAIN-MD5}" + hashlib.md5(REHASH_PASSWORD.encode()).hexdigest())]))
        for policy, weak_ok in (("allow", True), ("warn", True), ("refuse", False)):
            with self.subTest(policy=policy):
                d, sock, _ = self.start_sql(extra_auth=f'weak_schemes = "{policy}"', name=f"{policy}.conf.ext")
                r = self.auth(sock, user, REHASH_PASSWORD)
                if weak_ok:
                    self.assert_ok(r, 1, user)
                else:
                    self.assert_fail(r, 1)
                self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
                warned = f'user "{user}" logged in with a weak password scheme (PLAIN-MD5)' in d.stderr()
                self.assertEqual(warned, policy == "warn", d.stderr()[-2000:])
                refused = f'user "{user}": weak password scheme PLAIN-MD5 refused' in d.stderr()
                self.assertEqual(refused, policy == "refuse", d.stderr()[-2000:])
                d.stop()

    def test_master_user_targets(self):
        # The target is looked up with password_query, without a password:
        # PostfixAdmin's active flags and unknown names refuse it.
        extra_auth, extra = master_passdb(self.path("masters"))
        d, sock, _ = self.start_sql(extra_auth=extra_auth, extra=extra)
        for sep in (False, True):
            self.assert_ok(self.master_auth(sock, "alice@example.com", separator=sep), 1,
                           "alice@example.com")
        for target in ("nobody@example.com",        # unknown
                       "carol@off.example",         # inactive domain
                       "dave@example.com",          # inactive mailbox
                       "x' OR '1'='1"):             # SQL in the target's name
            with self.subTest(target=target):
                r = self.master_auth(sock, target)
                self.assert_fail(r, 1)
                self.assertIn("code=authz_fail", r)
                self.assertIn(f"user={target}", r)
        r = self.master_auth(sock, "alice@example.com", WRONG_PASSWORD)
        self.assert_fail(r, 1)
        self.assertNotIn("code=authz_fail", r)
        self.assertFalse(is_temp_fail(r), r)

    def test_master_user_target_temp_fail(self):
        # The database cannot be reached: the target lookup temp-fails, never OK.
        port = harness.free_tcp_port()
        conn = (f"host=127.0.0.1 port={port} dbname=postfix user=postfix "
                f"password={databases.DB_PASSWORD}")
        extra_auth, extra = master_passdb(self.path("masters"))
        d, sock, _ = self.start_sql(connect=conn, extra_auth=extra_auth, extra=extra)
        r = self.master_auth(sock, "alice@example.com")
        self.assertTrue(is_temp_fail(r), r)

    def test_contrib_example(self):
        # contrib/postfixadmin/dovecot-sql-<driver>.conf.ext as shipped, but
        # for the connect line.
        src = os.path.join(harness.REPO_ROOT, "contrib", "postfixadmin",
                           f"dovecot-sql-{self.driver}.conf.ext")
        with open(src, encoding="utf-8") as f:
            text = re.sub(r"(?m)^connect = .*$", lambda m: "connect = " + self.server.connect_string(),
                          f.read())
        path = self.path("contrib.conf.ext")
        write_file(path, text, 0o644)
        sock, msock = self.path("auth"), self.path("auth-master")
        d = self.start_daemon(daemon_config(sock, msock, [path]))
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        self.assert_ok(self.auth(sock, "bob@example.com", bob_password()), 1, "bob@example.com")
        for user, pw in (("carol@off.example", CAROL_PASSWORD), ("dave@example.com", CAROL_PASSWORD),
                         ("alice@example.com", WRONG_PASSWORD)):
            r = self.auth(sock, user, pw)
            self.assert_fail(r, 1)
            self.assertFalse(is_temp_fail(r), r)
        got = master_request(msock, "USER\t1\talice@example.com\tservice=imap",
                             "USER\t2\tcarol@off.example\tservice=imap")
        self.assertIn("home=/var/vmail/example.com/alice/", got[0].split("\t"), got)
        self.assertEqual(got[1].split("\t")[:2], ["NOTFOUND", "2"], got)
        # contrib/postfixadmin/postern.conf passes the check with this file.
        with open(os.path.join(harness.REPO_ROOT, "contrib", "postfixadmin", "postern.conf"),
                  encoding="utf-8") as f:
            conf = f.read().replace("/etc/postern/dovecot-sql.conf.ext", path)
        write_file(self.path("contrib-postern.conf"), conf)
        r = harness.run_cli(["config", "check", self.path("contrib-postern.conf")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("passdb: sql", r.stdout)

    def test_typed_password_variable(self):
        # %w is the password the client typed (Dovecot's app-password trick);
        # it is bound like any other value and never logged.
        q = ("SELECT username AS user, password FROM mailbox WHERE username = '%u' "
             "AND '%w' <> 'x'' OR ''1''=''1'")
        d, sock, _ = self.start_sql(password_query=q)
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        r = self.auth(sock, "alice@example.com", "x' OR '1'='1")
        self.assert_fail(r, 1)
        self.assertFalse(is_temp_fail(r), r)

    def test_userdb_and_master_lookups(self):
        d, sock, msock = self.start_sql()
        got = master_request(msock, "USER\t1\talice@example.com\tservice=imap",
                             "USER\t2\tnobody@example.com\tservice=imap",
                             "PASS\t3\talice@example.com\tservice=imap")
        self.assertEqual(got[0].split("\t")[:3], ["USER", "1", "alice@example.com"], got)
        fields = set(got[0].split("\t")[3:])
        self.assertTrue({"home=/var/vmail/example.com/alice/", "uid=2000", "gid=2000",
                         "quota_rule=*:bytes=0"} <= fields, got)
        self.assertEqual(got[1].split("\t")[:2], ["NOTFOUND", "2"], got)
        self.assertEqual(got[2].split("\t")[:3], ["PASS", "3", "user=alice@example.com"], got)
        self.assertNotIn(ALICE_PASSWORD, "\n".join(got))

    def test_hostile_usernames(self):
        d, sock, _ = self.start_sql(extra_auth="max_username_length = 4096")
        # Real rows whose names carry quotes, backslashes, % and UTF-8.
        for name in HOSTILE_REAL:
            self.assert_ok(self.auth(sock, name, HOSTILE_PASSWORD), 1, name)
        # Injection attempts and odd names: a plain "no" each, never a match.
        attempts = ["x' OR '1'='1", "alice@example.com' -- ", "alice@example.com'#",
                    "alice@example.com\\' OR 1=1 -- ", "' UNION SELECT 'alice@example.com', "
                    "'{PLAIN}x' -- ", "%u", "%%", "%{user}", "\\", "\"", "alice@example.com\\",
                    "b\u00fc\u00df@example.com", "\U0001F600@example.com", "a" * 4000]
        for name in attempts:
            for pw in (ALICE_PASSWORD, "x"):
                r = self.auth(sock, name, pw)
                self.assert_fail(r, 1)
                self.assertFalse(is_temp_fail(r), (name[:50], r))
        # NUL inside a name (LOGIN carries any bytes) and 10 KB of text: refused
        # before any query, still a plain failure.
        for name in ("alice@example.com\0x", "alice\0@example.com", "x" * 10240):
            r = self.auth(sock, name, ALICE_PASSWORD, mech="LOGIN")
            self.assert_fail(r, 1)
            self.assertFalse(is_temp_fail(r), r)
        self.assertTrue(d.alive())
        self.assertNotRegex(d.stderr(), r"password_query .*failed|more than one row")
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")

    def test_values_bound_wherever_the_template_puts_them(self):
        # Every shape a template gives a variable: a whole literal, part of a
        # longer literal, concatenated literals, no quotes at all, and (MySQL)
        # a literal with a backslash escape beside a value, which takes the
        # escaped text path. Quotes, backslashes and 10 KB in every variable
        # the client controls (name, service, session): real rows match,
        # the rest is a plain "no", never a SQL error or a wrong OK.
        concat = "CONCAT('%n', '@', '%d')" if self.driver == "mysql" else "'%n' || '@' || '%d'"
        base = ("SELECT m.username AS user, m.password FROM mailbox m JOIN domain d ON d.domain = m.domain "
                "WHERE d.active = '1' AND '%s' <> '' AND '%{session}' <> 'x''y' AND ")
        shapes = {"literal": "m.username = '%u'", "inside-literal": "m.username = '%n@%d'",
                  "concatenated": f"m.username = {concat}", "unquoted": "m.username = %u"}
        if self.driver == "mysql":
            shapes["escaped-text"] = "m.username = '%u' AND m.password NOT LIKE 'x\\'%n'"
        services = ["smtp", "im'ap\"x\\", "'; DROP TABLE mailbox; --"]
        sessions = ["s1", "a'b\\c\"d%u", "'" * 10240]
        names = ["x' OR '1'='1", "alice@example.com' -- ", "alice@example.com\\' OR 1=1 -- ", "%u", "?",
                 "alice@example.com\\", "' UNION SELECT 'alice@example.com', '{PLAIN}x' -- ", "a'" * 2000]

        def login(sock, user, password, service, session):
            with AuthClient(sock) as c:
                c.handshake()
                c.auth(1, "PLAIN", "rip=127.0.0.1", f"session={session}",
                       resp=b64(plain_payload(user, password)), service=service)
                return c.reply(timeout=15)
        for shape, where in shapes.items():
            with self.subTest(shape=shape):
                d, sock, _ = self.start_sql(name=f"{shape}.conf.ext", password_query=base + where,
                                            extra_auth="max_username_length = 4096")
                for service, session in zip(services, sessions):
                    self.assert_ok(login(sock, "alice@example.com", ALICE_PASSWORD, service, session), 1,
                                   "alice@example.com")
                    for real in HOSTILE_REAL:
                        self.assert_ok(login(sock, real, HOSTILE_PASSWORD, service, session), 1, real)
                    for name in names + ["alice@example.com"]:
                        r = login(sock, name, WRONG_PASSWORD if name == "alice@example.com" else ALICE_PASSWORD,
                                  service, session)
                        self.assert_fail(r, 1)
                        self.assertFalse(is_temp_fail(r), (shape, name[:40], r))
                self.assertTrue(d.alive())
                self.assertNotRegex(d.stderr(), r"password_query .*failed|more than one row")
                d.stop()

    def test_statements_prepared_once_per_connection(self):
        # A lookup executes a statement the connection prepared before; it is
        # not parsed again. MariaDB counts prepares and executes server-wide;
        # PostgreSQL keeps them per session, so there the server logs every
        # parse and execute of postern's named statements for the test.
        if self.driver == "mysql":
            def counts():
                out = self.server.sql("SHOW GLOBAL STATUS WHERE Variable_name IN "
                                      "('Com_stmt_prepare', 'Com_stmt_execute')")
                got = dict(line.split() for line in out.splitlines())
                return int(got["Com_stmt_prepare"]), int(got["Com_stmt_execute"])
        else:
            self.server.sql("ALTER ROLE ALL SET log_min_duration_statement = 0")
            self.addCleanup(self.server.sql, "ALTER ROLE ALL RESET log_min_duration_statement")

            def counts():
                with open(self.server.log_path, errors="replace") as f:
                    text = f.read()
                return (len(re.findall(r"\bparse postern_\d+:", text)),
                        len(re.findall(r"\bexecute postern_\d+:", text)))
        d, sock, _ = self.start_sql(pool_size=2, master=False)
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        prepares, executes = counts()
        if self.driver == "pgsql":
            self.assertGreaterEqual(prepares, 1, "PostgreSQL logged no parse of a postern statement")
        for k in range(20):
            self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
            self.assert_fail(self.auth(sock, f"nobody{k}@example.com", ALICE_PASSWORD), 1)
        now_prepares, now_executes = counts()
        self.assertLessEqual(now_prepares - prepares, 1)  # the second connection's
        self.assertGreaterEqual(now_executes - executes, 40)

    def test_result_columns(self):
        # allow_nets decides by the client's rip; other columns are passed to
        # the client (NULL ones are left out); userdb_* stay internal.
        def query(nets):
            return ("SELECT username AS user, password, " + nets + " AS allow_nets, "
                    "'/var/vmail/x' AS userdb_home, 'hello' AS greeting, NULL AS nothing "
                    "FROM mailbox WHERE username = '%u'")
        d, sock, _ = self.start_sql(password_query=query("'192.0.2.0/24, 127.0.0.0/8'"))
        r = self.auth(sock, "alice@example.com", ALICE_PASSWORD)
        self.assert_ok(r, 1, "alice@example.com")
        self.assertIn("greeting=hello", r, r)
        self.assertFalse(any(f.startswith(("nothing", "allow_nets", "userdb_", "home", "password"))
                             for f in r[2:]), r)
        d.stop()
        d, sock, _ = self.start_sql(name="nets.conf.ext", password_query=query("'192.0.2.0/24'"))
        r = self.auth(sock, "alice@example.com", ALICE_PASSWORD)
        self.assert_fail(r, 1)
        self.assertFalse(is_temp_fail(r), r)

    def inline_config(self, passdb, userdb):
        """postern.conf with the settings inline (Dovecot 2.4's names) for
        this driver: a client and a master socket, the passdb and userdb
        tables given their own query and fields lines."""
        s = self.server
        if s.driver == "mysql":
            connect = (f'sql_driver = "mysql"\nmysql_host = "127.0.0.1"\nmysql_port = {s.port}\n'
                       f'mysql_user = {toml_str(databases.DB_USER)}\nmysql_password = {toml_str(databases.DB_PASSWORD)}\n'
                       f'mysql_dbname = {toml_str(databases.DB_NAME)}\n')
        else:
            connect = (f'sql_driver = "pgsql"\npgsql_host = "127.0.0.1"\npgsql_parameters = {{ port = {s.port}, '
                       f'user = {toml_str(databases.DB_USER)}, password = {toml_str(databases.DB_PASSWORD)}, '
                       f'dbname = {toml_str(databases.DB_NAME)} }}\n')
        sock, msock = self.path("auth"), self.path("auth-master")
        text = daemon_config(sock, msock, [])
        text += f'\n[[passdb]]\ndriver = "sql"\n{connect}{passdb}\n[[userdb]]\ndriver = "sql"\n{connect}{userdb}\n'
        return text, sock, msock

    def test_fields_templates(self):
        # Dovecot 2.4's fields { }: templates over the row's columns
        # (%{sql:...}), the fields they set (%{passdb:...} / %{userdb:...})
        # and the request's variables, set after the columns and replacing
        # theirs.
        passdb = ("query = \"SELECT username, password, maildir FROM mailbox WHERE username = '%{user | lower}' "
                  "AND active = '1'\"\n"
                  'fields = { user = "%{passdb:username}", greeting = "hi %{sql:maildir} from %{remote_ip}", '
                  'maildir = "%{sql:maildir | upper}" }\n')
        userdb = ("query = \"SELECT maildir, quota, 2000 AS uid, 2000 AS gid FROM mailbox WHERE username = '%u'\"\n"
                  'fields = { home = "/var/vmail/%{user | domain}/%{user | username}", '
                  'mail = "maildir:~/%{userdb:maildir}", quota_rule = "*:bytes=%{sql:quota}", '
                  '"maildir:remove" = "" }\n')
        text, sock, msock = self.inline_config(passdb, userdb)
        d = self.start_daemon(text)
        r = self.auth(sock, "ALICE@example.com", ALICE_PASSWORD)
        self.assertEqual(r[0], "OK", r)
        # The column username renamed the user; the template read it back.
        self.assertEqual(sorted(r[2:]), ["greeting=hi example.com/alice/ from 127.0.0.1",
                                         "maildir=EXAMPLE.COM/ALICE/", "original_user=ALICE@example.com",
                                         "user=alice@example.com"], r)
        self.assert_fail(self.auth(sock, "alice@example.com", WRONG_PASSWORD), 1)
        got = master_request(msock, "USER\t1\talice@example.com\tservice=imap")
        self.assertEqual(got[0].split("\t")[:3], ["USER", "1", "alice@example.com"], got)
        self.assertEqual(sorted(got[0].split("\t")[3:]),
                         ["gid=2000", "home=/var/vmail/example.com/alice", "mail=maildir:~/example.com/alice/",
                          "quota=0", "quota_rule=*:bytes=0", "uid=2000"], got)
        d.stop()
        # nopassword from a field; fields_import_all off: only the fields;
        # a template naming a column the row lacks fails the lookup.
        passdb = ("query = \"SELECT username, password FROM mailbox WHERE username = '%u'\"\n"
                  "fields_import_all = false\n"
                  'fields = { nopassword = "yes", who = "%{sql:username}/<%{passdb:username}>" }\n')
        userdb = ("query = \"SELECT maildir FROM mailbox WHERE username = '%u'\"\n"
                  'fields = { home = "/h/%{sql:nosuch}" }\n')
        text, sock, msock = self.inline_config(passdb, userdb)
        d = self.start_daemon(text, name="posternd2")
        r = self.auth(sock, "bob@example.com", WRONG_PASSWORD)
        self.assertEqual(r[0], "OK", r)
        self.assertEqual(sorted(r[2:]), ["user=bob@example.com", "who=bob@example.com/<>"], r)  # nopassword stays internal
        self.assert_fail(self.auth(sock, "nobody@example.com", WRONG_PASSWORD), 1)
        got = master_request(msock, "USER\t1\talice@example.com\tservice=imap")
        self.assertEqual(got[0].split("\t")[:2], ["FAIL", "1"], got)
        self.assertIn('user "alice@example.com": fields: field home: unknown variable %{sql:nosuch}', d.stderr())
        check = harness.run_cli(["config", "check", d.config_path])
        self.assertIn("then fields home from templates", check.stdout, check.stdout + check.stderr)
        self.assertIn("then fields nopassword who from templates (only they: fields_import_all off)", check.stdout)

    def test_two_rows_fail_safely(self):
        q = "SELECT username AS user, password FROM mailbox WHERE domain = '%d'"
        d, sock, _ = self.start_sql(password_query=q)
        r = self.auth(sock, "alice@example.com", ALICE_PASSWORD)
        self.assert_fail(r, 1)
        self.assertTrue(is_temp_fail(r), r)
        self.assertRegex(d.stderr(), r"password_query returned \d+ rows for user \"alice@example.com\"")

    def test_null_password(self):
        q = "SELECT username AS user, NULL AS password FROM mailbox WHERE username = '%u'"
        d, sock, _ = self.start_sql(password_query=q)
        r = self.auth(sock, "alice@example.com", ALICE_PASSWORD)
        self.assert_fail(r, 1)
        self.assertFalse(is_temp_fail(r), r)
        self.assertIn("a NULL password", d.stderr())

    def test_unknown_scheme_prefix(self):
        d, sock, _ = self.start_sql()
        r = self.auth(sock, "weird@example.com", "abcdef")
        self.assert_fail(r, 1)
        self.assertFalse(is_temp_fail(r), r)
        self.assertRegex(d.stderr(), r"weird@example.com.*(?i:scheme)")

    def test_wrong_connect_string(self):
        path = sql_file(self.path("bad.conf.ext"), self.server,
                        connect=self.server.connect_string() + " dbnme=postfix")
        d = self.start_daemon(daemon_config(self.path("auth"), None, [path]), wait_ready=False)
        d.proc.wait(10)
        self.assertEqual(d.proc.returncode, EX_CONFIG, d.stderr())
        self.assertRegex(d.stderr(), re.escape(path) + r":3: connect: unknown \w+ connect key \"dbnme\"")
        self.assertNotIn(databases.DB_PASSWORD, d.stderr())
        # `postern config check` says the same without starting anything.
        r = harness.run_cli(["config", "check", d.config_path])
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"passdb\[0\]\.args: " + re.escape(path) + r":3: connect: ")
        # Other broken connect strings: a missing '=', a bad port, an empty host.
        for bad in ("host=127.0.0.1 postfix", "host=127.0.0.1 port=99999", "host=,127.0.0.1"):
            write_file(path, open(path, encoding="utf-8").read().replace(
                next(l for l in open(path, encoding="utf-8") if l.startswith("connect = ")),
                f"connect = {bad}\n"))
            r = harness.run_cli(["config", "check", d.config_path])
            self.assertEqual(r.returncode, EX_CONFIG, (bad, r.stdout + r.stderr))
            self.assertIn(f"{path}:3: connect: ", r.stderr)
        # A good file passes the check.
        sql_file(path, self.server)
        r = harness.run_cli(["config", "check", d.config_path])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("passdb: sql", r.stdout)

    def test_hosts_tried_in_turn_and_unix_socket(self):
        # 127.0.0.2 refuses (the server listens on 127.0.0.1 only): the next
        # host is used. Then the server's unix socket alone.
        creds = f"dbname=postfix user=postfix password={databases.DB_PASSWORD}"
        conn = f"host=127.0.0.2,127.0.0.1 port={self.server.port} {creds}"
        d, sock, _ = self.start_sql(connect=conn)
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        self.assertIn("cannot connect to 127.0.0.2", d.stderr())
        d.stop()
        sockpath = self.server.socket if self.driver == "mysql" else self.server.sockdir
        conn = f"host={sockpath} port={self.server.port} {creds}"
        d, sock, _ = self.start_sql(name="socket.conf.ext", connect=conn)
        self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        self.assertIn(f"connected to {sockpath}", d.stderr())

    def test_server_refuses_more_connections(self):
        # The database user may open 2 connections, the pool wants 6: the
        # refused ones do not fail requests while the open ones serve.
        if self.driver == "mysql":
            slow = "SLEEP(0.2) = 0"
        else:
            slow = "(SELECT true FROM pg_sleep(0.2))"
        conn = (f"host=127.0.0.1 port={self.server.port} dbname={databases.DB_NAME} "
                f"user=limited password={LIMITED_PASSWORD}")
        d, sock, _ = self.start_sql(connect=conn, pool_size=6, query_timeout="10s",
                                    password_query=f"{PFA_PASSWORD_QUERY} AND {slow}")
        with AuthClient(sock) as c:
            c.handshake()
            for i in range(1, 13):
                c.auth_plain(i, "alice@example.com", ALICE_PASSWORD)
            replies = [c.reply_for(i, timeout=20) for i in range(1, 13)]
        for i, r in enumerate(replies, 1):
            self.assert_ok(r, i, "alice@example.com")
        self.assertRegex(d.stderr(), r"(?i)max_user_connections|connection limit|too many")

    def test_unreachable_server_is_temp_fail(self):
        # Nothing listens on this port: the daemon starts, answers temp-fail.
        port = harness.free_tcp_port()
        conn = (f"host=127.0.0.1 port={port} dbname=postfix user=postfix "
                f"password={databases.DB_PASSWORD}")
        d, sock, _ = self.start_sql(connect=conn)
        for pw in (ALICE_PASSWORD, WRONG_PASSWORD):
            r = self.auth(sock, "alice@example.com", pw)
            self.assertTrue(is_temp_fail(r), r)
        self.assertIn("database unreachable", d.stderr())

    def test_query_slower_than_timeout(self):
        if self.driver == "mysql":
            slow = "IF('%n' = 'slow', SLEEP(6), 0) = 0"
        else:
            slow = "(CASE WHEN '%n' = 'slow' THEN (SELECT true FROM pg_sleep(6)) ELSE true END)"
        q = ("SELECT username AS user, password FROM mailbox WHERE "
             f"(username = '%u' OR '%n' = 'slow') AND {slow} LIMIT 1")
        d, sock, _ = self.start_sql(password_query=q, query_timeout="1s", pool_size=2)
        with AuthClient(sock) as c:
            c.handshake()
            started = time.monotonic()
            c.auth_plain(1, "slow@example.com", ALICE_PASSWORD)
            c.auth_plain(2, "alice@example.com", ALICE_PASSWORD)
            # The other connection of the pool answers meanwhile.
            self.assert_ok(c.reply_for(2, timeout=10), 2, "alice@example.com")
            r = c.reply_for(1, timeout=10)
            elapsed = time.monotonic() - started
        self.assertTrue(is_temp_fail(r), r)
        # Not a speed check: without the cut the answer takes the full 6 s.
        self.assertLess(elapsed, 5.0, "the query was not cut off at its timeout")
        self.assertIn("query timed out", d.stderr())
        # The dropped connection is replaced.
        for _ in range(3):
            self.assert_ok(self.auth(sock, "alice@example.com", ALICE_PASSWORD), 1,
                           "alice@example.com")

    def test_database_stopped_under_load(self):
        # service=imap requests take 1.5 s inside the database, so that some
        # are surely in flight when it stops.
        if self.driver == "mysql":
            slow = "IF('%s' = 'imap', SLEEP(1.5), 0) = 0"
        else:
            slow = "(CASE WHEN '%s' = 'imap' THEN (SELECT true FROM pg_sleep(1.5)) ELSE true END)"
        d, sock, _ = self.start_sql(pool_size=6, query_timeout="3s",
                                    password_query=f"{PFA_PASSWORD_QUERY} AND {slow}")
        stop = threading.Event()
        results = []   # (sent, received, right_password, fields, slow)
        errors = []

        def worker(n, slow=False):
            try:
                with AuthClient(sock, timeout=20) as c:
                    c.handshake()
                    i = 0
                    while not stop.is_set():
                        i += 1
                        right = slow or (i + n) % 3 != 0
                        sent = time.monotonic()
                        c.auth_plain(i, "alice@example.com",
                                     ALICE_PASSWORD if right else WRONG_PASSWORD,
                                     service="imap" if slow else "smtp")
                        r = c.reply_for(i, timeout=15)
                        results.append((sent, time.monotonic(), right, r, slow))
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        threads += [threading.Thread(target=worker, args=(n, True)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            stop_begin = time.monotonic()
            self.server.stop()
            stopped_at = time.monotonic()   # the server process has exited
            time.sleep(2.0)
            restart_at = time.monotonic()
            self.server.start()
            up_at = time.monotonic()
            deadline = up_at + 20
            first_ok = None
            while time.monotonic() < deadline and first_ok is None:
                time.sleep(0.05)
                first_ok = next((rcv for sent, rcv, right, r, slow in list(results)
                                 if sent > up_at and r[0] == "OK"), None)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            if not self.server.running():
                self.server.start()
        self.assertEqual(errors, [], "every request gets an answer")
        wrong_ok = [r for _, _, right, r, _ in results if not right and r[0] == "OK"]
        self.assertEqual(wrong_ok, [], "a wrong password is never accepted")
        right_plain_fail = [r for _, _, right, r, _ in results
                            if right and r[0] == "FAIL" and not is_temp_fail(r)]
        self.assertEqual(right_plain_fail, [], "the right password is never a plain failure")
        down = [r for sent, _, _, r, _ in results if stopped_at + 0.1 < sent < restart_at]
        self.assertTrue(down and all(is_temp_fail(r) for r in down),
                        f"temp-fail while down: {down[:5]}")
        # Slow queries that were inside the database when it stopped.
        in_flight = [r for sent, rcv, _, r, slow in results if slow and sent < stop_begin < rcv]
        self.assertTrue(in_flight, "no request was in flight when the server stopped")
        self.assertTrue(all(is_temp_fail(r) or r[0] == "OK" for r in in_flight), in_flight)
        self.assertIsNotNone(first_ok, "service resumed after the restart")
        recovery = first_ok - up_at
        sys.stderr.write(f"\n  {self.driver}: {len(results)} requests ({len(in_flight)} slow ones in "
                         f"flight at the stop); down {restart_at - stop_begin:.1f}s; "
                         f"restart took {up_at - restart_at:.1f}s; first OK {recovery:.3f}s after "
                         f"the server listened again\n")
        self.assertRegex(d.stderr(), r"connected to 127\.0\.0\.1 again after \d+\.\d+s unavailable")

    def test_user_store(self):
        if not os.access(STORE_DRIVER, os.X_OK):
            self.skipTest("store_driver not built")
        path = sql_file(self.path("store.conf.ext"), self.server)
        conf = self.path("store.toml")
        write_file(conf, daemon_config(self.path("auth"), None, [path]))

        def store(*args):
            return subprocess.run([STORE_DRIVER, conf, *args], capture_output=True, text=True,
                                  timeout=60)

        hashed = harness.sha512_crypt(STORE_PASSWORD)
        self.assertIsNotNone(hashed)
        self.assertEqual(store("default-scheme").stdout.strip(), "SHA512-CRYPT")
        # Refused: a domain that does not exist, a name without a domain, an existing one.
        r = store("add", "new@nosuch.example", "{SHA512-CRYPT}" + hashed)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("nosuch.example does not exist", r.stderr)
        self.assertEqual(store("add", "nodomain", "{PLAIN}x").returncode, 3)
        self.assertEqual(store("add", "alice@example.com", "{PLAIN}x").returncode, 2)
        # Added the PostfixAdmin way, including a quote in the name.
        for user in ("newuser@example.com", "o'malley@example.com"):
            r = store("add", user, "{SHA512-CRYPT}" + hashed, "name=New User", "quota=2048000")
            self.assertEqual(r.returncode, 0, r.stderr)
            row = self.server.sql(
                "SELECT username, password, name, maildir, quota, local_part, domain, active, "
                f"created > '2001-01-01', modified > '2001-01-01' FROM mailbox WHERE username = "
                f"{self.server.quote(user)}", databases.DB_NAME).strip().split("\t" if self.driver == "mysql" else "|")
            local = user.split("@")[0]
            self.assertEqual(row[:7], [user, hashed, "New User", f"example.com/{local}/", "2048000",
                                       local, "example.com"], row)
            self.assertIn(row[7], ("1", "t"))
            self.assertIn(row[8], ("1", "t"))
            alias = self.server.sql(f"SELECT goto FROM alias WHERE address = {self.server.quote(user)}",
                                    databases.DB_NAME).strip()
            self.assertEqual(alias, user)
        r = store("show", "newuser@example.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maildir=example.com/newuser/", r.stdout)
        self.assertNotIn(hashed, r.stdout)
        # Userdb::iterate (auth-master LIST) streams iterate_query's rows and
        # stops when asked to.
        it = store("userdb-iterate")
        self.assertEqual(it.returncode, 0, it.stderr)
        self.assertIn("newuser@example.com", it.stdout.split())
        self.assertNotIn("dave@example.com", it.stdout.split())
        it = store("userdb-iterate", "2")
        self.assertEqual(it.returncode, 10, it.stderr)
        self.assertEqual(len(it.stdout.split()), 2, it.stdout)
        listed = store("list").stdout.split()
        self.assertIn("newuser@example.com", listed)
        self.assertNotIn("dave@example.com", listed)  # iterate_query: active only
        # The daemon accepts the new user; a password change takes effect.
        d = self.start_daemon(daemon_config(self.path("auth"), None, [path]))
        sock = self.path("auth")
        self.assert_ok(self.auth(sock, "o'malley@example.com", STORE_PASSWORD), 1,
                       "o'malley@example.com")
        self.assertEqual(store("passwd", "newuser@example.com", "{PLAIN}" + CAROL_PASSWORD).returncode, 0)
        self.assert_ok(self.auth(sock, "newuser@example.com", CAROL_PASSWORD), 1, "newuser@example.com")
        self.assert_fail(self.auth(sock, "newuser@example.com", STORE_PASSWORD), 1)
        self.assertEqual(store("passwd", "ghost@example.com", "{PLAIN}x").returncode, 1)
        for user in ("newuser@example.com", "o'malley@example.com"):
            self.assertEqual(store("del", user).returncode, 0)
        self.assertEqual(store("del", "newuser@example.com").returncode, 1)
        self.assert_fail(self.auth(sock, "newuser@example.com", CAROL_PASSWORD), 1)
        left = self.server.sql("SELECT COUNT(*) FROM alias WHERE address LIKE '%malley%' OR "
                               "address = 'newuser@example.com'", databases.DB_NAME).strip()
        self.assertEqual(left, "0")
        self.assertTrue(d.alive())

    def test_postern_user_commands(self):
        """The real CLI on a PostfixAdmin database: add, show, list, passwd, del."""
        path = sql_file(self.path("cli.conf.ext"), self.server)
        conf = self.path("cli.toml")
        write_file(conf, daemon_config(self.path("auth"), None, [path]))

        def cli(*args, password=None):
            return harness.run_cli(["user", *args, "-c", conf],
                                   stdin_text=None if password is None else password + "\n")

        r = cli("add", "cli-user@example.com", "--field", "name=Cli User", "--field", "quota=1024000",
                password=STORE_PASSWORD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = cli("add", "cli-user@nosuch.example", password=STORE_PASSWORD)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nosuch.example does not exist", r.stderr)
        r = cli("add", "cli-user@example.com", password=STORE_PASSWORD)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        r = cli("show", "cli-user@example.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maildir: example.com/cli-user/", r.stdout)
        self.assertIn("(hash hidden)", r.stdout)
        self.assertNotIn("$6$", r.stdout)
        self.assertIn("cli-user@example.com", cli("list").stdout.split())
        d = self.start_daemon(daemon_config(self.path("auth"), None, [path]))
        sock = self.path("auth")
        self.assert_ok(self.auth(sock, "cli-user@example.com", STORE_PASSWORD), 1, "cli-user@example.com")
        r = cli("passwd", "cli-user@example.com", password=CAROL_PASSWORD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_ok(self.auth(sock, "cli-user@example.com", CAROL_PASSWORD), 1, "cli-user@example.com")
        self.assert_fail(self.auth(sock, "cli-user@example.com", STORE_PASSWORD), 1)
        self.assertEqual(cli("del", "cli-user@example.com").returncode, 0)
        self.assertEqual(cli("del", "cli-user@example.com").returncode, 1)
        self.assert_fail(self.auth(sock, "cli-user@example.com", CAROL_PASSWORD), 1)
        self.assertTrue(d.alive())


@require_binaries
class MysqlTest(SqlTests, SqlCase):
    driver = "mysql"


@require_binaries
class PgsqlTest(SqlTests, SqlCase):
    driver = "pgsql"


class PostfixSqlBase(PostfixTestCase):
    """Postfix smtpd -> posternd -> passdb chain [mysql, pgsql] with
    PostfixAdmin's recommended queries; swaks as the mail client. Each
    database holds one user the other does not."""
    tmp_prefix = "postern-it-sqlpf-"
    extra_auth = ""
    update_query = None

    @classmethod
    def setUpClass(cls):
        cls.drivers = [d for d in ("mysql", "pgsql") if d in SERVERS]
        if not cls.drivers:
            raise unittest.SkipTest(f"no database server: {DATABASES.errors}")
        super().setUpClass()

    @classmethod
    def daemon_config(cls):
        paths = [sql_file(os.path.join(cls.tmp, f"{d}.conf.ext"), SERVERS[d], update_query=cls.update_query)
                 for d in cls.drivers]
        extra_auth, extra = master_passdb(os.path.join(cls.tmp, "masters"))
        return daemon_config(cls.pf.auth_socket, None, paths, extra_auth=extra_auth + "\n" + cls.extra_auth,
                             extra=extra)


class PostfixSqlTest(PostfixSqlBase):

    def test_each_database_authenticates(self):
        for d in self.drivers:
            with self.subTest(driver=d):
                self.assert_reply(self.auth("PLAIN", f"only-{d}@example.com", ALICE_PASSWORD), 235)
                self.assert_reply(self.auth("LOGIN", f"only-{d}@example.com", ALICE_PASSWORD), 235)
                self.assert_reply(self.auth("PLAIN", f"only-{d}@example.com", WRONG_PASSWORD), 535)

    def test_postfixadmin_rules(self):
        self.assert_reply(self.auth("PLAIN", "bob@example.com", bob_password()), 235)
        self.assert_reply(self.auth("LOGIN", "o'brien@example.com", HOSTILE_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "carol@off.example", CAROL_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "dave@example.com", CAROL_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "x' OR '1'='1", ALICE_PASSWORD), 535)

    def test_master_user_targets(self):
        for d in self.drivers:
            with self.subTest(driver=d):
                self.assert_reply(self.auth("PLAIN", f"only-{d}@example.com*admin", MASTER_PASSWORD), 235)
                self.assert_reply(self.auth("LOGIN", f"only-{d}@example.com*admin", MASTER_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "nobody@example.com*admin", MASTER_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "dave@example.com*admin", MASTER_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "alice@example.com*admin", WRONG_PASSWORD), 535)

    def test_relay_after_auth(self):
        d = self.drivers[-1]
        out = self.swaks(self.pf.smtp_port, "--to", "rcpt@outside.example", "--auth", "PLAIN",
                         "--auth-user", f"only-{d}@example.com", "--auth-password", ALICE_PASSWORD)
        self.assert_reply(out, 235)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued", f"{out}\n{self.pf.log()}")


class PostfixSqlRehashTest(PostfixSqlBase):
    """Rehash on login behind Postfix: an MD5-CRYPT row becomes Argon2id."""
    extra_auth = 'rehash_scheme = "ARGON2ID"'
    update_query = REHASH_UPDATE

    def test_md5_crypt_row_upgraded(self):
        for d in self.drivers:
            with self.subTest(driver=d):
                user = f"pf-rehash-{d}@example.com"
                self.addCleanup(add_mailboxes(SERVERS[d], [(user, "{MD5-CRYPT}" + md5_crypt(REHASH_PASSWORD))]))
                self.assert_reply(self.auth("PLAIN", user, REHASH_PASSWORD), 235)
                self.assertTrue(wait_until(lambda: stored_password(SERVERS[d], user).startswith("{ARGON2ID}")),
                                self.daemon.stderr()[-2000:])
                new = stored_password(SERVERS[d], user)
                harness.register_secret(new)
                if shutil.which("doveadm"):
                    p = subprocess.run(["doveadm", "-c", "/dev/null", "pw", "-t", new, "-p", REHASH_PASSWORD],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assert_reply(self.auth("LOGIN", user, REHASH_PASSWORD), 235)
                self.assert_reply(self.auth("PLAIN", user, WRONG_PASSWORD), 535)
                self.assertEqual(stored_password(SERVERS[d], user), new)


if __name__ == "__main__":
    unittest.main()
