# Master users and login-socket client pids.
#
# A master login ("target" authorised by the master's own password, as a
# PLAIN authzid or "target*master") succeeds only when the normal passdb
# chain knows the target and lets it in, looked up without a password:
# unknown targets get FAIL code=authz_fail, refused ones (nologin, sasldb
# and passwd-file alike) FAIL, a temp-failing lookup a temporary failure. The
# target's fields apply, the master's never; the auth-master REQUEST reply
# names the master (master_user=, auth_user=). A chain that cannot look a
# user up without a password (pam only) refuses every master login. The
# same checks run through doveadm (auth test -M, auth login) and through
# Postfix + swaks; sql targets are in test_sql.py.
#
# Client pids: a login-socket connection that announces the pid of a live
# one is closed, the live one's pending logins stay redeemable, and the pid
# is free again once its connection is gone.

import os
import re
import shutil
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, MASTER_PASSWORD, SASLPASSWD2, WRONG_PASSWORD, AuthClient,
                     DaemonTestCase, MasterClient, b64, fields_dict, passwd_line, plain_payload,
                     require_binaries, saslpasswd2, toml_str, write_file)

DOVEADM = shutil.which("doveadm")


def listener(path, role, mode="0666"):
    return ["[[listener]]", 'type = "unix"', f"path = {toml_str(path)}", f"mode = {toml_str(mode)}",
            f"role = {toml_str(role)}", ""]


def master_user_config(tmp, passdbs, masters, userdb_users=None):
    """client, login and master listeners; `passdbs` are [[passdb]] bodies,
    the master passdb is the passwd-file `masters`."""
    lines = ["[log]", 'level = "debug"', "", "[auth]", 'mechanisms = ["PLAIN", "LOGIN"]',
             "failure_delay = 0", 'master_user_separator = "*"', "", "[penalty]", "enabled = false", ""]
    lines += listener(os.path.join(tmp, "auth"), "client")
    lines += listener(os.path.join(tmp, "login"), "login")
    lines += listener(os.path.join(tmp, "master"), "master", "0600")
    for body in passdbs:
        lines += ["[[passdb]]", body, ""]
    lines += ["[[master_passdb]]", 'driver = "passwd-file"', f"path = {toml_str(masters)}", ""]
    if userdb_users:
        lines += ["[[userdb]]", 'driver = "passwd-file"', f"path = {toml_str(userdb_users)}", ""]
    return "\n".join(lines)


def passwd_file_passdb(path):
    return f'driver = "passwd-file"\npath = {toml_str(path)}'


class MasterUserCase(DaemonTestCase):

    def write_masters(self):
        masters = self.path("masters")
        # The master's own fields must never reach a login as someone else.
        write_file(masters, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD, uid=1001, gid=1001,
                                        home="/root", extra="tag=master userdb_home=/masterhome"))
        return masters

    def master_auth(self, target, req_id=1, password=MASTER_PASSWORD, separator=False, sock="auth",
                    client=None):
        c = client or self.connect(self.path(sock))
        if separator:
            payload = plain_payload(f"{target}*admin", password)
        else:
            payload = plain_payload("admin", password, authzid=target)
        c.auth(req_id, "PLAIN", "lip=127.0.0.1", "rip=127.0.0.1", resp=b64(payload), service="imap")
        return c.reply_for(req_id, timeout=15)

    def assert_authz_fail(self, fields, req_id, target):
        self.assert_fail(fields, req_id)
        self.assertIn(f"user={target}", fields, fields)
        self.assertIn("code=authz_fail", fields, fields)

    def assert_plain_fail(self, fields, req_id):
        self.assert_fail(fields, req_id)
        self.assertFalse([f for f in fields[2:] if f.startswith("code=")], fields)


@require_binaries
class PasswdFileTargetTest(MasterUserCase):

    def setUp(self):
        super().setUp()
        self.users = self.path("users")
        write_file(self.users,
                   passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=5000, gid=5000,
                               home="/var/vmail/alice", extra="tag=target userdb_mail=maildir:~/Maildir")
                   + passwd_line("carol", "{PLAIN}" + ALICE_PASSWORD, uid=5002, gid=5002,
                                 home="/home/carol", extra="nologin reason=moved"))
        self.daemon = self.start_daemon(master_user_config(
            self.tmp, [passwd_file_passdb(self.users)], self.write_masters(), self.users))

    def test_existing_target(self):
        for sep in (False, True):
            with self.subTest(separator=sep):
                r = self.master_auth("alice", separator=sep)
                self.assert_ok(r, 1, "alice")
                # The target's passdb fields, never the master's.
                self.assertIn("tag=target", r)
                self.assertNotIn("tag=master", r)

    def test_unknown_target(self):
        for sep in (False, True):
            with self.subTest(separator=sep):
                self.assert_authz_fail(self.master_auth("nosuchuser", separator=sep), 1, "nosuchuser")
        self.assertRegex(self.daemon.stderr(), r'master user "admin" refused: target "nosuchuser" does not exist')
        self.assertNotRegex(self.daemon.stderr(), r'logs in as "nosuchuser"')

    def test_nologin_target(self):
        self.assert_authz_fail(self.master_auth("carol"), 1, "carol")

    def test_wrong_master_password(self):
        # Whether the target exists is not revealed without the master's password.
        for target in ("alice", "nosuchuser"):
            with self.subTest(target=target):
                r = self.master_auth(target, password=WRONG_PASSWORD)
                self.assert_plain_fail(r, 1)
                self.assertIn(f"user={target}", r)
        # The target's own password does not make anyone a master.
        c = self.connect(self.path("auth"))
        c.auth(2, "PLAIN", resp=b64(plain_payload("alice*admin", ALICE_PASSWORD)))
        self.assert_plain_fail(c.reply_for(2), 2)

    def test_request_names_the_master(self):
        c = AuthClient(self.path("login"))
        self.addCleanup(c.close)
        c.handshake(cpid=31337)
        cookie = dict(l.split("\t", 1) for l in c.server_lines if l.startswith("COOKIE"))["COOKIE"]
        ok = self.master_auth("alice", req_id=7, client=c)
        self.assertEqual(ok[:2], ["OK", "7"], ok)
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("REQUEST", "1", "31337", "7", cookie)
        r = m.reply_for(1)
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)
        f = fields_dict(r)
        self.assertEqual(f.get("master_user"), "admin", r)
        self.assertEqual(f.get("auth_user"), "admin", r)
        # The target's userdb: its passwd-file fields and prefetched userdb_*;
        # the master's userdb_home never.
        self.assertEqual(f.get("home"), "/var/vmail/alice", r)
        self.assertEqual(f.get("uid"), "5000", r)
        self.assertEqual(f.get("mail"), "maildir:~/Maildir", r)
        # An ordinary login carries no master fields.
        c.auth(8, "PLAIN", "lip=127.0.0.1", resp=b64(plain_payload("alice", ALICE_PASSWORD)), service="imap")
        self.assertEqual(c.reply_for(8)[:2], ["OK", "8"])
        m.send_line("REQUEST", "2", "31337", "8", cookie)
        r = m.reply_for(2)
        self.assertEqual(r[:3], ["USER", "2", "alice"], r)
        self.assertNotIn("master_user", fields_dict(r))

    @unittest.skipUnless(DOVEADM, "doveadm not installed (dovecot-core)")
    def test_doveadm_auth_test_master(self):
        def run(user, password):
            return subprocess.run([DOVEADM, "-c", "/dev/null", "auth", "test", "-a", self.path("auth"),
                                   "-M", "admin", user, password],
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        ok = run("alice", MASTER_PASSWORD)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        for user, pw in (("nosuchuser", MASTER_PASSWORD), ("carol", MASTER_PASSWORD),
                         ("alice", WRONG_PASSWORD)):
            with self.subTest(user=user):
                bad = run(user, pw)
                self.assertNotEqual(bad.returncode, 0, bad.stdout + bad.stderr)
                self.assertNotIn("auth succeeded", bad.stdout + bad.stderr)

    @unittest.skipUnless(DOVEADM, "doveadm not installed (dovecot-core)")
    def test_doveadm_auth_login_master(self):
        def run(user):
            return subprocess.run([DOVEADM, "-c", "/dev/null", "auth", "login", "-a", self.path("login"),
                                   "-m", self.path("master"), user, MASTER_PASSWORD],
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        ok = run("alice*admin")
        out = ok.stdout + ok.stderr
        self.assertEqual(ok.returncode, 0, out)
        self.assertRegex(out, r"(?m)^\s*master_user=admin$", out)
        self.assertRegex(out, r"(?m)^\s*auth_user=admin$", out)
        self.assertRegex(out, r"(?m)^\s*home=/var/vmail/alice$", out)
        bad = run("nosuchuser*admin")
        self.assertNotEqual(bad.returncode, 0, bad.stdout + bad.stderr)


@require_binaries
class TargetLookupFailureTest(MasterUserCase):

    def test_temp_failing_target_lookup(self):
        # The users file cannot be read: the target lookup temp-fails, which
        # must never turn into an OK (nor into a plain "wrong password").
        users = self.path("missing-users")
        self.start_daemon(master_user_config(self.tmp, [passwd_file_passdb(users)], self.write_masters()))
        r = self.master_auth("alice")
        self.assert_fail(r, 1)
        self.assertIn("code=temp_fail", r)

    def test_pam_only_chain_refuses_master_logins(self):
        body = 'driver = "pam"\nservice = "postern-test-none"\nworkers = 1\ntimeout = 3'
        d = self.start_daemon(master_user_config(self.tmp, [body], self.write_masters()))
        self.assertEqual(len(re.findall(r"master-user logins will be refused", d.stderr())), 1, d.stderr())
        for i in (1, 2):
            self.assert_authz_fail(self.master_auth("alice", req_id=i), i, "alice")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(re.findall(r"no passdb can look up the target", d.stderr())) < 2:
            time.sleep(0.05)
        self.assertEqual(len(re.findall(r"no passdb can look up the target", d.stderr())), 2, d.stderr())


@require_binaries
@unittest.skipUnless(SASLPASSWD2, "saslpasswd2 not installed (package sasl2-bin)")
class SasldbTargetTest(MasterUserCase):

    def setUp(self):
        super().setUp()
        self.db = self.path("sasldb2")
        saslpasswd2(self.db, "alice", ALICE_PASSWORD, realm="example.com")
        os.chmod(self.db, 0o644)
        body = f'driver = "sasldb"\npath = {toml_str(self.db)}\ndefault_realm = "example.com"'
        self.daemon = self.start_daemon(master_user_config(self.tmp, [body], self.write_masters()))

    def test_targets(self):
        self.assert_ok(self.master_auth("alice@example.com"), 1, "alice@example.com")
        self.assert_ok(self.master_auth("alice@example.com", separator=True), 1, "alice@example.com")
        self.assert_authz_fail(self.master_auth("bob@example.com"), 1, "bob@example.com")
        self.assert_plain_fail(self.master_auth("alice@example.com", password=WRONG_PASSWORD), 1)
        # A broken database: temporary failure, never OK.
        os.unlink(self.db)
        write_file(self.db, "not a database\n", 0o644)
        r = self.master_auth("alice@example.com")
        self.assert_fail(r, 1)
        self.assertIn("code=temp_fail", r)


@require_binaries
class LoginCpidTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=5000, gid=5000,
                                      home="/var/vmail/alice"))
        lines = ["[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0", "",
                 "[penalty]", "enabled = false", ""]
        lines += listener(self.path("login"), "login") + listener(self.path("master"), "master", "0600")
        lines += ["[[passdb]]", passwd_file_passdb(users), "", "[[userdb]]", passwd_file_passdb(users), ""]
        self.daemon = self.start_daemon("\n".join(lines))

    def login_client(self, cpid):
        c = AuthClient(self.path("login"))
        self.addCleanup(c.close)
        c.handshake(cpid=cpid)
        c.cookie = dict(l.split("\t", 1) for l in c.server_lines if l.startswith("COOKIE"))["COOKIE"]
        return c

    def login(self, c, req_id):
        c.auth(req_id, "PLAIN", "lip=127.0.0.1", resp=b64(plain_payload("alice", ALICE_PASSWORD)),
               service="imap")
        r = c.reply_for(req_id)
        self.assertEqual(r[:2], ["OK", str(req_id)], r)

    def request(self, req_id, cpid, auth_id, cookie):
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("REQUEST", str(req_id), str(cpid), str(auth_id), cookie)
        return m.reply_for(req_id)

    def test_duplicate_cpid_refused_and_first_untouched(self):
        first = self.login_client(4242)
        self.login(first, 1)
        # A second connection claiming the same pid is closed at once...
        intruder = AuthClient(self.path("login"))
        self.addCleanup(intruder.close)
        intruder.read_handshake()
        intruder.send_line("VERSION", "1", "2")
        intruder.send_line("CPID", "4242")
        intruder.send_line("AUTH", "1", "PLAIN", "service=imap",
                           "resp=" + b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assertTrue(intruder.wait_closed(), "a second connection with a live CPID was accepted")
        self.assertFalse([l for l in intruder.lines_before_close if l.startswith("OK")],
                         intruder.lines_before_close)
        log = self.daemon.stderr()
        m = re.search(r"auth-client (\S+): CPID 4242 is already in use by connection (\S+)", log)
        self.assertTrue(m, log)
        self.assertNotEqual(m.group(1), m.group(2))
        # ...and the first one's login is still redeemable, as are new ones.
        self.assertEqual(self.request(1, 4242, 1, first.cookie)[:3], ["USER", "1", "alice"])
        self.login(first, 2)
        self.assertEqual(self.request(2, 4242, 2, first.cookie)[:3], ["USER", "2", "alice"])

    def test_cpid_free_again_after_close(self):
        first = self.login_client(4343)
        self.login(first, 1)
        first.close()
        # The server notices the close; then the pid may be used again.
        deadline = time.monotonic() + 5
        while True:
            again = AuthClient(self.path("login"))
            self.addCleanup(again.close)
            again.handshake(cpid=4343)
            again.auth(5, "PLAIN", "lip=127.0.0.1", resp=b64(plain_payload("alice", ALICE_PASSWORD)),
                       service="imap")
            try:
                r = again.reply_for(5, timeout=2)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(r[:2], ["OK", "5"], r)
        cookie = dict(l.split("\t", 1) for l in again.server_lines if l.startswith("COOKIE"))["COOKIE"]
        self.assertEqual(self.request(1, 4343, 5, cookie)[:3], ["USER", "1", "alice"])

    def test_distinct_cpids_independent(self):
        a = self.login_client(5001)
        b = self.login_client(5002)
        self.login(a, 1)
        self.login(b, 1)
        self.assertEqual(self.request(1, 5001, 1, a.cookie)[:3], ["USER", "1", "alice"])
        self.assertEqual(self.request(2, 5002, 1, b.cookie)[:3], ["USER", "2", "alice"])


if __name__ == "__main__":
    unittest.main()
