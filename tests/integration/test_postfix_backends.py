# Postfix + swaks end to end through posternd's other stores: users in a
# sasldb2 file made by saslpasswd2 and users behind PAM (pam_wrapper +
# pam_matrix), chained in one posternd; plus a Postfix smtpd built with Cyrus
# SASL (smtpd_sasl_type = cyrus, pwcheck_method: saslauthd) talking to
# posternd's saslauthd listener. Reuses the private Postfix of test_postfix.py.

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (ALICE_PASSWORD, NEW_PASSWORD, SASLPASSWD2, SECRETS, WRONG_PASSWORD,
                     free_tcp_port, require_binaries, saslpasswd2, toml_str, write_file)
from pam_support import PamDaemon, pam_missing, write_services
from test_postfix import OPENSSL, SWAKS, PostfixInstance, postfix_missing


def missing():
    return (postfix_missing() or pam_missing() or
            (None if SASLPASSWD2 else "saslpasswd2 not installed (package sasl2-bin)"))


@require_binaries
@unittest.skipIf(missing(), missing() or "")
class PostfixBackendsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-it-pfb-")
        os.chmod(cls.tmp, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        gen = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                              "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                              "-days", "2"], capture_output=True, text=True, timeout=60)
        if gen.returncode != 0:
            raise AssertionError(f"openssl failed: {gen.stderr}")
        cls.cyrus_port = free_tcp_port()
        cls.pf = PostfixInstance(os.path.join(cls.tmp, "postfix"), free_tcp_port(),
                                 free_tcp_port(), cert, key)
        # An extra smtpd using Cyrus SASL's saslauthd client against our listener.
        cls.mux = os.path.join(cls.tmp, "mux")
        # Debian's Postfix reads $config_directory/sasl/<smtpd_sasl_path>.conf.
        sasl_dir = os.path.join(cls.pf.conf, "sasl")
        os.makedirs(sasl_dir, mode=0o755)
        write_file(os.path.join(sasl_dir, "smtpd.conf"),
                   f"pwcheck_method: saslauthd\nsaslauthd_path: {cls.mux}\n"
                   "mech_list: PLAIN LOGIN\n", 0o644)
        with open(os.path.join(cls.pf.conf, "master.cf"), "a", encoding="utf-8") as f:
            f.write(f"127.0.0.1:{cls.cyrus_port} inet n - n - - smtpd\n"
                    "  -o smtpd_sasl_type=cyrus\n"
                    "  -o smtpd_sasl_path=smtpd\n")

        # sasldb2: alice@example.com; PAM: carol (pam_matrix).
        db = os.path.join(cls.tmp, "sasldb2")
        saslpasswd2(db, "alice", ALICE_PASSWORD, realm="example.com")
        os.chmod(db, 0o644)
        matrix = os.path.join(cls.tmp, "matrix")
        write_file(matrix, f"carol:{NEW_PASSWORD}:smtp\n", 0o644)
        svc = os.path.join(cls.tmp, "pam.d")
        write_services(svc, matrix, {"smtp": "matrix"})
        conf = "\n".join([
            "[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0",
            'username_format = "%u"', "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.pf.auth_socket)}",
            'mode = "0666"', 'role = "client"', "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.mux)}",
            'mode = "0666"', 'role = "saslauthd"', "",
            "[[passdb]]", 'driver = "sasldb"', f"path = {toml_str(db)}",
            'default_realm = "example.com"', "",
            "[[passdb]]", 'driver = "pam"', 'service = "%s"', "workers = 2", "timeout = 5", ""])
        cls.daemon = PamDaemon(cls.tmp, conf, svc)
        cls.addClassCleanup(cls.check_daemon_log)
        cls.daemon.start()
        cls.addClassCleanup(cls.stop_postfix)
        cls.pf.start()
        cls.pf.wait_port(cls.cyrus_port)

    @classmethod
    def stop_postfix(cls):
        left = cls.pf.stop()
        if left:
            raise AssertionError(f"Postfix processes still running: {left}")

    @classmethod
    def check_daemon_log(cls):
        cls.daemon.stop()
        text = cls.daemon.stderr()
        for secret in SECRETS:
            if secret in text:
                raise AssertionError(f"password {secret!r} appears in {cls.daemon.log_path}")

    def setUp(self):
        if not self.daemon.alive():
            self.fail(f"posternd died; stderr:\n{self.daemon.stderr()[-3000:]}")

    def auth(self, port, mech, user, password):
        cmd = [SWAKS, "--server", f"127.0.0.1:{port}", "--timeout", "20",
               "--from", "sender@postern-test.invalid", "--helo", "client.postern-test.invalid",
               "--auth", mech, "--auth-user", user, "--auth-password", password,
               "--to", "rcpt@outside.example", "--quit-after", "AUTH"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr

    def assert_reply(self, output, code):
        self.assertRegex(output, rf"(?m)^<[-~*]\*?\s+{code}[ -]",
                         f"{output}\n--- maillog ---\n{self.pf.log()}\n--- posternd ---\n"
                         f"{self.daemon.stderr()[-3000:]}")

    def test_sasldb_user(self):
        port = self.pf.smtp_port
        self.assert_reply(self.auth(port, "PLAIN", "alice@example.com", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth(port, "LOGIN", "alice", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth(port, "PLAIN", "alice", WRONG_PASSWORD), 535)

    def test_pam_user(self):
        port = self.pf.smtp_port
        self.assert_reply(self.auth(port, "PLAIN", "carol", NEW_PASSWORD), 235)
        self.assert_reply(self.auth(port, "LOGIN", "carol", NEW_PASSWORD), 235)
        self.assert_reply(self.auth(port, "PLAIN", "carol", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth(port, "PLAIN", "nosuchuser", WRONG_PASSWORD), 535)

    def test_cyrus_smtpd_through_saslauthd_listener(self):
        port = self.cyrus_port
        self.assert_reply(self.auth(port, "PLAIN", "alice@example.com", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth(port, "LOGIN", "carol", NEW_PASSWORD), 235)
        self.assert_reply(self.auth(port, "PLAIN", "carol", WRONG_PASSWORD), 535)
        self.assertIn("mech=saslauthd", self.daemon.stderr())


if __name__ == "__main__":
    unittest.main()
