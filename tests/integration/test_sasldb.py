# The sasldb passdb against files written by the real saslpasswd2 (sasl2-bin):
# realms, changes seen without a restart, CRAM-MD5-style credential lookups
# through the master socket, and broken files (missing, truncated, not a DB)
# that temp-fail while the next passdb in the chain keeps working.

import os
import shutil
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, BOB_PASSWORD, NEW_PASSWORD, SASLPASSWD2, WRONG_PASSWORD,
                     DaemonTestCase, passwd_line, require_binaries, saslpasswd2, scram_login,
                     toml_str, write_file)

ODD_REALM = "odd realm:%u/\u00e4"


def sasldb_config(sock, sasldb, fallback_users=None, default_realm="example.com"):
    lines = ["[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0",
             'username_format = "%u"', "",
             "[[listener]]", 'type = "unix"', f"path = {toml_str(sock)}", 'mode = "0666"',
             'role = "client"', "",
             "[[passdb]]", 'driver = "sasldb"', f"path = {toml_str(sasldb)}",
             f"default_realm = {toml_str(default_realm)}", ""]
    if fallback_users:
        lines += ["[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(fallback_users)}", ""]
    return "\n".join(lines)


@require_binaries
@unittest.skipUnless(SASLPASSWD2, "saslpasswd2 not installed (package sasl2-bin)")
class SasldbTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.db = self.path("sasldb2")
        saslpasswd2(self.db, "alice", ALICE_PASSWORD, realm="example.com")
        saslpasswd2(self.db, "bob", BOB_PASSWORD, realm=ODD_REALM)
        # The daemon drops to nobody: the file must be readable by it.
        os.chmod(self.db, 0o644)
        self.sock = self.path("auth")

    def auth(self, user, password, req_id=1):
        c = self.connect(self.sock)
        c.auth_plain(req_id, user, password)
        return c.reply()

    def test_users_made_by_saslpasswd2(self):
        self.start_daemon(sasldb_config(self.sock, self.db))
        self.assert_ok(self.auth("alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        # Bare name: the configured default realm.
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assert_fail(self.auth("alice", WRONG_PASSWORD), 1)
        self.assert_fail(self.auth("alice@other.org", ALICE_PASSWORD), 1)
        self.assert_fail(self.auth("nosuch", WRONG_PASSWORD), 1)
        # Realm with spaces, colon, percent, slash and UTF-8.
        self.assert_ok(self.auth("bob@" + ODD_REALM, BOB_PASSWORD), 1, "bob@" + ODD_REALM)

    def test_changes_seen_without_restart(self):
        d = self.start_daemon(sasldb_config(self.sock, self.db))
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        saslpasswd2(self.db, "alice", NEW_PASSWORD, realm="example.com")
        self.assert_fail(self.auth("alice", ALICE_PASSWORD), 1)
        self.assert_ok(self.auth("alice", NEW_PASSWORD), 1, "alice")
        saslpasswd2(self.db, "carol", NEW_PASSWORD, realm="example.com")
        self.assert_ok(self.auth("carol", NEW_PASSWORD), 1, "carol")
        saslpasswd2(self.db, "carol", None, realm="example.com", delete=True)
        self.assert_fail(self.auth("carol", NEW_PASSWORD), 1)
        # Replaced by a new file (new inode), as an admin's mv would do.
        fresh = self.path("sasldb2.new")
        saslpasswd2(fresh, "dave", NEW_PASSWORD, realm="example.com")
        os.chmod(fresh, 0o644)
        os.rename(fresh, self.db)
        self.assert_ok(self.auth("dave", NEW_PASSWORD), 1, "dave")
        self.assert_fail(self.auth("alice", NEW_PASSWORD), 1)
        self.assertTrue(d.alive())

    def test_scram_from_cleartext(self):
        # sasldb stores cleartext: SCRAM keys are derived (PBKDF2) per login,
        # on the hashing pool. In builds with assertions a derivation on the
        # event loop thread aborts the daemon (util/loop_thread.hpp).
        conf = sasldb_config(self.sock, self.db).replace(
            "[auth]\n", '[auth]\nmechanisms = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]\n', 1)
        d = self.start_daemon(conf)
        c = self.connect(self.sock)
        for i, mech in enumerate(("SCRAM-SHA-256", "SCRAM-SHA-1"), 1):
            self.assert_ok(scram_login(c, i, mech, "alice@example.com", ALICE_PASSWORD), i,
                           "alice@example.com")
        self.assert_fail(scram_login(c, 3, "SCRAM-SHA-256", "alice@example.com", WRONG_PASSWORD), 3)
        self.assert_fail(scram_login(c, 4, "SCRAM-SHA-256", "nosuch@example.com", ALICE_PASSWORD), 4)
        self.assertTrue(d.alive())

    def test_master_pass_lookup(self):
        # PASS on a master socket: a lookup without the password.
        master = self.path("master")
        conf = sasldb_config(self.sock, self.db) + "\n".join([
            "", "[[listener]]", 'type = "unix"', f"path = {toml_str(master)}",
            'mode = "0600"', 'role = "master"', ""])
        self.start_daemon(conf)
        from harness import AuthClient
        c = AuthClient(master)
        self.addCleanup(c.close)
        c.readline()
        c.readline()
        c.send_line("VERSION", "1", "1")
        c.send_line("PASS", "1", "alice@example.com", "service=smtp")
        self.assertEqual(c.read_fields()[:3], ["PASS", "1", "user=alice@example.com"])
        c.send_line("PASS", "2", "nosuch@example.com", "service=smtp")
        self.assertEqual(c.read_fields()[:2], ["NOTFOUND", "2"])

    def check_broken(self, make_broken, expect_log):
        fallback = self.path("users")
        write_file(fallback, passwd_line("frank", "{PLAIN}" + ALICE_PASSWORD))
        d = self.start_daemon(sasldb_config(self.sock, self.db, fallback))
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        make_broken()
        fields = self.auth("alice", ALICE_PASSWORD)
        self.assert_fail(fields, 1)
        self.assertIn("code=temp_fail", fields)
        # The next passdb in the chain still authenticates its users.
        self.assert_ok(self.auth("frank", ALICE_PASSWORD), 1, "frank")
        log = d.stderr()
        self.assertRegex(log, rf"error: sasldb {self.db}: .*{expect_log}")
        self.assertTrue(d.alive())

    def test_missing_file(self):
        self.check_broken(lambda: os.unlink(self.db), "No such file")

    def test_not_a_database(self):
        def broken():
            os.unlink(self.db)
            write_file(self.db, "alice:{PLAIN}x\n", 0o644)
        self.check_broken(broken, "not a sasldb2")

    def test_truncated_file(self):
        def broken():
            for i in range(30):
                saslpasswd2(self.db, f"user{i}", "x" * 40, realm="example.com")
            os.truncate(self.db, 100)
        self.check_broken(broken, "sasldb2|read failed|cannot open")

    def test_recovers_when_the_file_comes_back(self):
        self.start_daemon(sasldb_config(self.sock, self.db))
        saved = self.path("saved")
        os.rename(self.db, saved)
        self.assertIn("code=temp_fail", self.auth("alice", ALICE_PASSWORD))
        os.rename(saved, self.db)
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")


if __name__ == "__main__":
    unittest.main()


SASLDBLISTUSERS2 = shutil.which("sasldblistusers2") or (
    "/usr/sbin/sasldblistusers2" if os.path.exists("/usr/sbin/sasldblistusers2") else None)


@require_binaries
@unittest.skipUnless(SASLPASSWD2 and SASLDBLISTUSERS2, "saslpasswd2/sasldblistusers2 not installed (package sasl2-bin)")
class SasldbUserCommandsTest(DaemonTestCase):
    """postern user on a sasldb2 file: the result is what the Cyrus tools and the daemon see."""

    def setUp(self):
        super().setUp()
        self.db = self.path("sasldb2")
        saslpasswd2(self.db, "made-by-cyrus", ALICE_PASSWORD, realm="example.com")
        os.chmod(self.db, 0o644)
        self.sock = self.path("auth")
        self.conf = self.path("postern.conf")
        write_file(self.conf, sasldb_config(self.sock, self.db))

    def user(self, *args, password=None):
        from harness import run_cli
        return run_cli(["user", *args, "-c", self.conf],
                       stdin_text=None if password is None else password + "\n")

    def listed(self):
        p = subprocess.run([SASLDBLISTUSERS2, "-f", self.db], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return sorted(line.split(":")[0].strip() for line in p.stdout.splitlines() if line.strip())

    def test_add_passwd_list_del(self):
        self.start_daemon(sasldb_config(self.sock, self.db))
        p = self.user("add", "carol@example.com", password=NEW_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.listed(), ["carol@example.com", "made-by-cyrus@example.com"])
        c = self.connect(self.sock)
        c.auth_plain(1, "carol@example.com", NEW_PASSWORD)
        self.assert_ok(c.reply(), 1, "carol@example.com")

        lst = self.user("list")
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertIn("made-by-cyrus@example.com", lst.stdout)
        self.assertIn("carol@example.com", lst.stdout)

        p = self.user("passwd", "made-by-cyrus@example.com", password=WRONG_PASSWORD + "-new")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c.auth_plain(2, "made-by-cyrus@example.com", WRONG_PASSWORD + "-new")
        self.assert_ok(c.reply(), 2, "made-by-cyrus@example.com")
        c.auth_plain(3, "made-by-cyrus@example.com", ALICE_PASSWORD)
        self.assert_fail(c.reply(), 3)

        # A hashed scheme cannot be kept in a sasldb2 (cleartext only).
        p = self.user("add", "dave@example.com", "-s", "SHA512-CRYPT", password=NEW_PASSWORD)
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)

        p = self.user("del", "carol@example.com")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.listed(), ["made-by-cyrus@example.com"])
        p = self.user("del", "carol@example.com")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        # saslpasswd2 can still work on the file postern wrote.
        saslpasswd2(self.db, "erin", NEW_PASSWORD, realm="example.com")
        self.assertIn("erin@example.com", self.listed())
