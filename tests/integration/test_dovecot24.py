# Dovecot 2.4 clients against posternd: the 2.4.1 doveadm and a private 2.4.1
# IMAP server (imap-login + imap) from the Debian 13 root that
# tests/dovecot24_root.sh builds and caches. posternd runs on the host with its
# sockets inside the root; 2.4 sends protocol= where 2.3 sent service=,
# VERSION 1 3 on both sockets. Skips, saying why, only when the root is not
# there (no Debian mirror to build it from, or not root).

import base64
import hashlib
import hmac
import imaplib
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

import dovecot24_support as d24
from dovecot_support import DovecotProcess
from harness import (ALICE_PASSWORD, AuthClient, Closed, WRONG_PASSWORD, DaemonTestCase, ScramClient, bob_password, bob_hash,
                     fields_dict, free_tcp_port, passwd_line, plain_payload, register_secret, require_binaries, toml_str,
                     unb64, write_file)

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

    def start_dovecot_auth(self, users, socket_name, mechs=None, socket_type="auth"):
        """Dovecot 2.4.1's auth service from the root, alone on one socket
        (dovecot24_auth_conf), for the differential checks."""
        os.makedirs(self.path("dovecot-state"))
        conf = dovecot24_auth_conf(self.tmp, users, self.path(socket_name), mechs or DIFF_MECHS, socket_type)
        write_file(self.path("dovecot.conf"), conf)
        self.dovecot = ChrootDovecot(self.tmp, self.path("dovecot.conf"), None)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.out = open(self.path("dovecot.stdout"), "ab")
        self.dovecot.proc = subprocess.Popen(["chroot", d24.ROOT, "/usr/sbin/dovecot", "-F", "-c",
                                              d24.inside(self.path("dovecot.conf"))],
                                             stdin=subprocess.DEVNULL, stdout=self.dovecot.out,
                                             stderr=self.dovecot.out, start_new_session=True)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.path(socket_name)):
            if time.monotonic() > deadline or self.dovecot.proc.poll() is not None:
                self.fail(f"Dovecot's {socket_type} socket did not appear:\n{self.dovecot.log()}")
            time.sleep(0.05)

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
        self.home = d24.make_home(self.tmp, "alice", MAIL_UID)
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



# ---- SCRAM-*-PLUS: channel binding as Dovecot 2.4 does it ----
#
# The end client names the binding type in its gs2 header; posternd's CONT
# with the server-first message carries channel_binding=<type>; the login
# process answers with the client-final message and channel_binding=<base64
# data of its own TLS connection>, which must equal what the client put in c=.
# Offered only on login listeners, to clients that said VERSION 1 3 or later.

PLUS_MECHS = ("PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS")


class ScramPlusClient(ScramClient):
    """A SCRAM client whose c= carries channel binding data (cb_data, bytes)
    after the gs2 header; gs2 is "p=<type>,," for -PLUS."""

    def __init__(self, mech, user, password, cb_data=b"", gs2="n,,", nonce="pyclientnonce0123"):
        super().__init__(mech.removesuffix("-PLUS"), user, password, nonce=nonce, gs2=gs2)
        self.cb_data = cb_data

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(self.hashname, self.password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hashname).digest()
        stored = hashlib.new(self.hashname, client_key).digest()
        without = f"c={b64s(self.gs2.encode() + self.cb_data)},r={attrs['r']}"
        auth_message = f"{self.bare},{server_first},{without}".encode()
        sig = hmac.new(stored, auth_message, self.hashname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", self.hashname).digest()
        self.expected_v = "v=" + b64s(hmac.new(server_key, auth_message, self.hashname).digest())
        return f"{without},p={b64s(proof)}"


def mech_names(handshake_lines):
    return [l.split("\t")[1] for l in handshake_lines if l.startswith("MECH\t")]


@require_binaries
class ChannelBindingProtocolTest(DaemonTestCase):
    """SCRAM-*-PLUS over posternd's sockets, spoken as a Dovecot 2.4 login
    process speaks it (lib-auth-client), and who is never offered it."""

    def setUp(self):
        super().setUp()
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        self.daemon = self.start_daemon(posternd_config(self.tmp, users, mechanisms=PLUS_MECHS))
        self.cpid = 7000

    def login_process(self, minor=3):
        """A login process: VERSION and CPID at once, then the handshake."""
        c = AuthClient(self.path("login"))
        self.addCleanup(c.close)
        self.cpid += 1
        c.send_line("VERSION", "1", str(minor))
        c.send_line("CPID", str(self.cpid))
        c.read_handshake()
        return c

    def auth(self, c, rid, mech, first, *params):
        c.send_line("AUTH", str(rid), mech, "protocol=imap", "final-resp-ok", *params, f"resp={b64s(first)}")
        return c.reply_for(rid)

    def plus(self, c, rid, mech="SCRAM-SHA-256-PLUS", cb_type="tls-unique", cb=b"\x01" * 12, sent=None,
             client_cb=None, params=("secured=tls",)):
        """A -PLUS exchange: the login process supplies `sent` (base64 text,
        default the base64 of cb; False: no channel_binding= at all), the
        client binds to client_cb (default cb). Returns the last reply."""
        sc = ScramPlusClient(mech, "alice", ALICE_PASSWORD, cb if client_cb is None else client_cb,
                             gs2=f"p={cb_type},,")
        r = self.auth(c, rid, mech, sc.first(), *params)
        if r[0] != "CONT":
            return r
        self.assertEqual(r[3:], [f"channel_binding={cb_type}"], r)
        extra = [] if sent is False else [f"channel_binding={b64s(cb) if sent is None else sent}"]
        c.send_line("CONT", str(rid), b64s(sc.final(unb64(r[2]).decode())), *extra)
        r = c.reply_for(rid)
        if r[0] == "OK":
            self.assertEqual(fields_dict(r).get("resp"), b64s(sc.expected_v), r)
        return r

    def assert_alive(self, c, rid=99):
        c.send_line("AUTH", str(rid), "PLAIN", "protocol=imap", f"resp={b64s(plain_payload('alice', ALICE_PASSWORD))}")
        self.assertEqual(c.reply_for(rid)[:2], ["OK", str(rid)])

    def test_2_4_login_process_is_offered_plus(self):
        c = self.login_process(minor=3)
        names = mech_names(c.server_lines)
        self.assertEqual(names, list(PLUS_MECHS), c.server_lines)
        self.assertIn("MECH\tSCRAM-SHA-256-PLUS\tmutual-auth\tchannel-binding", c.server_lines)
        self.assertEqual(mech_names(self.login_process(minor=4).server_lines), list(PLUS_MECHS))

    def test_2_3_login_process_never_sees_plus(self):
        c = self.login_process(minor=2)
        self.assertEqual(mech_names(c.server_lines), list(PLUS_MECHS[:4]), c.server_lines)
        r = self.plus(c, 1)
        self.assertEqual(r[:2], ["FAIL", "1"], r)
        self.assertEqual(fields_dict(r).get("code"), "auth_mech_invalid", r)
        self.assert_alive(c)

    def test_postfix_exim_and_client_sockets_never_see_plus(self):
        # Exim reads the whole handshake before it says anything: it comes at once.
        exim = AuthClient(self.path("auth"))
        self.addCleanup(exim.close)
        started = time.monotonic()
        lines = exim.read_handshake()
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertEqual(mech_names(lines), list(PLUS_MECHS[:4]))
        # Postfix sends VERSION 1 0 and CPID first.
        postfix = AuthClient(self.path("auth"))
        self.addCleanup(postfix.close)
        postfix.send_line("VERSION", "1", "0")
        postfix.send_line("CPID", "4242")
        self.assertEqual(mech_names(postfix.read_handshake()), list(PLUS_MECHS[:4]))
        # Even a minor-3 client on a client socket cannot supply the data
        # (only login processes can): no -PLUS, and asking for it fails.
        c = AuthClient(self.path("auth"))
        self.addCleanup(c.close)
        c.send_line("VERSION", "1", "3")
        c.send_line("CPID", "4243")
        self.assertEqual(mech_names(c.read_handshake()), list(PLUS_MECHS[:4]))
        r = self.plus(c, 1)
        self.assertEqual(fields_dict(r).get("code"), "auth_mech_invalid", r)

    def test_client_that_reads_first_on_a_login_socket(self):
        # Not a login process (they all speak first): the handshake comes
        # after the grace, without -PLUS, and the connection works.
        c = AuthClient(self.path("login"))
        self.addCleanup(c.close)
        started = time.monotonic()
        lines = c.read_handshake()
        self.assertGreater(time.monotonic() - started, 0.8)
        self.assertEqual(mech_names(lines), list(PLUS_MECHS[:4]))
        c.send_line("VERSION", "1", "3")
        c.send_line("CPID", "4999")
        self.assert_alive(c)
        self.assertEqual(fields_dict(self.plus(c, 2)).get("code"), "auth_mech_invalid")

    def test_scram_plus_tls_unique_and_tls_exporter(self):
        c = self.login_process()
        r = self.plus(c, 1)
        self.assertEqual(r[:3], ["OK", "1", "user=alice"], r)
        r = self.plus(c, 2, mech="SCRAM-SHA-1-PLUS", cb_type="tls-exporter", cb=bytes(range(32)))
        self.assertEqual(r[:3], ["OK", "2", "user=alice"], r)
        self.assertRegex(self.daemon.stderr(), r'result=ok user="alice" service=imap .*mech=SCRAM-SHA-256-PLUS')
        self.assertRegex(self.daemon.stderr(), r'result=ok user="alice" service=imap .*mech=SCRAM-SHA-1-PLUS')

    def test_wrong_channel_binding_fails(self):
        c = self.login_process()
        # The client bound to another TLS connection than the login process's.
        r = self.plus(c, 1, cb=b"\x01" * 12, client_cb=b"\x02" * 12)
        self.assertEqual(r[:2], ["FAIL", "1"], r)
        self.assertIn("reason=channel_binding", self.daemon.stderr())
        self.assert_alive(c)

    def test_hostile_channel_binding(self):
        c = self.login_process(minor=4)
        cases = [
            ("no channel_binding= on the final CONT", dict(sent=False)),
            ("invalid base64", dict(sent="!!!")),
            ("empty", dict(sent="")),
            ("over-long (65 bytes)", dict(cb=b"x" * 65)),
            ("NUL-free but binary garbage", dict(sent=b64s(b"\xff" * 12))),
            ("an unknown type", dict(cb_type="tls-server-end-point")),
            ("an upper-case type", dict(cb_type="TLS-UNIQUE")),
            ("a huge type", dict(cb_type="t" * 3000)),
        ]
        for rid, (label, kw) in enumerate(cases, start=1):
            with self.subTest(label):
                r = self.plus(c, rid, **kw)
                self.assertEqual(r[:2], ["FAIL", str(rid)], r)
        self.assert_alive(c)
        # A NUL in a line is a protocol violation: the connection closes.
        sc = ScramPlusClient("SCRAM-SHA-256-PLUS", "alice", ALICE_PASSWORD, gs2="p=tls-unique,,")
        r = self.auth(c, 50, "SCRAM-SHA-256-PLUS", sc.first(), "secured=tls")
        self.assertEqual(r[0], "CONT")
        c.send("CONT\t50\t" + b64s(sc.final(unb64(r[2]).decode())) + "\tchannel_binding=AQ\0==\n")
        self.assertTrue(c.wait_closed())
        self.assertTrue(self.daemon.alive())

    def test_channel_binding_where_nobody_asked_for_it(self):
        c = self.login_process()
        # LOGIN and bare SCRAM never ask: data sent anyway fails the request.
        c.send_line("AUTH", "1", "LOGIN", "protocol=imap")
        self.assertEqual(c.reply_for(1)[0], "CONT")
        c.send_line("CONT", "1", b64s("alice"), "channel_binding=" + b64s(b"\x01" * 12))
        r = c.reply_for(1)
        self.assertEqual(r[:2], ["FAIL", "1"], r)
        sc = ScramPlusClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD)
        r = self.auth(c, 2, "SCRAM-SHA-256", sc.first(), "secured=tls")
        self.assertEqual(r[0], "CONT")
        self.assertEqual(len(r), 3, r)  # no channel_binding= asked
        c.send_line("CONT", "2", b64s(sc.final(unb64(r[2]).decode())), "channel_binding=" + b64s(b"\x01" * 12))
        self.assertEqual(c.reply_for(2)[:2], ["FAIL", "2"])
        self.assert_alive(c)

    def test_gs2_flags(self):
        c = self.login_process()

        def bare(rid, gs2, *params, mech="SCRAM-SHA-256"):
            sc = ScramPlusClient(mech, "alice", ALICE_PASSWORD, gs2=gs2)
            r = self.auth(c, rid, mech, sc.first(), *params)
            if r[0] != "CONT":
                return r
            c.send_line("CONT", str(rid), b64s(sc.final(unb64(r[2]).decode())))
            return c.reply_for(rid)

        # p= on a mechanism without -PLUS.
        self.assertEqual(bare(1, "p=tls-unique,,", "secured=tls")[0], "FAIL")
        # -PLUS chosen, but no binding: n or y.
        self.assertEqual(bare(2, "n,,", "secured=tls", mech="SCRAM-SHA-256-PLUS")[0], "FAIL")
        self.assertEqual(bare(3, "y,,", "secured=tls", mech="SCRAM-SHA-256-PLUS")[0], "FAIL")
        # y: the client could bind but saw no -PLUS. Over TLS the login
        # process offered -PLUS, so someone removed it: refused.
        self.assertEqual(bare(4, "y,,", "secured=tls")[0], "FAIL")
        self.assertEqual(bare(5, "y,,", "secured=tls", mech="SCRAM-SHA-1")[0], "FAIL")
        self.assertIn("downgrade", self.daemon.stderr())
        # Without TLS the login process offers no -PLUS: y is honest.
        self.assertEqual(bare(6, "y,,")[0], "OK")
        self.assertEqual(bare(7, "y,,", "secured")[0], "OK")
        # n is always fine on the bare mechanism.
        self.assertEqual(bare(8, "n,,", "secured=tls")[0], "OK")
        # A 2.3 login process never offered -PLUS: y is honest there too.
        c23 = self.login_process(minor=2)
        sc = ScramPlusClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD, gs2="y,,")
        c23.send_line("AUTH", "9", "SCRAM-SHA-256", "service=imap", "secured", f"resp={b64s(sc.first())}")
        r = c23.reply_for(9)
        c23.send_line("CONT", "9", b64s(sc.final(unb64(r[2]).decode())))
        r = c23.reply_for(9)
        self.assertEqual(r[0], "CONT")  # final data as CONT (no final-resp-ok)
        c23.send_line("CONT", "9", "")
        self.assertEqual(c23.reply_for(9)[:2], ["OK", "9"])


def self_signed_cert(directory):
    """A throwaway certificate and key for the private IMAP server."""
    cert, key = os.path.join(directory, "imap-cert.pem"), os.path.join(directory, "imap-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def tls12_context():
    """Python offers only tls-unique, which TLS 1.3 does not define: TLS 1.2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class ImapPlus24Test(Dovecot24Case):
    """SCRAM-SHA-256-PLUS through the real Dovecot 2.4 imap-login over
    STARTTLS (TLS 1.2, tls-unique), posternd checking the binding."""

    def setUp(self):
        super().setUp()
        self.home = d24.make_home(self.tmp, "alice", MAIL_UID)
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home=d24.inside(self.home)))
        self.start_posternd(users, mechanisms=PLUS_MECHS)
        os.makedirs(self.path("dovecot-state"))
        write_file(self.path("dovecot-empty-users"), "")
        cert, key = self_signed_cert(self.tmp)
        self.port = free_tcp_port()
        conf = dovecot24_conf(self.tmp, self.port, self.sock["login"], self.sock["master"])
        conf = conf.replace("ssl = no\n", f"ssl = yes\nssl_server_cert_file = {d24.inside(cert)}\n"
                                          f"ssl_server_key_file = {d24.inside(key)}\n")
        write_file(self.path("dovecot.conf"), conf)
        self.dovecot = ChrootDovecot(self.tmp, self.path("dovecot.conf"), self.port)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.start()

    def imap_tls(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        self.addCleanup(lambda: m.sock.close())  # the TLS socket, after LOGOUT (cleanups run last first)
        self.addCleanup(Imap24Test.close_imap, m)
        self.assertNotIn("AUTH=SCRAM-SHA-256-PLUS", m.capabilities)  # no TLS yet: no binding
        typ, data = m.starttls(ssl_context=tls12_context())
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.sock.version(), "TLSv1.2")
        return m

    def authenticate(self, m, mech, sc):
        steps = []

        def respond(challenge):
            steps.append(challenge)
            if len(steps) == 1:
                return sc.first().encode()
            if len(steps) == 2:
                return sc.final(challenge.decode()).encode()
            self.assertEqual(challenge.decode(), sc.expected_v)
            return b""

        return m.authenticate(mech, respond)

    def test_capabilities_offer_plus_over_tls(self):
        m = self.imap_tls()
        for mech in ("AUTH=SCRAM-SHA-256-PLUS", "AUTH=SCRAM-SHA-1-PLUS", "AUTH=SCRAM-SHA-256"):
            self.assertIn(mech, m.capabilities)

    def test_scram_sha_256_plus_tls_unique(self):
        m = self.imap_tls()
        cb = m.sock.get_channel_binding("tls-unique")
        self.assertEqual(len(cb), 12)
        sc = ScramPlusClient("SCRAM-SHA-256-PLUS", "alice", ALICE_PASSWORD, cb, gs2="p=tls-unique,,")
        typ, data = self.authenticate(m, "SCRAM-SHA-256-PLUS", sc)
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.select("INBOX")[0], "OK")
        log = self.daemon.stderr()
        self.assertIn('result=ok user="alice" service=imap', log)
        self.assertIn("mech=SCRAM-SHA-256-PLUS", log)

    def test_wrong_channel_binding_fails(self):
        m = self.imap_tls()
        cb = bytearray(m.sock.get_channel_binding("tls-unique"))
        cb[0] ^= 0xff  # bound to some other TLS connection
        sc = ScramPlusClient("SCRAM-SHA-256-PLUS", "alice", ALICE_PASSWORD, bytes(cb), gs2="p=tls-unique,,")
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            self.authenticate(m, "SCRAM-SHA-256-PLUS", sc)
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        self.assertIn("reason=channel_binding", self.daemon.stderr())
        self.assertFalse(os.path.exists(os.path.join(self.home, "Maildir")))

    def test_tls_exporter_over_tls_1_2_is_refused_by_imap_login(self):
        # posternd asks imap-login for the type the client named; Dovecot
        # 2.4 computes tls-exporter on TLS 1.2 only with renegotiation off,
        # which it never sets (RFC 9266 §4.2), so imap-login itself fails the
        # login and cancels the request: no OK either way. (Python cannot
        # compute tls-exporter, so TLS 1.3 is not tried here.)
        m = self.imap_tls()
        sc = ScramPlusClient("SCRAM-SHA-256-PLUS", "alice", ALICE_PASSWORD, b"\x00" * 32, gs2="p=tls-exporter,,")
        with self.assertRaises(imaplib.IMAP4.error):
            self.authenticate(m, "SCRAM-SHA-256-PLUS", sc)
        self.assertNotIn("result=ok", self.daemon.stderr())
        self.assertFalse(os.path.exists(os.path.join(self.home, "Maildir")))

    def test_downgrade_to_y_over_tls_is_refused(self):
        m = self.imap_tls()
        sc = ScramPlusClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD, gs2="y,,")
        with self.assertRaises(imaplib.IMAP4.error):
            self.authenticate(m, "SCRAM-SHA-256", sc)
        self.assertIn("downgrade", self.daemon.stderr())
        # The bare mechanism with n still works over TLS.
        m2 = self.imap_tls()
        typ, _ = self.authenticate(m2, "SCRAM-SHA-256", ScramPlusClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD))
        self.assertEqual(typ, "OK")


# ---- Differential check: Dovecot 2.4.1's own auth service and posternd ----

DIFF_USERS = {"alice": ALICE_PASSWORD, "carol": "D24-Carol-Pa55-93fd"}
register_secret(DIFF_USERS["carol"])
DIFF_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")


def dovecot24_auth_conf(tmp, users, socket_path, mechs=DIFF_MECHS, socket_type="auth"):
    """Dovecot 2.4's auth service alone on one socket (type auth, or login
    as a login process sees it), on the same passwd-file and mechanisms as
    posternd; no failure delay, no penalty."""
    t = d24.inside(tmp)
    return f"""dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = {t}/dovecot-run
state_dir = {t}/dovecot-state
log_path = {t}/dovecot.log
protocols =
auth_mechanisms = {" ".join(m.lower() for m in mechs)}
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
    type = {socket_type}
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
        self.start_dovecot_auth(users, "dovecot-auth")

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


# ---- Differential check of SCRAM-*-PLUS: Dovecot 2.4.1's auth on a login
# socket and posternd's login listener, each conversation on a connection of
# its own that speaks as a login process (VERSION first, a CPID of its own).

PLUS_DIFF_MECHS = ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS")
CB = bytes(range(1, 13))  # 12 bytes, as tls-unique of TLS 1.2


def scram_plus_conv(cv, mech, gs2, sent=CB, client_cb=CB, *params):
    """A SCRAM exchange whose client binds to client_cb; the login process
    sends `sent` (bytes; a str is sent as is; None: no channel_binding=)
    only when the server's CONT asked for it."""
    sc = ScramPlusClient(mech, "alice", ALICE_PASSWORD, client_cb if gs2.startswith("p=") else b"", gs2=gs2)
    rid = cv.auth(mech, *params, resp=b64s(sc.first()))
    r = cv.reply(rid)
    if r[0] != "CONT":
        return
    cv.lines[-1] = ["CONT", str(rid), "<server-first>", *r[3:]]
    asked = any(f.startswith("channel_binding=") for f in r[3:])
    extra = []
    if asked and sent is not None:
        extra = [f"channel_binding={sent if isinstance(sent, str) else b64s(sent)}"]
    cv.send("CONT", str(rid), b64s(sc.final(unb64s(r[2]))), *extra)
    r = cv.reply(rid)
    if r[0] == "OK":
        cv.lines[-1] = [f if not f.startswith("resp=") else
                        ("resp=<good signature>" if unb64s(f[5:]) == sc.expected_v else f) for f in r]


def plus_scenarios():
    """(name, client minor, function of a Conversation)."""
    u = "SCRAM-SHA-256-PLUS"
    return [
        ("handshake minor 3", 3, None),
        ("handshake minor 2", 2, None),
        ("-PLUS tls-unique right", 3, lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", CB, CB, "secured=tls")),
        ("SHA-1-PLUS tls-exporter right", 4, lambda cv: scram_plus_conv(cv, "SCRAM-SHA-1-PLUS", "p=tls-exporter,,",
                                                                         bytes(32), bytes(32), "secured=tls")),
        ("-PLUS wrong binding", 3, lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", CB, bytes(12), "secured=tls")),
        ("-PLUS no channel_binding= from the login process", 3,
         lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", None, CB, "secured=tls")),
        ("-PLUS empty channel binding", 3, lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", "", CB, "secured=tls")),
        ("-PLUS invalid base64 channel binding", 3,
         lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", "!!!", CB, "secured=tls")),
        ("-PLUS unknown binding type", 3,
         lambda cv: scram_plus_conv(cv, u, "p=tls-server-end-point,,", CB, CB, "secured=tls")),
        ("-PLUS with gs2 flag n", 3, lambda cv: scram_plus_conv(cv, u, "n,,", CB, CB, "secured=tls")),
        ("bare SCRAM with p=", 3, lambda cv: scram_plus_conv(cv, "SCRAM-SHA-256", "p=tls-unique,,", CB, CB,
                                                             "secured=tls")),
        ("bare SCRAM y over TLS", 3, lambda cv: scram_plus_conv(cv, "SCRAM-SHA-256", "y,,", CB, CB, "secured=tls")),
        ("bare SCRAM y without TLS", 3, lambda cv: scram_plus_conv(cv, "SCRAM-SHA-256", "y,,")),
        ("bare SCRAM n over TLS", 3, lambda cv: scram_plus_conv(cv, "SCRAM-SHA-256", "n,,", CB, CB, "secured=tls")),
        ("-PLUS asked for by a minor-2 client", 2,
         lambda cv: scram_plus_conv(cv, u, "p=tls-unique,,", CB, CB, "secured=tls")),
        ("channel binding on a PLAIN continuation", 3, lambda cv: plain_with_cbind(cv)),
    ]


def plain_with_cbind(cv):
    rid = cv.auth("PLAIN")
    if cv.reply(rid)[0] != "CONT":
        return
    cv.send("CONT", str(rid), plain("alice", ALICE_PASSWORD), f"channel_binding={b64s(CB)}")
    cv.reply(rid)


STRICTER_WHY = ("Dovecot serves any gs2 flag on either mechanism once a -PLUS one is configured (it only refuses "
                "what the binding then fails); postern holds each mechanism to its flag (RFC 5802 §6, RFC 5801 §5): "
                "p= only on -PLUS, n and y only on the bare ones, and only the types a login process can compute")
PLUS_KNOWN_DIFFERENCES = {
    "-PLUS invalid base64 channel binding": {
        "why": "Dovecot decodes what it can of it and fails the binding; postern refuses undecodable base64 as "
               "it does in the data itself (code=invalid_base64, the connection stays)",
        "answers": {"dovecot": [["CONT", "<server-first>", "channel_binding=tls-unique"], ["FAIL", "user=alice"]],
                    "postern": [["CONT", "<server-first>", "channel_binding=tls-unique"],
                                ["FAIL", "code=invalid_base64", "reason=Invalid base64 data in continued response"]]},
    },
    "-PLUS unknown binding type": {
        "why": STRICTER_WHY + "; Dovecot asks the login process, which refuses a type it cannot compute",
        "answers": {"dovecot": [["CONT", "<server-first>", "channel_binding=tls-server-end-point"],
                                ["OK", "resp=<good signature>", "user=alice"]],
                    "postern": [["FAIL"]]},
    },
    "-PLUS with gs2 flag n": {
        "why": STRICTER_WHY,
        "answers": {"dovecot": [["CONT", "<server-first>"], ["OK", "resp=<good signature>", "user=alice"]],
                    "postern": [["FAIL"]]},
    },
    "bare SCRAM with p=": {
        "why": STRICTER_WHY,
        "answers": {"dovecot": [["CONT", "<server-first>", "channel_binding=tls-unique"],
                                ["OK", "resp=<good signature>", "user=alice"]],
                    "postern": [["FAIL"]]},
    },
    "bare SCRAM y without TLS": {
        "why": "Dovecot refuses y whenever a -PLUS mechanism is configured; postern only when the client was "
               "offered -PLUS, which a login process does only over TLS (secured=tls): without TLS, y is honest",
        "answers": {"dovecot": [["FAIL"]], "postern": [["CONT", "<server-first>"],
                                                       ["OK", "resp=<good signature>", "user=alice"]]},
    },
    "-PLUS asked for by a minor-2 client": {
        "why": "Dovecot runs a mechanism it did not offer to this client, then cannot ask a minor-2 client for "
               "the data; postern answers it as any mechanism not offered (code=auth_mech_invalid)",
        "answers": {"dovecot": [["CONT", "<server-first>"], ["FAIL", "user=alice"]],
                    "postern": [["FAIL", "code=auth_mech_invalid", "reason=Unsupported authentication mechanism"]]},
    },
    "channel binding on a PLAIN continuation": {
        "why": "Dovecot ignores channel binding data nobody asked for; postern fails the request (a 2.4 login "
               "process sends it only when asked, so it is a broken or hostile client)",
        "answers": {"dovecot": [["CONT", ""], ["OK", "user=alice"]], "postern": [["CONT", ""], ["FAIL"]]},
    },
}


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class DifferentialPlus24Test(Dovecot24Case):
    """SCRAM-*-PLUS and the gs2 flags: the same conversations with Dovecot
    2.4.1's auth (login socket) and posternd (login listener)."""

    def setUp(self):
        super().setUp()
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home="/home/alice"), 0o644)
        self.start_posternd(users, mechanisms=PLUS_DIFF_MECHS)
        self.start_dovecot_auth(users, "dovecot-login", PLUS_DIFF_MECHS, "login")

    def converse(self, path):
        answers = {}
        for i, (name, minor, run) in enumerate(plus_scenarios()):
            c = AuthClient(path)
            try:
                c.send_line("VERSION", "1", str(minor))
                c.send_line("CPID", str(20000 + i))
                hs = c.read_handshake()
                cv = Conversation(c)
                if run is None:
                    cv.lines = [l.split("\t") for l in hs if l.startswith("MECH\t")]
                    answers[name] = cv.lines
                    continue
                run(cv)
                answers[name] = [Differential24Test.normalise(line) for line in cv.lines]
            finally:
                c.close()
        return answers

    def test_same_answers_as_dovecot_24(self):
        dovecot = self.converse(self.path("dovecot-login"))
        postern = self.converse(self.path("login"))
        differences = {name: {"dovecot": dovecot[name], "postern": postern[name]}
                       for name in dovecot if dovecot[name] != postern[name]}
        report = "\n".join(f"{name}:\n  dovecot {d['dovecot']}\n  postern {d['postern']}"
                           for name, d in differences.items())
        print(f"\n-PLUS differential check: {len(dovecot)} conversations, {len(differences)} differ\n{report}")
        self.assertEqual(set(differences), set(PLUS_KNOWN_DIFFERENCES), report)
        for name, d in differences.items():
            self.assertEqual(d, PLUS_KNOWN_DIFFERENCES[name]["answers"], f"{name}: {report}")



if __name__ == "__main__":
    unittest.main()
