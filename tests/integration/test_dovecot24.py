# Dovecot 2.4 clients against posternd: the 2.4.1 doveadm and a private 2.4.1
# IMAP server (imap-login + imap) from the Debian 13 root that
# tests/dovecot24_root.sh builds and caches. posternd runs on the host with its
# sockets inside the root; 2.4 sends protocol= where 2.3 sent service=,
# VERSION 1 3 on both sockets. Skips, saying why, only when the root is not
# there (no Debian mirror to build it from, or not root).

import base64
import hmac
import imaplib
import os
import re
import socket
import subprocess
import time
import unittest

import dovecot24_support as d24
from dovecot_support import DovecotProcess
from harness import (ALICE_PASSWORD, AuthClient, Closed, WRONG_PASSWORD, DaemonTestCase, ScramClient, bob_password, bob_hash,
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


# ---- Differential check: Dovecot 2.4.1's own auth service and posternd ----

DIFF_USERS = {"alice": ALICE_PASSWORD, "carol": "D24-Carol-Pa55-93fd"}
register_secret(DIFF_USERS["carol"])
DIFF_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")


def dovecot24_auth_conf(tmp, users, socket_path):
    """Dovecot 2.4's auth service alone on a client socket, on the same
    passwd-file and mechanisms as posternd; no failure delay, no penalty."""
    t = d24.inside(tmp)
    return f"""dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = {t}/dovecot-run
state_dir = {t}/dovecot-state
log_path = {t}/dovecot.log
protocols =
auth_mechanisms = {" ".join(m.lower() for m in DIFF_MECHS)}
auth_allow_cleartext = yes
auth_allow_weak_schemes = yes
auth_failure_delay = 0
passdb users {{
  driver = passwd-file
  passwd_file_path = {d24.inside(users)}
}}
userdb users {{
  driver = passwd-file
  passwd_file_path = {d24.inside(users)}
}}
service auth {{
  unix_listener diff-auth {{
    path = {d24.inside(socket_path)}
    mode = 0666
    type = auth
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def plain(user, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def b64s(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64s(text):
    return base64.b64decode(text).decode("utf-8", "replace")


class Conversation:
    """The same requests to one server; every reply line kept, challenges
    (random per server) replaced by their kind."""

    def __init__(self, client):
        self.c = client
        self.lines = []
        self.next_id = 1

    def send(self, *fields):
        self.c.send_line(*fields)

    def reply(self, rid, timeout=15):
        try:
            fields = self.c.reply_for(rid, timeout=timeout)
        except Closed:
            fields = ["<connection closed>"]
        except socket.timeout:
            fields = ["<no answer>"]
        self.lines.append(fields)
        return fields

    def new_id(self):
        rid = self.next_id
        self.next_id += 1
        return rid

    def auth(self, mech, *params, resp=None):
        rid = self.new_id()
        f = ["AUTH", str(rid), mech, "protocol=imap", "final-resp-ok", *params]
        if resp is not None:
            f.append(f"resp={resp}")
        self.send(*f)
        return rid

    def plain(self, user, password, authzid=""):
        rid = self.auth("PLAIN", resp=plain(user, password, authzid))
        self.reply(rid)

    def login(self, user, password):
        rid = self.auth("LOGIN")
        for answer in (user, password):
            r = self.reply(rid)
            if r[0] != "CONT":
                return
            self.send("CONT", str(rid), b64s(answer))
        self.reply(rid)

    def cram_md5(self, user, password):
        rid = self.auth("CRAM-MD5")
        r = self.reply(rid)
        if r[0] != "CONT":
            return
        challenge = base64.b64decode(r[2])
        self.lines[-1] = ["CONT", str(rid), "<challenge>"]
        digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
        self.send("CONT", str(rid), b64s(f"{user} {digest}"))
        self.reply(rid)

    def scram(self, mech, user, password):
        sc = ScramClient(mech, user, password)
        rid = self.auth(mech, resp=b64s(sc.first()))
        r = self.reply(rid)
        if r[0] != "CONT":
            return
        self.lines[-1] = ["CONT", str(rid), "<server-first>"]
        self.send("CONT", str(rid), b64s(sc.final(unb64s(r[2]))))
        r = self.reply(rid)
        if r[0] == "OK":
            # final-resp-ok: the server signature comes in the OK line.
            self.lines[-1] = [f if not f.startswith("resp=") else
                              ("resp=<good signature>" if unb64s(f[5:]) == sc.expected_v else f) for f in r]
        elif r[0] == "CONT":
            self.lines[-1] = ["CONT", str(rid), "<good signature>" if unb64s(r[2]) == sc.expected_v else r[2]]
            self.send("CONT", str(rid), "")
            self.reply(rid)


def scenarios():
    """(name, function of a Conversation); the same list for both servers."""
    out = []
    for user, pw in DIFF_USERS.items():
        out.append((f"PLAIN {user} right", lambda cv, u=user, p=pw: cv.plain(u, p)))
    out += [
        ("PLAIN wrong password", lambda cv: cv.plain("alice", WRONG_PASSWORD)),
        ("PLAIN unknown user", lambda cv: cv.plain("nosuchuser", WRONG_PASSWORD)),
        ("PLAIN upper-case name", lambda cv: cv.plain("ALICE", ALICE_PASSWORD)),
        ("PLAIN authzid of another user", lambda cv: cv.plain("alice", ALICE_PASSWORD, authzid="carol")),
        ("PLAIN authzid = authcid", lambda cv: cv.plain("alice", ALICE_PASSWORD, authzid="alice")),
        ("PLAIN no NUL in payload", lambda cv: cv.reply(cv.auth("PLAIN", resp=b64s("alice")))),
        ("PLAIN invalid base64", lambda cv: cv.reply(cv.auth("PLAIN", resp="!!!"))),
        ("PLAIN empty initial response", lambda cv: cv.reply(cv.auth("PLAIN", resp=""))),
        ("LOGIN right", lambda cv: cv.login("alice", ALICE_PASSWORD)),
        ("LOGIN wrong", lambda cv: cv.login("alice", WRONG_PASSWORD)),
        ("CRAM-MD5 right", lambda cv: cv.cram_md5("alice", ALICE_PASSWORD)),
        ("CRAM-MD5 wrong", lambda cv: cv.cram_md5("alice", WRONG_PASSWORD)),
        ("CRAM-MD5 unknown", lambda cv: cv.cram_md5("nosuchuser", WRONG_PASSWORD)),
        ("SCRAM-SHA-1 right", lambda cv: cv.scram("SCRAM-SHA-1", "alice", ALICE_PASSWORD)),
        ("SCRAM-SHA-256 right", lambda cv: cv.scram("SCRAM-SHA-256", "carol", DIFF_USERS["carol"])),
        ("SCRAM-SHA-256 wrong", lambda cv: cv.scram("SCRAM-SHA-256", "alice", WRONG_PASSWORD)),
        ("SCRAM-SHA-256 unknown", lambda cv: cv.scram("SCRAM-SHA-256", "nosuchuser", WRONG_PASSWORD)),
        ("unknown mechanism", lambda cv: cv.reply(cv.auth("NO-SUCH-MECH", resp=""))),
    ]
    for name, user in [("star", "a*"), ("filter", "admin)(|(uid=*"), ("quote", "o'brien\"x"),
                       ("percent", "%u%d"), ("long", "x" * 300), ("utf-8", "j\u00f6rg"), ("space", "a b")]:
        out.append((f"hostile name: {name}", lambda cv, u=user: cv.plain(u, WRONG_PASSWORD)))
    out.append(("CANCEL of a pending LOGIN", lambda cv: cancel_pending(cv)))
    out.append(("CANCEL of an unknown id", lambda cv: (cv.send("CANCEL", "999"), cv.reply(999, timeout=2))))
    return out


def cancel_pending(cv):
    rid = cv.auth("LOGIN")
    cv.reply(rid)
    cv.send("CANCEL", str(rid))
    cv.reply(rid, timeout=2)


# Every difference the comparison finds, each with why postern answers as it
# does; the test fails on any other difference (or if one of these goes away).
USERNAME_CHARS_WHY = ("Dovecot refuses the name with its auth_username_chars check before any lookup and "
                      "adds original_user= (equal to user=) to the FAIL; postern has no character list by "
                      "default (each backend escapes names itself), looks the name up and fails it as unknown")
KNOWN_DIFFERENCES = {
    "SCRAM-SHA-256 unknown": {
        "why": "Dovecot fails SCRAM at once for an unknown user, which tells the client the name does not "
               "exist; postern goes on with a made-up salt and fails at the proof, as for a wrong password",
        "answers": {"dovecot": [["FAIL", "user=nosuchuser"]],
                    "postern": [["CONT", "<server-first>"], ["FAIL", "user=nosuchuser"]]},
    },
    "unknown mechanism": {
        "why": "Dovecot treats it as a client bug and closes the connection; postern answers FAIL with "
               "code=auth_mech_invalid and keeps the connection (a 2.4 client never asks for a mechanism "
               "that was not advertised)",
        "answers": {"dovecot": [["<connection closed>"]],
                    "postern": [["FAIL", "code=auth_mech_invalid", "reason=Unsupported authentication mechanism"]]},
    },
    "hostile name: long": {
        "why": "a 300-byte name is longer than postern takes as a user name (255): the FAIL carries no "
               "user= rather than an echo of the client's input; Dovecot echoes it",
        "answers": {"dovecot": [["FAIL", "user=" + "x" * 300]], "postern": [["FAIL"]]},
    },
    "CANCEL of a pending LOGIN": {
        "why": "CANCELLED for minor-4 clients came with Dovecot 2.4.4 (the root has 2.4.1, whose server "
               "speaks minor 3 and answers nothing); postern answers as 2.4.4 does",
        "answers": {"dovecot": [["CONT", "VXNlcm5hbWU6"], ["<no answer>"]],
                    "postern": [["CONT", "VXNlcm5hbWU6"], ["CANCELLED"]]},
    },
    "CANCEL of an unknown id": {
        "why": "as above: Dovecot 2.4.4 confirms every CANCEL of a minor-4 client, known id or not",
        "answers": {"dovecot": [["<no answer>"]], "postern": [["CANCELLED"]]},
    },
    "hostile name: star": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=a*", "user=a*"]], "postern": [["FAIL", "user=a*"]]},
    },
    "hostile name: filter": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=admin)(|(uid=*", "user=admin)(|(uid=*"]], "postern": [["FAIL", "user=admin)(|(uid=*"]]},
    },
    "hostile name: quote": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=o'brien\"x", "user=o'brien\"x"]], "postern": [["FAIL", "user=o'brien\"x"]]},
    },
    "hostile name: percent": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=%u%d", "user=%u%d"]], "postern": [["FAIL", "user=%u%d"]]},
    },
    "hostile name: utf-8": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=j\u00f6rg", "user=j\u00f6rg"]], "postern": [["FAIL", "user=j\u00f6rg"]]},
    },
    "hostile name: space": {
        "why": USERNAME_CHARS_WHY,
        "answers": {"dovecot": [["FAIL", "original_user=a b", "user=a b"]], "postern": [["FAIL", "user=a b"]]},
    },
}


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class Differential24Test(Dovecot24Case):
    """The same requests to Dovecot 2.4.1's auth service and to posternd on
    the same passwd-file, compared field by field (client minor 4)."""

    def setUp(self):
        super().setUp()
        users = self.path("users")
        write_file(users, "".join(passwd_line(u, "{PLAIN}" + p, uid=MAIL_UID, gid=MAIL_UID, home=f"/home/{u}")
                                  for u, p in DIFF_USERS.items()), 0o644)
        self.start_posternd(users, mechanisms=DIFF_MECHS)
        os.makedirs(self.path("dovecot-state"))
        write_file(self.path("dovecot.conf"), dovecot24_auth_conf(self.tmp, users, self.path("dovecot-auth")))
        self.dovecot = ChrootDovecot(self.tmp, self.path("dovecot.conf"), None)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.out = open(self.path("dovecot.stdout"), "ab")
        self.dovecot.proc = subprocess.Popen(["chroot", d24.ROOT, "/usr/sbin/dovecot", "-F", "-c",
                                              d24.inside(self.path("dovecot.conf"))],
                                             stdin=subprocess.DEVNULL, stdout=self.dovecot.out,
                                             stderr=self.dovecot.out, start_new_session=True)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.path("dovecot-auth")):
            if time.monotonic() > deadline or self.dovecot.proc.poll() is not None:
                self.fail(f"Dovecot's auth socket did not appear:\n{self.dovecot.log()}")
            time.sleep(0.05)

    def converse(self, path):
        answers = {}
        for name, run in scenarios():
            # Dovecot 2.4 sends its handshake after the client's VERSION.
            c = AuthClient(path)
            self.addCleanup(c.close)
            c.send_line("VERSION", "1", "4")
            c.send_line("CPID", str(os.getpid()))
            c.read_handshake()
            cv = Conversation(c)
            run(cv)
            answers[name] = [self.normalise(line) for line in cv.lines]
        return answers

    @staticmethod
    def normalise(fields):
        """Reply fields with the request id dropped and named fields sorted."""
        head = fields[:1]
        rest = [f for f in fields[2:]]
        return head + sorted(rest)

    def test_same_answers_as_dovecot_24(self):
        dovecot = self.converse(self.path("dovecot-auth"))
        postern = self.converse(self.path("auth"))
        differences = {name: {"dovecot": dovecot[name], "postern": postern[name]}
                       for name in dovecot if dovecot[name] != postern[name]}
        report = "\n".join(f"{name}:\n  dovecot {d['dovecot']}\n  postern {d['postern']}"
                           for name, d in differences.items())
        print(f"\ndifferential check: {len(dovecot)} conversations, {len(differences)} differ\n{report}")
        self.assertEqual(set(differences), set(KNOWN_DIFFERENCES), report)
        for name, d in differences.items():
            self.assertEqual(d, KNOWN_DIFFERENCES[name]["answers"], f"{name}: {report}")
