# Real Postfix smtpd authenticating through posternd, driven by swaks: the
# private instance of postfix_support.py, built from contrib/postfix/main.cf
# and master.cf, so the snippets admins copy are exercised as written.

import os
import re
import time
import unittest

from harness import (ALICE_PASSWORD, MASTER_PASSWORD, WRONG_PASSWORD, bob_hash, bob_password,
                     make_config, passwd_line, toml_str, write_file)
from postfix_support import PostfixTestCase
# For modules not yet moved to postfix_support (they import these from here).
from postfix_support import OPENSSL, SWAKS, PostfixInstance, postfix_missing  # noqa: F401


class PostfixTest(PostfixTestCase):
    """The contrib smtpd and submission entries against one posternd with a
    passwd-file (alice, bob) and a master passdb (admin)."""

    @classmethod
    def daemon_config(cls):
        users = os.path.join(cls.tmp, "users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("bob", "{SHA512-CRYPT}" + bob_hash()))
        masters = os.path.join(cls.tmp, "masters")
        write_file(masters, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD))
        config = make_config(cls.pf.auth_socket, users,
                             extra=f'[[master_passdb]]\ndriver = "passwd-file"\npath = {toml_str(masters)}\n')
        return config.replace("[auth]\n", '[auth]\nmaster_user_separator = "*"\n', 1)

    def test_ehlo_offers_plain_and_login(self):
        out = self.swaks(self.pf.smtp_port, "--to", "rcpt@outside.example",
                         "--quit-after", "EHLO")
        self.assertRegex(out, r"250[- ]AUTH( \w+)*")
        auth_line = re.search(r"250[- ]AUTH ([^\r\n]*)", out).group(1).split()
        self.assertIn("PLAIN", auth_line)
        self.assertIn("LOGIN", auth_line)

    def test_plain_right_password(self):
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)

    def test_login_right_password(self):
        self.assert_reply(self.auth("LOGIN", "alice", ALICE_PASSWORD), 235)

    def test_crypt_user(self):
        self.assert_reply(self.auth("PLAIN", "bob", bob_password()), 235)

    def test_plain_wrong_password(self):
        self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD), 535)

    def test_login_wrong_password(self):
        self.assert_reply(self.auth("LOGIN", "alice", WRONG_PASSWORD), 535)

    def test_unknown_user(self):
        self.assert_reply(self.auth("PLAIN", "nosuchuser", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("LOGIN", "nosuchuser", WRONG_PASSWORD), 535)

    def test_master_user_targets(self):
        # "target*master" with the master's password: only for targets the
        # passdb knows.
        self.assert_reply(self.auth("PLAIN", "alice*admin", MASTER_PASSWORD), 235)
        self.assert_reply(self.auth("LOGIN", "bob*admin", MASTER_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "nosuchuser*admin", MASTER_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "alice*admin", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "alice*admin", ALICE_PASSWORD), 535)

    def test_relay_without_auth_denied(self):
        out = self.swaks(self.pf.smtp_port, "--to", "rcpt@outside.example",
                         "--quit-after", "RCPT")
        self.assert_reply(out, 554)
        self.assertIn("Relay access denied", out)

    def test_relay_with_auth_accepted(self):
        out = self.swaks(self.pf.smtp_port, "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", ALICE_PASSWORD, "--to", "rcpt@outside.example")
        self.assert_reply(out, 235)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued", f"{out}\n{self.pf.log()}")

    def test_several_auths_on_one_smtpd(self):
        # smtpd keeps one auth connection open across sessions.
        for _ in range(3):
            self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD), 535)
            self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)

    def test_submission_from_contrib(self):
        port = self.pf.submission_port
        self.assertIn("-o smtpd_sasl_type=dovecot", self.pf.submission_args)
        # Without TLS the contrib entry (smtpd_tls_auth_only) offers no AUTH.
        out = self.swaks(port, "--to", "rcpt@outside.example", "--quit-after", "EHLO")
        self.assertNotRegex(out, r"250[- ]AUTH")
        # Over TLS: right password relays, wrong one gets 535.
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD, port, tls=True), 235)
        self.assert_reply(self.auth("LOGIN", "bob", bob_password(), port, tls=True), 235)
        self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD, port, tls=True), 535)
        self.assert_reply(self.auth("LOGIN", "nosuchuser", WRONG_PASSWORD, port, tls=True),
                          535)
        out = self.swaks(port, "--auth", "LOGIN", "--auth-user", "alice", "--auth-password",
                         ALICE_PASSWORD, "--to", "rcpt@outside.example", tls=True)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued", f"{out}\n{self.pf.log()}")
        # Unauthenticated client: rejected by smtpd_client_restrictions.
        out = self.swaks(port, "--to", "rcpt@outside.example", "--quit-after", "RCPT",
                         tls=True)
        self.assert_reply(out, 554)

    def test_postfix_logs_sasl_username(self):
        out = self.swaks(self.pf.smtp_port, "--auth", "PLAIN", "--auth-user", "Alice",
                         "--auth-password", ALICE_PASSWORD, "--to", "rcpt@outside.example")
        self.assert_reply(out, 235)
        deadline = time.monotonic() + 5
        while "sasl_username=alice" not in self.pf.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("sasl_username=alice", self.pf.log())


class PostfixChannelBindingTest(PostfixTestCase):
    """posternd with SCRAM-*-PLUS enabled: Postfix, which cannot supply
    channel binding data, is never offered a -PLUS mechanism (it reads the
    handshake of a client listener, which never lists them)."""

    @classmethod
    def daemon_config(cls):
        users = os.path.join(cls.tmp, "users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        return make_config(cls.pf.auth_socket, users,
                           mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"))

    def test_ehlo_never_lists_plus(self):
        for port in (self.pf.smtp_port, self.pf.submission_port):
            out = self.swaks(port, "--to", "rcpt@outside.example", "--quit-after", "EHLO", tls=True)
            auth_lines = [line.split() for line in re.findall(r"250[- ]AUTH ([^\r\n]*)", out)]
            self.assertTrue(auth_lines, out)
            for auth_line in auth_lines:
                self.assertIn("SCRAM-SHA-256", auth_line, out)
                self.assertFalse([m for m in auth_line if m.endswith("-PLUS")], out)
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)


if __name__ == "__main__":
    unittest.main()
