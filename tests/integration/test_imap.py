# A real Dovecot IMAP server using posternd as its auth service: imap-login
# authenticates on posternd's login socket, the imap process fetches the
# login (REQUEST) and the user's uid/gid/home from posternd's master socket.
# Dovecot's own passdb and userdb are an empty passwd-file, so only posternd
# can let anyone in. Driven with Python's imaplib over a loopback port.

import imaplib
import os
import re
import unittest

from dovecot_support import DovecotProcess, dovecot_missing
from harness import (ALICE_PASSWORD, REPO_ROOT, WRONG_PASSWORD, DaemonTestCase, free_tcp_port,
                     passwd_line, require_binaries, toml_str, write_file)

MAIL_UID = 5000   # above Dovecot's first_valid_uid below; no system user needed


CONTRIB_CONF = os.path.join(REPO_ROOT, "contrib", "dovecot", "dovecot.conf")


def dovecot_conf(tmp, port, login_socket, master_socket):
    """contrib/dovecot/dovecot.conf with the test's paths, plus what a
    private instance needs (own base_dir, log, loopback port)."""
    with open(CONTRIB_CONF) as f:
        contrib = f.read()
    for needed in ("/run/postern/login", "/run/postern/master", "/etc/dovecot/empty-users",
                   "service imap-login {"):
        if needed not in contrib:
            raise AssertionError(f"contrib/dovecot/dovecot.conf lacks {needed}")
    contrib = (contrib.replace("/run/postern/login", login_socket)
               .replace("/run/postern/master", master_socket)
               .replace("/etc/dovecot/empty-users", f"{tmp}/dovecot-empty-users")
               .replace("service imap-login {", "service imap-login {\n"
                        f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
                        "  inet_listener imaps {\n    port = 0\n  }"))
    return f"""base_dir = {tmp}/dovecot-run
state_dir = {tmp}/dovecot-state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {tmp}/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1000
default_login_user = dovenull
default_internal_user = dovecot
# --- from contrib/dovecot/dovecot.conf ---
""" + contrib


@require_binaries
@unittest.skipIf(dovecot_missing(), dovecot_missing() or "")
class DovecotImapTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        tmp = self.tmp
        self.home = os.path.join(tmp, "home", "alice")
        os.makedirs(self.home)
        os.chmod(os.path.join(tmp, "home"), 0o755)
        os.chown(self.home, MAIL_UID, MAIL_UID)
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home=self.home, extra="userdb_mail=maildir:~/Maildir"))
        login, master = self.path("pl-login"), self.path("pl-master")
        config = "\n".join([
            "[log]", 'level = "debug"', "[auth]", 'mechanisms = ["PLAIN", "LOGIN"]', "failure_delay = 0", "",
            "[[listener]]", f"path = {toml_str(login)}", 'role = "login"', 'mode = "0666"', "",
            "[[listener]]", f"path = {toml_str(master)}", 'role = "master"', 'mode = "0600"', "",
            "[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", "",
            "[[userdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""])
        self.daemon = self.start_daemon(config)
        os.makedirs(self.path("dovecot-state"))
        write_file(self.path("dovecot-empty-users"), "")
        self.port = free_tcp_port()
        write_file(self.path("dovecot.conf"), dovecot_conf(tmp, self.port, login, master))
        self.dovecot = DovecotProcess(tmp, self.path("dovecot.conf"), self.port)
        # Registered after the base class cleanup, so it runs before it.
        self.addCleanup(self.dovecot.stop)
        self.dovecot.start()

    def dovecot_log(self):
        return self.dovecot.log()

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        self.addCleanup(self.close_imap, m)
        return m

    @staticmethod
    def close_imap(m):
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def test_capabilities_come_from_posternd(self):
        # Dovecot's own auth_mechanisms is "plain" only: LOGIN can only come
        # from posternd's MECH lines on the login socket.
        caps = self.imap().capabilities
        self.assertIn("AUTH=PLAIN", caps)
        self.assertIn("AUTH=LOGIN", caps)

    def test_good_login_gets_posternd_userdb(self):
        m = self.imap()
        typ, data = m.login("alice", ALICE_PASSWORD)
        self.assertEqual(typ, "OK", data)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK", data)
        # The imap process ran as the uid/gid posternd's userdb gave and
        # created the mailbox under that home.
        maildir = os.path.join(self.home, "Maildir")
        st = os.stat(maildir)
        self.assertEqual((st.st_uid, st.st_gid), (MAIL_UID, MAIL_UID))
        self.assertIn("handed over", self.daemon.stderr())
        # The live session's process runs with that uid.
        found = re.search(r"Login: user=<alice>.*mpid=(\d+)", self.dovecot_log())
        self.assertIsNotNone(found, self.dovecot_log())
        with open(f"/proc/{found.group(1)}/status") as f:
            uids = [l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))]
        self.assertEqual(uids, [[str(MAIL_UID)] * 4, [str(MAIL_UID)] * 4])

    def test_authenticate_plain(self):
        m = self.imap()
        payload = f"\0alice\0{ALICE_PASSWORD}".encode()
        typ, data = m.authenticate("PLAIN", lambda _challenge: payload)
        self.assertEqual(typ, "OK", data)

    def test_bad_password(self):
        m = self.imap()
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login("alice", WRONG_PASSWORD)
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        self.assertFalse(os.path.exists(os.path.join(self.home, "Maildir")))

    def test_unknown_user(self):
        m = self.imap()
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login("nosuchuser", WRONG_PASSWORD)
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
