# The http passdb and userdb (driver = "http") through posternd against
# http_support.PanelServer, a Python standard-library server that stands in
# for a mail panel's API (mailcow, Mailu, a PostfixAdmin-style panel), since
# none runs on this machine: PLAIN, LOGIN and CRAM-MD5 (lookup mode), the
# userdb through the auth-master socket, HTTPS with the test CA and with an
# unknown one, a unix socket, a bearer token, hostile names sent as JSON,
# every misbehaviour a temporary failure and never OK, and the server going
# away under load; Postfix + swaks and doveadm user as the real clients.

import hashlib
import hmac
import os
import shutil
import subprocess
import threading
import time
import unittest

from harness import (ALICE_PASSWORD, WRONG_PASSWORD, DaemonTestCase, MasterClient, b64, fields_dict,
                     make_config, register_secret, require_binaries, sha512_crypt, toml_str, unb64, write_file)
from http_support import MISBEHAVIOURS, PanelServer, make_ca
from postfix_support import PostfixTestCase, postfix_missing

DOVEADM = shutil.which("doveadm")
EX_NOUSER = 67
PANEL_PASSWORD = "Panel-Pa55w0rd-5e1b"
BEARER_TOKEN = "panel-api-token-0c93d1f2"
register_secret(PANEL_PASSWORD)
register_secret(BEARER_TOKEN)


def users():
    stored = sha512_crypt(PANEL_PASSWORD) or "{PLAIN}" + PANEL_PASSWORD
    return {
        "alice@example.com": {"password": ALICE_PASSWORD, "stored": "{PLAIN}" + ALICE_PASSWORD,
                              "fields": {"userdb_quota_rule": "*:storage=1G", "quota_class": "gold"},
                              "userdb": {"home": "/var/vmail/example.com/alice", "uid": 5000, "gid": 5000,
                                         "mail": "maildir:~/Maildir"}},
        "bob@example.com": {"password": PANEL_PASSWORD, "stored": stored},
        "carol@example.com": {"password": ALICE_PASSWORD, "stored": "{PLAIN}" + ALICE_PASSWORD,
                              "nologin": True, "reason": "mailbox moved"},
        "Dave@Example.com": {"password": ALICE_PASSWORD, "stored": "{PLAIN}" + ALICE_PASSWORD,
                             "rename": "dave@example.com"},
    }


def is_temp_fail(fields):
    return fields[0] == "FAIL" and "code=temp_fail" in fields[2:]


@require_binaries
class HttpBase(DaemonTestCase):
    mechanisms = ("PLAIN", "LOGIN")
    passdb_extra = ""
    timeout = "1s"

    def setUp(self):
        super().setUp()
        self.panel = self.make_panel()
        self.panel.start()
        self.addCleanup(self.panel.stop)
        self.sock = self.path("auth")
        self.start_daemon(self.config())

    def make_panel(self):
        return PanelServer(users(), slow_seconds=3)

    def driver_settings(self):
        return (f'driver = "http"\nurl = {toml_str(self.panel.url)}\ntimeout = {toml_str(self.timeout)}\n'
                + self.passdb_extra)

    def config(self):
        body = self.driver_settings()
        extra = ("[[listener]]\ntype = \"unix\"\npath = " + toml_str(self.path("master")) +
                 '\nmode = "0666"\nrole = "master"\n\n'
                 "[[passdb]]\n" + body + "\n[[userdb]]\n" + body.replace('mode = "lookup"\n', "") + "\n")
        return make_config(self.sock, None, mechanisms=self.mechanisms, extra=extra)

    def plain(self, user, password, req_id=1):
        c = self.connect(self.sock)
        c.auth_plain(req_id, user, password)
        return c.reply_for(req_id)


class HttpVerifyTest(HttpBase):

    def test_plain_ok_wrong_unknown(self):
        r = self.plain("alice@example.com", ALICE_PASSWORD)
        self.assert_ok(r, 1, "alice@example.com")
        req = self.panel.requests[-1]
        self.assertEqual(req["request"], "verify")
        self.assertEqual(req["password"], ALICE_PASSWORD)
        self.assertEqual((req["service"], req["mechanism"], req["remote_ip"], req["secured"]),
                         ("smtp", "PLAIN", "127.0.0.1", True))
        for user, pw in (("alice@example.com", WRONG_PASSWORD), ("nobody@example.com", ALICE_PASSWORD)):
            r = self.plain(user, pw, 2)
            self.assert_fail(r, 2)
            self.assertFalse(is_temp_fail(r), r)

    def test_login_mechanism_and_rename(self):
        c = self.connect(self.sock)
        c.auth(1, "LOGIN", "lip=127.0.0.1", "rip=127.0.0.1")
        self.assertEqual(c.reply_for(1)[0], "CONT")
        c.send_line("CONT", "1", b64(b"Dave@Example.com"))
        self.assertEqual(c.reply_for(1)[0], "CONT")
        c.send_line("CONT", "1", b64(ALICE_PASSWORD.encode()))
        self.assert_ok(c.reply_for(1), 1, "dave@example.com")

    def test_nologin(self):
        # As a passwd-file nologin: the fields go to the client, which refuses.
        r = self.plain("carol@example.com", ALICE_PASSWORD)
        self.assertIn("nologin=y", r, r)
        self.assertIn("reason=mailbox moved", r, r)
        r = self.plain("carol@example.com", WRONG_PASSWORD, 2)
        self.assert_fail(r, 2)

    def test_userdb_through_master_socket(self):
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", "alice@example.com", "service=imap")
        r = m.reply_for(1)
        self.assertEqual(r[:3], ["USER", "1", "alice@example.com"], r)
        f = fields_dict(r[1:])
        self.assertEqual((f.get("home"), f.get("uid"), f.get("gid")), ("/var/vmail/example.com/alice", "5000", "5000"))
        req = [q for q in self.panel.requests if q["request"] == "userdb"][-1]
        self.assertNotIn("password", req)
        m.send_line("USER", "2", "nobody@example.com", "service=imap")
        self.assertEqual(m.reply_for(2)[0], "NOTFOUND")
        # PASS: a passdb lookup without a password.
        m.send_line("PASS", "3", "alice@example.com", "service=imap")
        self.assertEqual(m.reply_for(3)[0], "PASS")
        self.assertNotIn("password", self.panel.requests[-1])

    @unittest.skipUnless(DOVEADM, "doveadm not installed (apt-get install dovecot-core)")
    def test_doveadm_user(self):
        def doveadm(user):
            return subprocess.run([DOVEADM, "-c", "/dev/null", "user", "-a", self.path("master"), user],
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        p = doveadm("alice@example.com")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rows = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
        self.assertEqual(rows.get("home"), "/var/vmail/example.com/alice", p.stdout)
        self.assertEqual(rows.get("uid"), "5000", p.stdout)
        self.assertEqual(rows.get("mail"), "maildir:~/Maildir", p.stdout)
        self.assertEqual(doveadm("nobody@example.com").returncode, EX_NOUSER)
        self.panel.behaviour = "500"
        p = doveadm("alice@example.com")
        self.panel.behaviour = None
        self.assertNotIn(p.returncode, (0, EX_NOUSER), p.stdout + p.stderr)

    def test_hostile_names_sent_as_json(self):
        names = ['quo"te\\back@example.com', "x" * 200 + "@example.com", "tab\there@example.com",
                 "j\u00f6rg@example.com"]
        for i, name in enumerate(names, 1):
            r = self.plain(name, ALICE_PASSWORD, i)
            self.assertEqual(r[0], "FAIL", r)
            self.assertFalse(is_temp_fail(r), r)
        seen = {q["user"] for q in self.panel.requests}
        for name in names:
            if "\t" in name:
                continue  # the auth protocol refuses a TAB before any backend sees it
            self.assertTrue(name in seen, name[:40])
        # A 10 KB name and a NUL inside the name (LOGIN carries it base64'd).
        c = self.connect(self.sock)
        c.auth_plain(20, "y" * 10240, ALICE_PASSWORD)
        r = c.reply_for(20)
        self.assertEqual(r[0], "FAIL", r)
        c = self.connect(self.sock)
        c.auth(21, "LOGIN", "lip=127.0.0.1", "rip=127.0.0.1")
        c.reply_for(21)
        c.send_line("CONT", "21", b64(b"alice@example.com\x00admin"))
        r = c.reply_for(21)
        if r[0] == "CONT":
            c.send_line("CONT", "21", b64(ALICE_PASSWORD.encode()))
            r = c.reply_for(21)
        self.assertEqual(r[0], "FAIL", r)

    def test_misbehaviours_are_temp_fail_never_ok(self):
        for b in MISBEHAVIOURS:
            with self.subTest(behaviour=b):
                self.panel.behaviour = b
                r = self.plain("alice@example.com", ALICE_PASSWORD)
                self.assertTrue(is_temp_fail(r), (b, r))
                c = MasterClient(self.path("master"))
                c.master_handshake()
                c.send_line("USER", "5", "alice@example.com", "service=imap")
                u = c.reply_for(5)
                c.close()
                self.assertEqual(u[0], "FAIL", (b, u))
        self.panel.behaviour = None
        self.assert_ok(self.plain("alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")

    def test_server_goes_away_under_load(self):
        results = []
        lock = threading.Lock()
        stop_at = threading.Event()

        def worker(n):
            for i in range(12):
                wrong = (n + i) % 3 == 0
                try:
                    r = self.plain("alice@example.com", WRONG_PASSWORD if wrong else ALICE_PASSWORD, 100 + i)
                except Exception as e:  # an unanswered request is a failure of the test
                    r = ["NO ANSWER", repr(e)]
                with lock:
                    results.append((wrong, stop_at.is_set(), r))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        self.panel.stop()
        stop_at.set()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 16 * 12)
        for wrong, after, r in results:
            self.assertIn(r[0], ("OK", "FAIL"), r)
            if wrong:
                self.assertEqual(r[0], "FAIL", r)
        self.assertTrue(any(is_temp_fail(r) for _, after, r in results if after))
        # Nothing is listening now: every login is a temporary failure.
        self.assertTrue(is_temp_fail(self.plain("alice@example.com", ALICE_PASSWORD, 999)))


class HttpLookupModeTest(HttpBase):
    mechanisms = ("PLAIN", "LOGIN", "CRAM-MD5")
    passdb_extra = 'mode = "lookup"\n'

    def test_cram_md5_with_stored_plain(self):
        c = self.connect(self.sock)
        c.auth(1, "CRAM-MD5", "lip=127.0.0.1", "rip=127.0.0.1")
        r = c.reply_for(1)
        self.assertEqual(r[0], "CONT", r)
        challenge = unb64(r[2])
        digest = hmac.new(ALICE_PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        c.send_line("CONT", "1", b64(b"alice@example.com " + digest.encode()))
        self.assert_ok(c.reply_for(1), 1, "alice@example.com")
        for q in self.panel.requests:
            self.assertNotIn("password", q)
            self.assertEqual(q["request"] if q["request"] != "userdb" else "lookup", "lookup")

    def test_plain_checked_here_against_a_crypt_hash(self):
        self.assert_ok(self.plain("bob@example.com", PANEL_PASSWORD), 1, "bob@example.com")
        r = self.plain("bob@example.com", WRONG_PASSWORD, 2)
        self.assert_fail(r, 2)
        self.assertFalse(is_temp_fail(r), r)
        for q in self.panel.requests:
            self.assertNotIn("password", q)  # the password never leaves postern


class HttpTlsTest(HttpBase):

    def make_panel(self):
        self.ca, cert, key = make_ca(self.tmp, "good")
        self.other_ca, _, _ = make_ca(self.tmp, "other")
        token = self.path("token")
        write_file(token, BEARER_TOKEN + "\n", mode=0o600)
        self.passdb_extra = f"ca_file = {toml_str(self.ca)}\nbearer_token_file = {toml_str(token)}\n"
        return PanelServer(users(), tls=(cert, key), token=BEARER_TOKEN)

    def test_https_with_ca_file_and_token(self):
        self.assert_ok(self.plain("alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        self.assertEqual(self.panel.headers[-1].get("Authorization"), "Bearer " + BEARER_TOKEN)
        # Keep-alive: later logins reuse the connection.
        for i in range(3):
            self.assert_ok(self.plain("alice@example.com", ALICE_PASSWORD, 2 + i), 2 + i, "alice@example.com")
        self.assertLessEqual(len(self.panel.connections), 2)

    def test_unknown_ca_is_temp_fail(self):
        other = self.path("other.toml")
        cfg = self.config().replace(toml_str(self.ca), toml_str(self.other_ca)).replace(
            toml_str(self.sock), toml_str(self.path("auth2")))
        cfg = cfg.replace(toml_str(self.path("master")), toml_str(self.path("master2")))
        write_file(other, cfg)
        self.start_daemon(cfg, name="posternd-other")
        c = self.connect(self.path("auth2"))
        c.auth_plain(1, "alice@example.com", ALICE_PASSWORD)
        r = c.reply_for(1)
        self.assertTrue(is_temp_fail(r), r)


class HttpUnixSocketTest(HttpBase):

    def make_panel(self):
        path = self.path("panel.sock")
        p = PanelServer(users(), unix_path=path)
        os.chmod(path, 0o666)
        self.passdb_extra = f"unix_socket = {toml_str(path)}\n"
        return p

    def test_plain_over_unix_socket(self):
        self.assert_ok(self.plain("alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        r = self.plain("alice@example.com", WRONG_PASSWORD, 2)
        self.assert_fail(r, 2)
        self.assertFalse(is_temp_fail(r), r)


CONTRIB_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                              "http-auth-server.py")


class HttpContribServerTest(HttpBase):
    """contrib/http-auth-server.py, the documented example, on a PostfixAdmin
    mailbox table in SQLite, over a unix socket with a token, lookup mode."""
    mechanisms = ("PLAIN", "LOGIN", "CRAM-MD5")

    def make_panel(self):
        import sqlite3
        import subprocess
        db = self.path("postfixadmin.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE mailbox (username TEXT PRIMARY KEY, password TEXT, maildir TEXT, "
                    "quota INTEGER, active INTEGER, domain TEXT)")
        con.execute("INSERT INTO mailbox VALUES (?,?,?,?,?,?)",
                    ("alice@example.com", "{PLAIN}" + ALICE_PASSWORD, "example.com/alice/", 1073741824, 1,
                     "example.com"))
        con.execute("INSERT INTO mailbox VALUES (?,?,?,?,?,?)",
                    ("off@example.com", "{PLAIN}" + ALICE_PASSWORD, "example.com/off/", 0, 0, "example.com"))
        con.commit()
        con.close()
        token = self.path("token")
        write_file(token, BEARER_TOKEN + "\n", mode=0o600)
        sock = self.path("panel.sock")
        proc = subprocess.Popen(["python3", CONTRIB_SERVER, "--db", db, "--unix", sock, "--token-file", token],
                                stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        os.chmod(sock, 0o666)
        self.passdb_extra = (f'unix_socket = {toml_str(sock)}\nbearer_token_file = {toml_str(token)}\n'
                             'mode = "lookup"\n')

        class Proc:
            url = "http://localhost/auth"

            def start(self):
                return self

            def stop(self):
                proc.terminate()
                proc.wait(10)
        return Proc()

    def test_example_server(self):
        self.assert_ok(self.plain("alice@example.com", ALICE_PASSWORD), 1, "alice@example.com")
        r = self.plain("alice@example.com", WRONG_PASSWORD, 2)
        self.assert_fail(r, 2)
        self.assertFalse(is_temp_fail(r), r)
        self.assertIn("nologin=y", self.plain("off@example.com", ALICE_PASSWORD, 3))
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", "alice@example.com", "service=imap")
        f = fields_dict(m.reply_for(1)[1:])
        self.assertEqual(f.get("home"), "/var/vmail/example.com/alice/")
        self.assertEqual(f.get("quota_rule"), "*:bytes=1073741824")


@require_binaries
class HttpIntrospectionTest(DaemonTestCase):
    """The oauth2 passdb: an access token as the password, checked by RFC 7662
    introspection at the stand-in provider, cached by a hash of the token."""

    def setUp(self):
        super().setUp()
        self.idp = PanelServer({}).start()
        self.addCleanup(self.idp.stop)
        now = int(time.time())
        self.good, self.revoked, self.expired = "tok-good-3f1a", "tok-revoked-9c2e", "tok-expired-77d0"
        for t in (self.good, self.revoked, self.expired):
            register_secret(t)
        self.idp.tokens = {self.good: {"user": "alice@example.com", "exp": now + 600},
                           self.revoked: {"user": "alice@example.com", "exp": now + 600, "revoked": True},
                           self.expired: {"user": "alice@example.com", "exp": now - 10}}
        secret = self.path("client.secret")
        write_file(secret, self.idp.client_secret + "\n", mode=0o600)
        self.sock = self.path("auth")
        url = self.idp.url.replace("/api/auth", "/realms/mail/introspect")
        extra = ("[[passdb]]\ndriver = \"oauth2\"\n" f"introspection_url = {toml_str(url)}\n"
                 f'client_id = "postern"\nclient_secret_file = {toml_str(secret)}\ntimeout = "1s"\n'
                 'cache_ttl = "60s"\n')
        self.start_daemon(make_config(self.sock, None, extra=extra))

    def plain(self, user, password, req_id=1):
        c = self.connect(self.sock)
        c.auth_plain(req_id, user, password)
        return c.reply_for(req_id)

    def test_introspection(self):
        self.assert_ok(self.plain("alice@example.com", self.good), 1, "alice@example.com")
        self.assertEqual(self.idp.requests[-1], {"introspect": self.good})
        for tok in (self.revoked, self.expired):
            r = self.plain("alice@example.com", tok, 2)
            self.assert_fail(r, 2)
            self.assertFalse(is_temp_fail(r), r)
        # A token for another user.
        r = self.plain("bob@example.com", self.good, 3)
        self.assert_fail(r, 3)
        self.assertFalse(is_temp_fail(r), r)
        # Cached: the provider is down, the known good token still works.
        asked = len(self.idp.requests)
        self.idp.behaviour = "500"
        self.assert_ok(self.plain("alice@example.com", self.good, 4), 4, "alice@example.com")
        # An unknown token meanwhile is a temporary failure, never OK or a wrong password.
        self.assertTrue(is_temp_fail(self.plain("alice@example.com", "tok-unknown-5b5b", 5)))
        self.assertEqual(len([q for q in self.idp.requests[asked:] if q.get("introspect") == self.good]), 0)


@require_binaries
@unittest.skipIf(postfix_missing(), postfix_missing() or "")
class HttpPostfixTest(PostfixTestCase):
    """Postfix (smtpd_sasl_type = dovecot) + swaks through an http passdb."""

    tmp_prefix = "postern-it-httppf-"

    @classmethod
    def prepare(cls):
        cls.panel = PanelServer(users()).start()
        cls.addClassCleanup(cls.panel.stop)

    @classmethod
    def daemon_config(cls):
        return "\n".join([
            "[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0", "",
            "[penalty]", "enabled = false", "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.pf.auth_socket)}",
            'mode = "0666"', 'role = "client"', 'temp_fail = "disconnect"', "",
            "[[passdb]]", 'driver = "http"', f"url = {toml_str(cls.panel.url)}", 'timeout = "1s"', ""])

    def test_postfix_swaks(self):
        self.assert_reply(self.auth("PLAIN", "alice@example.com", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth("LOGIN", "bob@example.com", PANEL_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "alice@example.com", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("LOGIN", "nobody@example.com", WRONG_PASSWORD), 535)
        for behaviour in ("500", "slow"):  # a 5xx, then a timeout
            self.panel.behaviour = behaviour
            try:
                # A temporary failure: Postfix 3.7 answers every FAIL with
                # 535; temp_fail = "disconnect" closes the connection
                # instead, which Postfix answers with 454.
                out = self.auth("PLAIN", "alice@example.com", ALICE_PASSWORD)
                self.assert_reply(out, 454)
                self.assertIn('result=tempfail user="alice@example.com"', self.daemon.stderr())
                self.assertIn('temp_fail = "disconnect"', self.daemon.stderr())
            finally:
                self.panel.behaviour = None
            # smtpd reconnects for the next login; a wrong password stays 535.
            self.assert_reply(self.auth("PLAIN", "alice@example.com", ALICE_PASSWORD), 235)
            self.assert_reply(self.auth("PLAIN", "alice@example.com", WRONG_PASSWORD), 535)
        self.assertTrue(any(q.get("service") == "smtp" for q in self.panel.requests))


if __name__ == "__main__":
    unittest.main()
