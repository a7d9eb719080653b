# The postern command line tool against a running posternd: `auth test` exit
# codes (0 ok, 1 auth failure, 2 temp-fail/protocol/connection) and `pw`.

import unittest

from harness import (ALICE_PASSWORD, PW_CLI_PASSWORD, WRONG_PASSWORD, DaemonTestCase,
                     bob_password, make_config, passwd_line, require_binaries, run_cli,
                     write_file)


@require_binaries
class AuthTestCommandTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def auth_test(self, user, password, *extra, sock=None):
        return run_cli(["auth", "test", sock or self.sock, user, *extra],
                       stdin_text=password + "\n")

    def test_success_plain(self):
        p = self.auth_test("alice", ALICE_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("auth succeeded", p.stdout + p.stderr)

    def test_success_crypt(self):
        p = self.auth_test("bob", bob_password())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_success_login_mech(self):
        p = self.auth_test("alice", ALICE_PASSWORD, "--mech", "LOGIN", "--service", "smtp")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("auth succeeded", p.stdout + p.stderr)

    def test_wrong_password(self):
        p = self.auth_test("alice", WRONG_PASSWORD)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("auth succeeded", p.stdout + p.stderr)

    def test_wrong_password_login_mech(self):
        p = self.auth_test("alice", WRONG_PASSWORD, "--mech", "LOGIN")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)

    def test_unknown_user(self):
        p = self.auth_test("nosuchuser", WRONG_PASSWORD)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)

    def test_no_server(self):
        p = self.auth_test("alice", ALICE_PASSWORD, sock=self.path("no-such-socket"))
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)

    def test_temp_fail(self):
        sock = self.path("auth-missing-db")
        self.start_daemon(make_config(sock, self.path("no-such-users")), name="missingdb")
        p = self.auth_test("alice", ALICE_PASSWORD, sock=sock)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)

    def test_password_not_echoed(self):
        p = self.auth_test("alice", ALICE_PASSWORD)
        self.assertNotIn(ALICE_PASSWORD, p.stdout + p.stderr)


@require_binaries
class PwCommandTest(DaemonTestCase):

    def test_hash_verify_and_authenticate(self):
        p = run_cli(["pw", "-s", "SHA512-CRYPT"], stdin_text=PW_CLI_PASSWORD + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        hashed = p.stdout.strip()
        self.assertRegex(hashed, r"^\{SHA512-CRYPT\}\$6\$")
        self.assertNotIn(PW_CLI_PASSWORD, hashed)

        ok = run_cli(["pw", "-t", hashed], stdin_text=PW_CLI_PASSWORD + "\n")
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        bad = run_cli(["pw", "-t", hashed], stdin_text=WRONG_PASSWORD + "\n")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)

        # The hash it printed goes straight into a passwd-file.
        users = self.path("users")
        write_file(users, passwd_line("erin", hashed))
        sock = self.path("auth")
        self.start_daemon(make_config(sock, users))
        c = self.connect(sock)
        c.auth_plain(1, "erin", PW_CLI_PASSWORD)
        self.assert_ok(c.reply(), 1, "erin")

    def test_verify_foreign_crypt_hash(self):
        # A hash made by Python's crypt / doveadm, checked by postern pw -t.
        from harness import bob_hash
        hashed = "{SHA512-CRYPT}" + bob_hash()
        ok = run_cli(["pw", "-t", hashed], stdin_text=bob_password() + "\n")
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        bad = run_cli(["pw", "-t", hashed], stdin_text=WRONG_PASSWORD + "\n")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)

    def test_plain_scheme(self):
        p = run_cli(["pw", "-s", "PLAIN"], stdin_text=PW_CLI_PASSWORD + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "{PLAIN}" + PW_CLI_PASSWORD)


if __name__ == "__main__":
    unittest.main()
