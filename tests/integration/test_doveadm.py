# Dovecot's own client library as a peer: `doveadm auth test -a SOCKET` speaks
# the auth-client protocol (VERSION 1 2, PLAIN, service=doveadm).

import shutil
import subprocess
import unittest

from harness import (ALICE_PASSWORD, WRONG_PASSWORD, DaemonTestCase, bob_password,
                     require_binaries)

DOVEADM = shutil.which("doveadm")
EX_NOPERM = 77


@require_binaries
@unittest.skipUnless(DOVEADM, "doveadm not installed (apt-get install dovecot-core)")
class DoveadmAuthTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def doveadm(self, user, password):
        return subprocess.run([DOVEADM, "-c", "/dev/null", "auth", "test", "-a", self.sock,
                               user, password], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_right_password(self):
        p = self.doveadm("alice", ALICE_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("auth succeeded", p.stdout + p.stderr)

    def test_right_password_crypt(self):
        p = self.doveadm("bob", bob_password())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("auth succeeded", p.stdout + p.stderr)

    def test_uppercase_login_normalised(self):
        p = self.doveadm("Alice", ALICE_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_wrong_password(self):
        p = self.doveadm("alice", WRONG_PASSWORD)
        self.assertEqual(p.returncode, EX_NOPERM, p.stdout + p.stderr)
        self.assertNotIn("auth succeeded", p.stdout + p.stderr)

    def test_unknown_user(self):
        p = self.doveadm("nosuchuser", WRONG_PASSWORD)
        self.assertEqual(p.returncode, EX_NOPERM, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
