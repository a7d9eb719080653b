# Postfix + swaks end to end through posternd's other stores: users in a
# sasldb2 file made by saslpasswd2 and users behind PAM (pam_wrapper +
# pam_matrix), chained in one posternd; plus a Postfix smtpd built with Cyrus
# SASL (smtpd_sasl_type = cyrus, pwcheck_method: saslauthd) talking to
# posternd's saslauthd listener (postfix_support.py's private Postfix).

import os
import unittest

from harness import (ALICE_PASSWORD, NEW_PASSWORD, SASLPASSWD2, WRONG_PASSWORD, free_tcp_port,
                     saslpasswd2, toml_str, write_file)
from pam_support import PamDaemon, pam_missing, write_services
from postfix_support import PostfixTestCase, postfix_missing


def missing():
    return (postfix_missing() or pam_missing() or
            (None if SASLPASSWD2 else "saslpasswd2 not installed (package sasl2-bin)"))


@unittest.skipIf(missing(), missing() or "")
class PostfixBackendsTest(PostfixTestCase):
    tmp_prefix = "postern-it-pfb-"

    @classmethod
    def prepare(cls):
        # An extra smtpd using Cyrus SASL's saslauthd client against our listener.
        cls.cyrus_port = free_tcp_port()
        cls.mux = os.path.join(cls.tmp, "mux")
        cls.pf.add_sasl_config("smtpd", f"pwcheck_method: saslauthd\nsaslauthd_path: {cls.mux}\n"
                               "mech_list: PLAIN LOGIN\n")
        cls.pf.add_smtpd(cls.cyrus_port, smtpd_sasl_type="cyrus", smtpd_sasl_path="smtpd")

    @classmethod
    def make_daemons(cls):
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
        return [PamDaemon(cls.tmp, conf, svc)]

    def test_sasldb_user(self):
        port = self.pf.smtp_port
        self.assert_reply(self.auth("PLAIN", "alice@example.com", ALICE_PASSWORD, port), 235)
        self.assert_reply(self.auth("LOGIN", "alice", ALICE_PASSWORD, port), 235)
        self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD, port), 535)

    def test_pam_user(self):
        port = self.pf.smtp_port
        self.assert_reply(self.auth("PLAIN", "carol", NEW_PASSWORD, port), 235)
        self.assert_reply(self.auth("LOGIN", "carol", NEW_PASSWORD, port), 235)
        self.assert_reply(self.auth("PLAIN", "carol", WRONG_PASSWORD, port), 535)
        self.assert_reply(self.auth("PLAIN", "nosuchuser", WRONG_PASSWORD, port), 535)

    def test_cyrus_smtpd_through_saslauthd_listener(self):
        port = self.cyrus_port
        self.assert_reply(self.auth("PLAIN", "alice@example.com", ALICE_PASSWORD, port), 235)
        self.assert_reply(self.auth("LOGIN", "carol", NEW_PASSWORD, port), 235)
        self.assert_reply(self.auth("PLAIN", "carol", WRONG_PASSWORD, port), 535)
        self.assertIn("mech=saslauthd", self.daemon.stderr())


if __name__ == "__main__":
    unittest.main()
