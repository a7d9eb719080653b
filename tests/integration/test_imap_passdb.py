# The imap passdb (driver = "imap") against a private Dovecot 2.3 IMAP server
# with its own passwd-file users and a test CA made here with openssl:
# STARTTLS, implicit TLS and plaintext, LOGIN and AUTHENTICATE PLAIN, quoted
# strings and literals, certificate checks, an IMAP server stopped under load,
# a server that never answers, max_connections, the cache; and end to end
# through Postfix + swaks and through testsaslauthd on a saslauthd listener.

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from dovecot_support import DovecotProcess
from dovecot_support import dovecot_missing as dovecot_imap_missing
from harness import (TESTSASLAUTHD, AuthClient, Closed, DaemonTestCase, free_tcp_port, make_config, register_secret,
                     require_binaries, toml_str, write_file)
from postfix_support import OPENSSL, PostfixTestCase, postfix_missing

MAIL_UID = 5000

# The IMAP server's users. Distinctive passwords (the log check looks for
# them); some need a quoted string with escapes, some a literal.
USERS = {
    "alice": "Imap-Alice-Pa55-6b1d",
    "bob": 'Imap Bob "quoted" back\\slash 9e2',    # spaces, quotes, backslash: quoted string
    'o"brien\\x y': "Imap-Obrien-Pa55-41f0",       # the same in the user name
    "j\u00f6rg": "P\u00e4ssw\u00f6rd-\u00fc-Imap-7c3a",  # UTF-8 name and password: literals
    "carol": "Imap-Carol-Cache-Pa55-0d9e",
}
WRONG = "Imap-Wrong-Pa55-c3f8"
CRLF_PASSWORD = "Imap-Crlf-Pa55\r\nP9 LOGOUT"
for _pw in list(USERS.values()) + [WRONG, CRLF_PASSWORD, "Imap-Crlf-Pa55"]:
    register_secret(_pw)


def dovecot_missing():
    if not OPENSSL:
        return "openssl not installed (needed for the test CA)"
    return dovecot_imap_missing()


def openssl(*args, cwd):
    p = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{p.stderr}")


def make_ca(directory, name):
    """A CA (NAME-ca.pem) and a server certificate it signed for 127.0.0.1 and
    localhost (NAME-server.pem, NAME-server.key)."""
    ca_key, ca = f"{name}-ca.key", f"{name}-ca.pem"
    key, csr, cert = f"{name}-server.key", f"{name}-server.csr", f"{name}-server.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", f"/CN=postern test CA {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost", cwd=directory)
    write_file(os.path.join(directory, f"{name}-ext.cnf"),
               "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
               "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", f"{name}-ext.cnf", cwd=directory)
    return tuple(os.path.join(directory, f) for f in (ca, cert, key))


class Dovecot:
    """A private Dovecot IMAP server: its own passwd-file users, TLS with a
    certificate of the test CA, a STARTTLS port and an implicit-TLS port."""

    def __init__(self, base, cert, key):
        self.base = base
        self.port = free_tcp_port()
        self.tls_port = free_tcp_port()
        users = os.path.join(base, "dovecot-users")
        home_root = os.path.join(base, "home")
        os.makedirs(home_root, mode=0o755)
        lines = []
        for i, (user, password) in enumerate(USERS.items()):
            home = os.path.join(home_root, str(i))
            os.makedirs(home)
            os.chown(home, MAIL_UID, MAIL_UID)
            # Dovecot's passwd-file looks names up escaped (str_escape: \\ and \").
            name = user.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f"{name}:{{PLAIN}}{password}:{MAIL_UID}:{MAIL_UID}::{home}::\n")
        write_file(users, "".join(lines), 0o644)
        os.makedirs(os.path.join(base, "dovecot-state"))
        self.conf = os.path.join(base, "dovecot.conf")
        write_file(self.conf, f"""base_dir = {base}/dovecot-run
state_dir = {base}/dovecot-state
protocols = imap
listen = 127.0.0.1
log_path = {base}/dovecot.log
auth_verbose = yes
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Names with spaces, quotes, backslashes and UTF-8; taken as typed.
auth_username_chars =
auth_username_format = %u
# Wrong passwords are the point of some tests: no delay.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
first_valid_uid = 1000
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
# Dovecot's own penalty (up to 15 s for an IP after failed logins) would
# slow the tests after each wrong password: its anvil socket is closed.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 1
}}
""")
        self.process = DovecotProcess(base, self.conf, self.port)

    def start(self):
        self.process.start()

    def log(self):
        return self.process.log()

    def stop(self):
        self.process.stop()

    def logins(self, user):
        return self.log().count(f"Login: user=<{user}>")


def imap_passdb(port, tls="starttls", ca=None, extra=(), host="127.0.0.1"):
    lines = ["[[passdb]]", 'driver = "imap"', f"host = {toml_str(host)}", f"port = {port}",
             f"tls = {toml_str(tls)}"]
    if ca:
        lines.append(f"ca_file = {toml_str(ca)}")
    return "\n" + "\n".join(list(lines) + list(extra)) + "\n"


def is_temp_fail(fields):
    return fields[0] == "FAIL" and "code=temp_fail" in fields[2:]


class FakeImapServer:
    """A loopback TCP server in threads. silent: accepts and never says a
    word. Otherwise a minimal IMAP server whose LOGIN takes `delay` seconds;
    it counts connections and the most logins in progress at once."""

    def __init__(self, silent=False, delay=0.0, password="x"):
        self.silent, self.delay, self.password = silent, delay, password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        self.conns = []
        self.closing = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            if not self.silent:
                threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            f = conn.makefile("rb")
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
            for raw in f:
                parts = raw.decode().rstrip("\r\n").split(" ")
                tag, cmd = parts[0], parts[1].upper()
                if cmd == "LOGIN":
                    with self.lock:
                        self.active += 1
                        self.max_active = max(self.max_active, self.active)
                    time.sleep(self.delay)
                    with self.lock:
                        self.active -= 1
                    ok = parts[-1] == f'"{self.password}"'
                    conn.sendall(f"{tag} {'OK' if ok else 'NO'} done\r\n".encode())
                elif cmd == "LOGOUT":
                    conn.sendall(f"* BYE bye\r\n{tag} OK bye\r\n".encode())
                    return
                else:
                    conn.sendall(f"{tag} BAD what\r\n".encode())
        except (OSError, IndexError, UnicodeDecodeError):
            pass
        finally:
            conn.close()

    def close(self):
        self.closing = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass


@require_binaries
@unittest.skipIf(dovecot_missing(), dovecot_missing() or "")
class ImapPassdbTest(DaemonTestCase):
    """One Dovecot for the class; a posternd per test with its own passdb settings."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="postern-it-imapdb-")
        os.chmod(cls.base, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.base, ignore_errors=True)
        cls.ca, cert, key = make_ca(cls.base, "test")
        cls.other_ca, _, _ = make_ca(cls.base, "other")
        cls.dovecot = Dovecot(cls.base, cert, key)
        cls.addClassCleanup(cls.dovecot.stop)
        cls.dovecot.start()

    def setUp(self):
        super().setUp()
        if not self.dovecot.process.running():
            self.dovecot.start()

    def start_imap(self, passdb, extra="", mechanisms=("PLAIN", "LOGIN")):
        sock = self.path("auth")
        d = self.start_daemon(make_config(sock, mechanisms=mechanisms, extra=passdb + extra))
        client = self.connect(sock)
        return d, client

    def login(self, client, req_id, user, password, timeout=30):
        client.auth_plain(req_id, user, password)
        return client.reply_for(req_id, timeout=timeout)

    def check_users(self, client, first_id=1):
        """Every user with the right password gets OK, a wrong one FAIL (not temp)."""
        i = first_id
        for user, password in USERS.items():
            with self.subTest(user=user):
                self.assert_ok(self.login(client, i, user, password), i, user)
                r = self.login(client, i + 1, user, WRONG)
                self.assert_fail(r, i + 1)
                self.assertFalse(is_temp_fail(r), r)
            i += 2
        r = self.login(client, i, "nosuchuser", WRONG)
        self.assert_fail(r, i)
        self.assertFalse(is_temp_fail(r), r)
        return i + 1

    def test_starttls_login_all_users(self):
        # Quoted strings with escapes and UTF-8 literals, through STARTTLS
        # with the test CA (Dovecot offers LITERAL+, so literals go at once).
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca))
        self.check_users(c)
        self.assertIn("login refused", d.stderr())

    def test_implicit_tls(self):
        d, c = self.start_imap(imap_passdb(self.dovecot.tls_port, tls="implicit", ca=self.ca))
        self.check_users(c)

    def test_no_tls(self):
        d, c = self.start_imap(imap_passdb(self.dovecot.port, tls="none"))
        self.check_users(c)

    def test_authenticate_plain(self):
        # Dovecot lists SASL-IR: one AUTHENTICATE PLAIN line with the payload.
        for tls, port in (("starttls", self.dovecot.port), ("implicit", self.dovecot.tls_port)):
            with self.subTest(tls=tls):
                d, c = self.start_imap(imap_passdb(port, tls=tls, ca=self.ca, extra=['auth = "plain"']))
                self.check_users(c)
                self.daemons.remove(d)
                d.stop()

    def test_host_name_checked(self):
        # tls_name "localhost" is in the certificate; another name is not.
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca, extra=['tls_name = "localhost"']))
        self.assert_ok(self.login(c, 1, "alice", USERS["alice"]), 1, "alice")
        self.daemons.remove(d)
        d.stop()
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca,
                                           extra=['tls_name = "mail.example.org"']))
        r = self.login(c, 1, "alice", USERS["alice"])
        self.assertTrue(is_temp_fail(r), r)
        self.assertRegex(d.stderr(), r"the certificate is not for .*mail\.example\.org")

    def test_host_name_resolved(self):
        # A name: looked up asynchronously (localhost may give ::1 first,
        # where nobody listens: the next address is tried), sent as SNI and
        # checked against the certificate's DNS name.
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca, host="localhost"))
        self.assert_ok(self.login(c, 1, "alice", USERS["alice"]), 1, "alice")
        r = self.login(c, 2, "alice", WRONG)
        self.assert_fail(r, 2)
        self.assertFalse(is_temp_fail(r), r)
        # A name that does not resolve: temp-fail, whatever the resolver does.
        d2 = self.start_daemon(make_config(self.path("auth2"), extra=imap_passdb(
            self.dovecot.port, ca=self.ca, host="no-such-host.invalid", extra=['timeout = "2s"'])),
            name="posternd2")
        c2 = self.connect(self.path("auth2"))
        r = self.login(c2, 1, "alice", USERS["alice"], timeout=15)
        self.assertTrue(is_temp_fail(r), r)
        self.assertRegex(d2.stderr(), r"cannot resolve no-such-host\.invalid|resolving no-such-host\.invalid")

    def test_unknown_ca_is_temp_fail(self):
        for tls, port in (("starttls", self.dovecot.port), ("implicit", self.dovecot.tls_port)):
            with self.subTest(tls=tls):
                d, c = self.start_imap(imap_passdb(port, tls=tls, ca=self.other_ca))
                r = self.login(c, 1, "alice", USERS["alice"])
                self.assertTrue(is_temp_fail(r), r)
                r = self.login(c, 2, "alice", WRONG)
                self.assertTrue(is_temp_fail(r), r)
                log = d.stderr()
                self.assertIn("TLS handshake failed", log)
                self.assertIn("unable to get local issuer certificate", log)
                self.assertIn("server unavailable", log)
                self.daemons.remove(d)
                d.stop()
        # Without the certificate check the same server is used.
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.other_ca,
                                           extra=["verify_cert = false"]))
        self.assert_ok(self.login(c, 1, "alice", USERS["alice"]), 1, "alice")

    def test_crlf_never_reaches_the_server(self):
        fake = FakeImapServer(silent=True)
        self.addCleanup(fake.close)
        d, c = self.start_imap(imap_passdb(fake.port, tls="none"))
        for i, (user, password) in enumerate((("alice", CRLF_PASSWORD), ("alice", "Imap-Crlf-Pa55\0x"),
                                              ("alice", "Imap-Crlf-Pa55\r"))):
            r = self.login(c, i + 1, user, password)
            self.assert_fail(r, i + 1)
            self.assertFalse(is_temp_fail(r), r)
        self.assertEqual(fake.accepted, 0)
        self.assertIn("the password contains CR, LF or NUL; not sent to the IMAP server", d.stderr())
        # And the same against the real server, which then sees no login at all.
        d2 = self.start_daemon(make_config(self.path("auth2"), extra=imap_passdb(self.dovecot.port, ca=self.ca)),
                               name="posternd2")
        c2 = self.connect(self.path("auth2"))
        before = self.dovecot.log().count("alice")
        r = self.login(c2, 1, "alice", CRLF_PASSWORD)
        self.assertFalse(is_temp_fail(r), r)
        self.assert_fail(r, 1)
        # A later login shows up in Dovecot's log; nothing about alice before it.
        self.assert_ok(self.login(c2, 2, "bob", USERS["bob"]), 2, "bob")
        wait_until(lambda: self.dovecot.logins("bob") > 0)
        self.assertEqual(self.dovecot.log().count("alice"), before)
        self.assertNotIn("P9 LOGOUT", self.dovecot.log())
        self.assertTrue(d2.alive())

    def test_silent_server_times_out(self):
        fake = FakeImapServer(silent=True)
        self.addCleanup(fake.close)
        d, c = self.start_imap(imap_passdb(fake.port, tls="none", extra=['timeout = "1s"']))
        r = self.login(c, 1, "alice", USERS["alice"], timeout=15)
        self.assertTrue(is_temp_fail(r), r)
        self.assertEqual(fake.accepted, 1)
        self.assertIn("no answer within the timeout", d.stderr())
        # STARTTLS against the silent server: the same.
        d2 = self.start_daemon(make_config(self.path("auth2"),
                                           extra=imap_passdb(fake.port, extra=['timeout = "1s"'])),
                               name="posternd2")
        c2 = self.connect(self.path("auth2"))
        r = self.login(c2, 1, "alice", USERS["alice"], timeout=15)
        self.assertTrue(is_temp_fail(r), r)

    def test_refused_connection_is_temp_fail(self):
        port = free_tcp_port()  # nobody listens
        d, c = self.start_imap(imap_passdb(port, tls="none"))
        r = self.login(c, 1, "alice", USERS["alice"])
        self.assertTrue(is_temp_fail(r), r)
        self.assertIn("Connection refused", d.stderr())

    def test_max_connections(self):
        fake = FakeImapServer(delay=0.2, password="Imap-Alice-Pa55-6b1d")
        self.addCleanup(fake.close)
        d, c = self.start_imap(imap_passdb(fake.port, tls="none", extra=["max_connections = 1"]))
        # Five logins at once on one connection: served one after another.
        for i in range(1, 6):
            c.auth_plain(i, "alice", USERS["alice"])
        replies = [c.reply_for(i, timeout=30) for i in range(1, 6)]
        for i, r in enumerate(replies, 1):
            self.assert_ok(r, i, "alice")
        self.assertEqual(fake.max_active, 1)
        self.assertEqual(fake.accepted, 5)
        # With 3 allowed, they overlap (the limit is not always 1).
        d2 = self.start_daemon(make_config(self.path("auth2"), extra=imap_passdb(
            fake.port, tls="none", extra=["max_connections = 3"])), name="posternd2")
        c2 = self.connect(self.path("auth2"))
        for i in range(1, 7):
            c2.auth_plain(i, "alice", USERS["alice"])
        for i in range(1, 7):
            self.assert_ok(c2.reply_for(i, timeout=30), i, "alice")
        self.assertLessEqual(fake.max_active, 3)

    def test_cache_answers_repeat_logins(self):
        cache = "\n[cache]\nenabled = true\nttl = 3600\n"
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca), extra=cache)
        before = self.dovecot.logins("carol")   # other tests of the class log in too
        self.assert_ok(self.login(c, 1, "carol", USERS["carol"]), 1, "carol")
        wait_until(lambda: self.dovecot.logins("carol") == before + 1)
        for i in range(2, 5):
            self.assert_ok(self.login(c, i, "carol", USERS["carol"]), i, "carol")
        # A wrong password is never answered from the cache.
        r = self.login(c, 5, "carol", WRONG)
        self.assertFalse(is_temp_fail(r), r)
        self.assert_fail(r, 5)
        self.assertIn("cache hit", d.stderr())
        # With the server gone, the cached login still works: it never
        # reaches the server.
        self.dovecot.stop()
        self.assert_ok(self.login(c, 6, "carol", USERS["carol"]), 6, "carol")
        self.assertEqual(self.dovecot.logins("carol"), before + 1)
        r = self.login(c, 7, "alice", USERS["alice"])
        self.assertTrue(is_temp_fail(r), r)

    def test_verify_only(self):
        # Challenge-response mechanisms are not offered: no credentials.
        d, c = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca),
                               mechanisms=("PLAIN", "LOGIN", "CRAM-MD5"))
        mechs = [l.split("\t")[1] for l in c.server_lines if l.startswith("MECH\t")]
        self.assertNotIn("CRAM-MD5", mechs)
        self.assertIn("mechanism CRAM-MD5 not offered", d.stderr())
        self.assert_ok(self.login(c, 1, "alice", USERS["alice"]), 1, "alice")

    def test_server_stopped_under_load(self):
        d, _ = self.start_imap(imap_passdb(self.dovecot.port, ca=self.ca, extra=['timeout = "5s"']))
        sock = self.path("auth")
        stop = threading.Event()
        results = []   # (right password?, reply fields or "noanswer")
        lock = threading.Lock()

        def worker(n):
            client = AuthClient(sock)
            try:
                client.handshake()
                req = 0
                while not stop.is_set():
                    req += 1
                    right = req % 4 != 0
                    user = "alice" if n % 2 else "bob"
                    client.auth_plain(req, user, USERS[user] if right else WRONG)
                    try:
                        r = client.reply_for(req, timeout=20)
                    except (socket.timeout, Closed) as e:
                        r = f"noanswer: {e}"
                    with lock:
                        results.append((right, r))
            finally:
                client.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            self.dovecot.stop()
            time.sleep(1.5)
            with lock:
                during = len(results)
            self.dovecot.start()   # returns once the server greets again
            back = time.monotonic()
            # Back within a second of the restart.
            c = self.connect(sock)
            ok_at = None
            i = 0
            while time.monotonic() - back < 1.0:
                i += 1
                r = self.login(c, i, "alice", USERS["alice"])
                if r[0] == "OK":
                    ok_at = time.monotonic() - back
                    break
            self.assertIsNotNone(ok_at, f"no OK within 1 s of Dovecot's restart; last {r}")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertGreater(len(results), during)
        noanswer = [r for _, r in results if isinstance(r, str)]
        self.assertEqual(noanswer, [])
        right = [r for ok, r in results if ok]
        wrong = [r for ok, r in results if not ok]
        for r in right:
            self.assertTrue(r[0] == "OK" or is_temp_fail(r), r)
        for r in wrong:
            self.assertEqual(r[0], "FAIL", r)
        self.assertTrue(any(r[0] == "OK" for r in right))
        self.assertTrue(any(is_temp_fail(r) for r in right), "no temporary failure while Dovecot was down")
        log = d.stderr()
        self.assertIn("server unavailable", log)
        self.assertIn("server answers again", log)


def wait_until(predicate, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def end_to_end_missing():
    return dovecot_missing() or postfix_missing()


@require_binaries
@unittest.skipIf(end_to_end_missing(), end_to_end_missing() or "")
class ImapPassdbClientsTest(PostfixTestCase):
    """Postfix (smtpd_sasl_type = dovecot) + swaks, and testsaslauthd on a
    saslauthd listener, both through an imap passdb on the private Dovecot."""

    tmp_prefix = "postern-it-imapcl-"

    @classmethod
    def prepare(cls):
        cls.ca, cert, key = make_ca(cls.tmp, "imap")
        cls.dovecot = Dovecot(cls.tmp, cert, key)
        cls.addClassCleanup(cls.dovecot.stop)
        cls.dovecot.start()
        cls.mux = os.path.join(cls.tmp, "mux")

    @classmethod
    def daemon_config(cls):
        return "\n".join([
            "[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0", "",
            "[penalty]", "enabled = false", "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.pf.auth_socket)}",
            'mode = "0666"', 'role = "client"', "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.mux)}",
            'mode = "0666"', 'role = "saslauthd"', ""]) + imap_passdb(cls.dovecot.port, ca=cls.ca)

    def test_postfix_swaks(self):
        before = self.dovecot.logins("alice")
        self.assert_reply(self.auth("PLAIN", "alice", USERS["alice"]), 235)
        self.assert_reply(self.auth("LOGIN", "bob", USERS["bob"]), 235)
        self.assert_reply(self.auth("PLAIN", "j\u00f6rg", USERS["j\u00f6rg"]), 235)
        self.assert_reply(self.auth("PLAIN", "alice", WRONG), 535)
        self.assert_reply(self.auth("LOGIN", "nosuchuser", WRONG), 535)
        wait_until(lambda: self.dovecot.logins("alice") > before)

    @unittest.skipUnless(TESTSASLAUTHD, "testsaslauthd not installed (package sasl2-bin)")
    def test_testsaslauthd(self):
        def run(user, password):
            p = subprocess.run([TESTSASLAUTHD, "-u", user, "-p", password, "-f", self.mux, "-s", "imap"],
                               capture_output=True, text=True, timeout=30)
            return p.stdout.strip()
        self.assertEqual(run("alice", USERS["alice"]), '0: OK "Success."')
        self.assertEqual(run('o"brien\\x y', USERS['o"brien\\x y']), '0: OK "Success."')
        self.assertEqual(run("alice", WRONG), '0: NO "authentication failed"')
        self.assertEqual(run("nosuchuser", WRONG), '0: NO "authentication failed"')
        self.assertIn("mech=saslauthd", self.daemon.stderr())


if __name__ == "__main__":
    unittest.main()
