# Dovecot 2.4 clients against posternd: the 2.4.1 doveadm and a private 2.4.1
# IMAP server (imap-login + imap) from the Debian 13 root that
# tests/dovecot24_root.sh builds and caches. posternd runs on the host with its
# sockets inside the root; 2.4 sends protocol= where 2.3 sent service=,
# VERSION 1 3 on both sockets. Skips, saying why, only when the root is not
# there (no Debian mirror to build it from, or not root).

import base64
import imaplib
import os
import re
import subprocess
import unittest

import dovecot24_support as d24
from dovecot_support import DovecotProcess
from harness import (ALICE_PASSWORD, WRONG_PASSWORD, DaemonTestCase, ScramClient, bob_password, bob_hash,
                     free_tcp_port, passwd_line, register_secret, require_binaries, toml_str, write_file)

MISSING = d24.root_missing()
MAIL_UID = 5000
MASTER_PASSWORD = "D24-Master-Pa55-71c2"
EX_NOPERM = 77
ITERATE_USERS = 100_000
register_secret(MASTER_PASSWORD)


def listener(path, role, mode="0666"):
    return ["[[listener]]", 'type = "unix"', f"path = {toml_str(path)}", f"mode = {toml_str(mode)}",
            f"role = {toml_str(role)}", ""]


def posternd_config(tmp, users, masters=None, mechanisms=("PLAIN", "LOGIN"), extra=""):
    mechs = ", ".join(toml_str(m) for m in mechanisms)
    lines = ["[log]", 'level = "debug"', "", "[auth]", f"mechanisms = [{mechs}]", "failure_delay = 0",
             *(['master_user_separator = "*"'] if masters else []), "", "[penalty]", "enabled = false", ""]
    lines += listener(os.path.join(tmp, "auth"), "client")
    lines += listener(os.path.join(tmp, "login"), "login")
    lines += listener(os.path.join(tmp, "master"), "master", "0600")
    lines += ["[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""]
    if masters:
        lines += ["[[master_passdb]]", 'driver = "passwd-file"', f"path = {toml_str(masters)}", ""]
    lines += ["[[userdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""]
    return "\n".join(lines) + extra


class Dovecot24Case(DaemonTestCase):
    tmp_parent = None if MISSING else d24.tmp_parent()

    def start_posternd(self, users, **kw):
        self.daemon = self.start_daemon(posternd_config(self.tmp, users, **kw))
        self.conf = d24.minimal_conf(self.tmp)
        self.sock = {name: d24.inside(self.path(name)) for name in ("auth", "login", "master")}

    def doveadm(self, *args, timeout=120):
        return d24.run("doveadm", "-c", self.conf, *args, timeout=timeout)


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class Doveadm24Test(Dovecot24Case):

    def setUp(self):
        super().setUp()
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home="/home/alice", extra="userdb_mail=maildir:~/Maildir")
                   + passwd_line("bob", "{SHA512-CRYPT}" + bob_hash(), uid=MAIL_UID + 1, gid=MAIL_UID + 1,
                                 home="/home/bob"))
        self.start_posternd(users, extra="\n[cache]\nenabled = true\nttl = 60\n")

    def test_version_is_2_4(self):
        self.assertTrue(d24.version().startswith("2.4."), d24.version())

    def test_auth_test(self):
        ok = self.doveadm("auth", "test", "-a", self.sock["auth"], "alice", ALICE_PASSWORD)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("passdb: alice auth succeeded", ok.stdout)
        crypt = self.doveadm("auth", "test", "-a", self.sock["auth"], "bob", bob_password())
        self.assertEqual(crypt.returncode, 0, crypt.stdout + crypt.stderr)
        wrong = self.doveadm("auth", "test", "-a", self.sock["auth"], "alice", WRONG_PASSWORD)
        unknown = self.doveadm("auth", "test", "-a", self.sock["auth"], "nosuchuser", WRONG_PASSWORD)
        for r, user in ((wrong, "alice"), (unknown, "nosuchuser")):
            self.assertEqual(r.returncode, EX_NOPERM, r.stdout + r.stderr)
            self.assertIn(f"passdb: {user} auth failed", r.stdout)
        # Unknown user and wrong password look the same.
        self.assertEqual(wrong.stdout.replace("alice", "U"), unknown.stdout.replace("nosuchuser", "U"))
        log = self.daemon.stderr()
        self.assertIn('result=ok user="alice" service=doveadm', log)
        self.assertIn('result=fail user="alice" service=doveadm', log)

    def test_auth_test_with_fields(self):
        r = self.doveadm("auth", "test", "-x", "protocol=imap", "-x", "rip=192.0.2.9", "-a", self.sock["auth"],
                         "alice", ALICE_PASSWORD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(self.daemon.stderr(), r'result=ok user="alice" service=(imap|doveadm) rip=192\.0\.2\.9')

    def test_auth_login_hands_over_through_request(self):
        r = self.doveadm("auth", "login", "-a", self.sock["login"], "-m", self.sock["master"], "alice",
                         ALICE_PASSWORD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("passdb: alice auth succeeded", r.stdout)
        self.assertIn("userdb user: alice", r.stdout)
        self.assertIn(f"uid={MAIL_UID}", r.stdout)
        self.assertIn("home=/home/alice", r.stdout)
        self.assertIn("handed over", self.daemon.stderr())

    def test_auth_lookup(self):
        r = self.doveadm("auth", "lookup", "-a", self.sock["master"], "alice")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"passdb: alice\n\s+user\s*: alice")
        missing = self.doveadm("auth", "lookup", "-a", self.sock["master"], "nosuchuser")
        self.assertNotEqual(missing.returncode, 0, missing.stdout)

    def test_user_one_and_mask(self):
        r = self.doveadm("user", "-a", self.sock["master"], "alice")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        fields = dict(line.split("\t", 1) for line in r.stdout.splitlines()[1:] if "\t" in line)
        self.assertEqual(fields.get("uid"), str(MAIL_UID), r.stdout)
        self.assertEqual(fields.get("home"), "/home/alice", r.stdout)
        mask = self.doveadm("user", "-a", self.sock["master"], "al*")
        self.assertEqual(mask.returncode, 0, mask.stdout + mask.stderr)
        self.assertEqual(mask.stdout.split(), ["alice"])
        unknown = self.doveadm("user", "-a", self.sock["master"], "nosuchuser")
        self.assertNotEqual(unknown.returncode, 0, unknown.stdout)

    def test_cache_flush(self):
        self.assertEqual(self.doveadm("auth", "test", "-a", self.sock["auth"], "alice", ALICE_PASSWORD).returncode, 0)
        r = self.doveadm("auth", "cache", "flush", "-a", self.sock["master"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        flushed = re.search(r"(\d+) cache entries flushed", r.stdout + r.stderr)
        self.assertIsNotNone(flushed, r.stdout + r.stderr)
        self.assertGreaterEqual(int(flushed.group(1)), 1)


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class Iterate24Test(Dovecot24Case):

    def test_iterate_100000_users(self):
        users = self.path("users")
        with open(users, "w") as f:
            for i in range(ITERATE_USERS):
                f.write(f"u{i:06d}@example.com:{{PLAIN}}x:{MAIL_UID}:{MAIL_UID}::/home/u{i}::\n")
        self.start_posternd(users)
        r = self.doveadm("user", "-a", self.sock["master"], "*", timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        names = r.stdout.split()
        self.assertEqual(len(names), ITERATE_USERS)
        self.assertEqual(len(set(names)), ITERATE_USERS)
        self.assertEqual(names[0], "u000000@example.com")


CONTRIB_CONF = os.path.join(d24.REPO_ROOT, "contrib", "dovecot", "dovecot-2.4.conf")


def dovecot24_conf(tmp, port, login, master):
    """contrib/dovecot/dovecot-2.4.conf with the test's paths (as seen from
    inside the root), plus what a private instance needs (its own base_dir,
    log and loopback port, the two version settings)."""
    t = d24.inside(tmp)
    with open(CONTRIB_CONF) as f:
        contrib = f.read()
    for needed in ("/run/postern/login", "/run/postern/master", "/etc/dovecot/empty-users",
                   "service imap-login {"):
        if needed not in contrib:
            raise AssertionError(f"contrib/dovecot/dovecot-2.4.conf lacks {needed}")
    contrib = (contrib.replace("/run/postern/login", login)
               .replace("/run/postern/master", master)
               .replace("/etc/dovecot/empty-users", f"{t}/dovecot-empty-users")
               .replace("service imap-login {", "service imap-login {\n"
                        f"  inet_listener imap {{\n    port = {port}\n  }}\n"
                        "  inet_listener imaps {\n    port = 0\n  }"))
    return f"""dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = {t}/dovecot-run
state_dir = {t}/dovecot-state
protocols = imap
listen = 127.0.0.1
log_path = {t}/dovecot.log
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain
mail_driver = maildir
mail_path = ~/Maildir
first_valid_uid = 1000
default_login_user = dovenull
default_internal_user = dovecot
# --- from contrib/dovecot/dovecot-2.4.conf ---
""" + contrib


class ChrootDovecot(DovecotProcess):
    """dovecot -F from the root (its log and output in the test's temp dir)."""

    def start(self):
        self.out = open(os.path.join(self.base, "dovecot.stdout"), "ab")
        self.proc = subprocess.Popen(["chroot", d24.ROOT, "/usr/sbin/dovecot", "-F", "-c", d24.inside(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out,
                                     start_new_session=True)
        self.wait_for_greeting()


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class Imap24Test(Dovecot24Case):

    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.tmp, "home", "alice")
        os.makedirs(self.home)
        os.chmod(os.path.join(self.tmp, "home"), 0o755)
        os.chown(self.home, MAIL_UID, MAIL_UID)
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home=d24.inside(self.home)))
        masters = self.path("masters")
        write_file(masters, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD))
        self.start_posternd(users, masters=masters, mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256"))
        os.makedirs(self.path("dovecot-state"))
        write_file(self.path("dovecot-empty-users"), "")
        self.port = free_tcp_port()
        write_file(self.path("dovecot.conf"),
                   dovecot24_conf(self.tmp, self.port, self.sock["login"], self.sock["master"]))
        self.dovecot = ChrootDovecot(self.tmp, self.path("dovecot.conf"), self.port)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.start()

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
        caps = self.imap().capabilities
        for mech in ("AUTH=PLAIN", "AUTH=LOGIN", "AUTH=SCRAM-SHA-256"):
            self.assertIn(mech, caps)

    def test_good_login_runs_with_posternd_userdb(self):
        m = self.imap()
        typ, data = m.login("alice", ALICE_PASSWORD)
        self.assertEqual(typ, "OK", data)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK", data)
        st = os.stat(os.path.join(self.home, "Maildir"))
        self.assertEqual((st.st_uid, st.st_gid), (MAIL_UID, MAIL_UID))
        found = re.search(r"Logged in: user=<alice>.*mpid=(\d+)", self.dovecot.log())
        self.assertIsNotNone(found, self.dovecot.log())
        with open(f"/proc/{found.group(1)}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith(("Uid:", "Gid:"))]
        self.assertEqual(uids, [[str(MAIL_UID)] * 4, [str(MAIL_UID)] * 4])
        log = self.daemon.stderr()
        self.assertIn('result=ok user="alice" service=imap', log)
        self.assertIn("handed over", log)

    def test_wrong_password_and_unknown_user(self):
        for user in ("alice", "nosuchuser"):
            with self.assertRaises(imaplib.IMAP4.error) as cm:
                self.imap().login(user, WRONG_PASSWORD)
            self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        self.assertFalse(os.path.exists(os.path.join(self.home, "Maildir")))

    def test_master_user(self):
        m = self.imap()
        typ, data = m.login("alice*admin", MASTER_PASSWORD)
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertRegex(self.dovecot.log(), r"Logged in: user=<alice>")
        with self.assertRaises(imaplib.IMAP4.error):
            self.imap().login("alice*admin", WRONG_PASSWORD)

    def test_scram_sha_256(self):
        m = self.imap()
        sc = ScramClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD)
        steps = []

        def respond(challenge):
            steps.append(challenge)
            if len(steps) == 1:
                return sc.first().encode()
            if len(steps) == 2:
                return sc.final(challenge.decode()).encode()
            self.assertEqual(challenge.decode(), sc.expected_v)
            return b""

        typ, data = m.authenticate("SCRAM-SHA-256", respond)
        self.assertEqual(typ, "OK", data)
        self.assertIn('result=ok user="alice" service=imap', self.daemon.stderr())


if __name__ == "__main__":
    unittest.main()
