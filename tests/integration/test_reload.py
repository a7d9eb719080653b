# SIGHUP reloads postern.conf without closing a connection: a persistent
# auth-client connection sees the new passdb at its next AUTH, a broken
# configuration leaves the old one serving (the log names file:line:key),
# listeners are added and removed while the unchanged ones stay the same
# socket, a login awaiting its REQUEST stays redeemable, the metrics count
# generations, and many clients authenticating through several reloads get
# every reply right with no connection closed.

import os
import re
import signal
import socket
import threading
import time
import unittest

from harness import (ALICE_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, AuthClient, Closed, DaemonTestCase,
                     MasterClient, b64, make_config, passwd_line, plain_payload, require_binaries,
                     toml_str, write_file)
from postfix_support import PostfixTestCase
from pam_support import PamDaemon, pam_config, pam_missing, write_services
from test_metrics import http_get, metrics_extra
from test_master import master_config, users_text

RELOAD_WAIT = 10.0


def unix_listener(path, role="client", mode="0666"):
    return ("\n[[listener]]\ntype = \"unix\"\n"
            f"path = {toml_str(path)}\nmode = {toml_str(mode)}\nrole = {toml_str(role)}\n")


class ReloadBase(DaemonTestCase):

    def reload(self, d, config_text=None, expect_ok=True):
        """Writes config_text (if any) over the daemon's config, sends SIGHUP
        and waits for the reload's log line; returns the log text it added."""
        if config_text is not None:
            write_file(d.config_path, config_text)
        before = d.stderr()
        os.kill(d.proc.pid, signal.SIGHUP)
        want = "reload: configuration generation" if expect_ok else "reload failed"
        deadline = time.monotonic() + RELOAD_WAIT
        while time.monotonic() < deadline:
            added = d.stderr()[len(before):]
            if "reload: configuration generation" in added or "reload failed" in added:
                self.assertIn(want, added, added)
                return added
            time.sleep(0.02)
        raise AssertionError("no reload line in the log:\n" + d.stderr()[len(before):])

    def run_dir(self):
        """A directory the daemon may still create sockets in after it has
        dropped root (to nobody when the tests run as root)."""
        path = self.path("run")
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        return path

    def users(self, name, **passwords):
        path = self.path(name)
        write_file(path, "".join(passwd_line(u, "{PLAIN}" + p) for u, p in passwords.items()))
        return path


@require_binaries
class ReloadTest(ReloadBase):

    def test_passdb_change_on_a_persistent_connection(self):
        sock = self.path("auth")
        before = self.users("users-a", alice=ALICE_PASSWORD)
        after = self.users("users-b", carol=NEW_PASSWORD)
        d = self.start_daemon(make_config(sock, before))
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        c.auth_plain(2, "carol", NEW_PASSWORD)
        self.assert_fail(c.reply(), 2)
        log = self.reload(d, make_config(sock, after))
        self.assertIn("generation 2", log)
        # The same connection: its next AUTH uses the new passdb.
        c.auth_plain(3, "carol", NEW_PASSWORD)
        self.assert_ok(c.reply(), 3, "carol")
        c.auth_plain(4, "alice", ALICE_PASSWORD)
        self.assert_fail(c.reply(), 4)
        # The unix socket is the same one: no "listening on" for it.
        self.assertNotIn("listening on", log)
        self.assertNotIn("closed", log)

    def test_broken_config_keeps_the_old_one(self):
        sock = self.path("auth")
        users = self.users("users", alice=ALICE_PASSWORD)
        good = make_config(sock, users)
        d = self.start_daemon(good)
        c = self.connect(sock)
        broken = good + "\n[cache]\nenabled = true\nttl = \"soon\"\n"
        line = broken.split("\n").index('ttl = "soon"') + 1
        log = self.reload(d, broken, expect_ok=False)
        # file:line:key of the bad setting.
        self.assertRegex(log, re.escape(f"{d.config_path}:{line}: cache.ttl"))
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        fresh = self.connect(sock)
        fresh.auth_plain(2, "alice", ALICE_PASSWORD)
        self.assert_ok(fresh.reply(), 2, "alice")
        # A backend that does not build is refused the same way.
        bad_passdb = make_config(sock, self.path("missing-dir/users")).replace(
            'driver = "passwd-file"', 'driver = "no-such-driver"', 1)
        log = self.reload(d, bad_passdb, expect_ok=False)
        self.assertIn(d.config_path + ":", log)
        c.auth_plain(3, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 3, "alice")
        # Fixed again: the next reload is generation 2 (failed ones do not count).
        self.assertIn("generation 2", self.reload(d, good))

    def test_listeners_added_and_removed(self):
        users = self.users("users", alice=ALICE_PASSWORD)
        run = self.run_dir()
        a, b, c_path = (os.path.join(run, n) for n in "abc")
        msock = os.path.join(run, "metrics")
        base = make_config(None, users) + metrics_extra(path=msock)
        d = self.start_daemon(base + unix_listener(a) + unix_listener(b))
        ino_a = os.stat(a).st_ino
        on_a = self.connect(a)
        on_b = self.connect(b)
        log = self.reload(d, base + unix_listener(a) + unix_listener(c_path))
        self.assertIn(f"unix:{b} (client) closed", log)
        self.assertIn(f"listening on unix:{c_path}", log)
        # a is the same socket (same inode), b is gone, c accepts.
        self.assertEqual(os.stat(a).st_ino, ino_a)
        self.assertFalse(os.path.exists(b))
        with self.assertRaises(OSError):
            AuthClient(b)
        on_c = self.connect(c_path)
        # Every connection stays open, the one on the removed listener too.
        for i, conn in enumerate((on_a, on_b, on_c, self.connect(a)), start=1):
            conn.auth_plain(i, "alice", ALICE_PASSWORD)
            self.assert_ok(conn.reply(), i, "alice")
        # The metrics list the listeners there are now.
        _, _, body = http_get(msock)
        listed = set(re.findall(r'^postern_listener_connections\{listener="unix:([^"]*)"', body, re.M))
        self.assertEqual(listed, {a, c_path})

    def test_kept_socket_gets_its_new_mode(self):
        users = self.users("users", alice=ALICE_PASSWORD)
        sock = os.path.join(self.run_dir(), "auth")
        base = make_config(None, users)
        d = self.start_daemon(base + unix_listener(sock, mode="0666"))
        ino = os.stat(sock).st_ino
        c = self.connect(sock)
        log = self.reload(d, base + unix_listener(sock, mode="0660"))
        self.assertEqual(os.stat(sock).st_ino, ino)
        if os.geteuid() == 0:
            # The daemon runs as nobody now; the socket root created is not its own.
            self.assertIn(f"unix:{sock}: chmod: Operation not permitted; the socket's mode is left as it was", log)
            self.assertEqual(os.stat(sock).st_mode & 0o777, 0o666)
        else:
            self.assertEqual(os.stat(sock).st_mode & 0o777, 0o660)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_tcp_listener_kept_and_new_one_bound(self):
        from harness import free_tcp_port
        users = self.users("users", alice=ALICE_PASSWORD)
        port, port2 = free_tcp_port(), free_tcp_port()
        base = make_config(None, users)
        tcp = lambda p: f'\n[[listener]]\ntype = "tcp"\naddress = "127.0.0.1:{p}"\nrole = "client"\n'
        d = self.start_daemon(base + tcp(port))
        c = self.connect(("127.0.0.1", port))
        self.reload(d, base + tcp(port) + tcp(port2))
        c2 = self.connect(("127.0.0.1", port2))
        for i, conn in enumerate((c, c2, self.connect(("127.0.0.1", port))), start=1):
            conn.auth_plain(i, "alice", ALICE_PASSWORD)
            self.assert_ok(conn.reply(), i, "alice")

    def test_new_listener_that_cannot_bind_keeps_the_old_config(self):
        sock = self.path("auth")
        users = self.users("users", alice=ALICE_PASSWORD)
        other = self.users("other", carol=NEW_PASSWORD)
        d = self.start_daemon(make_config(sock, users))
        c = self.connect(sock)
        # A path whose directory does not exist cannot be bound: the whole
        # reload is refused, the passdb change included.
        bad = make_config(sock, other) + unix_listener(self.path("no-such-dir/auth"))
        log = self.reload(d, bad, expect_ok=False)
        self.assertIn("no-such-dir/auth", log)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_metrics_generation_and_last_reload(self):
        sock = self.path("auth")
        msock = self.path("metrics")
        users = self.users("users", alice=ALICE_PASSWORD)
        good = make_config(sock, users) + metrics_extra(path=msock)
        d = self.start_daemon(good)

        def gauge(name):
            status, _, body = http_get(msock)
            self.assertEqual(status, 200)
            m = re.search(rf"^{name} (\S+)$", body, re.M)
            self.assertIsNotNone(m, name)
            return float(m.group(1))

        self.assertEqual(gauge("postern_config_generation"), 1)
        self.assertEqual(gauge("postern_config_last_reload_successful"), 1)
        t0 = gauge("postern_config_last_reload_success_timestamp_seconds")
        time.sleep(1.1)
        self.reload(d)
        self.assertEqual(gauge("postern_config_generation"), 2)
        self.assertEqual(gauge("postern_config_last_reload_successful"), 1)
        t1 = gauge("postern_config_last_reload_success_timestamp_seconds")
        self.assertGreater(t1, t0)
        self.reload(d, good + "\n[auth]\n", expect_ok=False)  # a table defined twice
        self.assertEqual(gauge("postern_config_generation"), 2)
        self.assertEqual(gauge("postern_config_last_reload_successful"), 0)
        self.assertEqual(gauge("postern_config_last_reload_success_timestamp_seconds"), t1)
        self.reload(d, good)
        self.assertEqual(gauge("postern_config_generation"), 3)
        self.assertEqual(gauge("postern_config_last_reload_successful"), 1)


@require_binaries
@unittest.skipIf(pam_missing(), pam_missing() or "")
class ReloadPamTest(ReloadBase):
    """A pam passdb's worker processes were forked as root at start-up: a
    reload keeps them when its settings are unchanged, and refuses to add
    or change one."""

    def test_pam_kept_and_a_changed_pam_refused(self):
        matrix = self.path("matrix")
        write_file(matrix, f"alice:{ALICE_PASSWORD}:smtp\n", 0o644)
        svc = self.path("pam.d")
        write_services(svc, matrix, {"smtp": "matrix"})
        sock = self.path("auth")
        config = pam_config(sock)
        d = PamDaemon(self.tmp, config, svc)
        self.daemons.append(d)
        d.start()
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(timeout=30), 1, "alice")
        # Unchanged pam passdb, another setting changed: kept, still answers.
        self.reload(d, config.replace("failure_delay = 0", "failure_delay = 0\nrequest_timeout = 60"))
        c.auth_plain(2, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(timeout=30), 2, "alice")
        # A changed pam passdb cannot get new workers: refused, old one serves.
        log = self.reload(d, pam_config(sock, workers=3), expect_ok=False)
        self.assertIn("passdb[0].driver", log)
        self.assertIn("restart posternd", log)
        c.auth_plain(3, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(timeout=30), 3, "alice")


@require_binaries
class ReloadPendingLoginTest(ReloadBase):

    def test_pending_login_redeemable_across_a_reload(self):
        users = self.path("users")
        write_file(users, users_text())
        d = self.start_daemon(master_config(self.tmp, users))
        login = AuthClient(self.path("login"))
        self.addCleanup(login.close)
        cpid = 4_000_000 + os.getpid() % 100000
        login.handshake(cpid=cpid)
        cookie = dict(l.split("\t", 1) for l in login.server_lines if l.startswith("COOKIE"))["COOKIE"]
        login.auth(7, "PLAIN", "lip=127.0.0.1", "rip=127.0.0.1",
                   resp=b64(plain_payload("alice", ALICE_PASSWORD)), service="imap")
        ok = login.reply_for(7)
        self.assertEqual(ok[:2], ["OK", "7"], ok)
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        # The same listeners, a different userdb field: the reload happens
        # between the login's OK and its REQUEST.
        self.reload(d, master_config(self.tmp, users).replace('level = "debug"', 'level = "info"'))
        m.send_line("REQUEST", "1", str(cpid), "7", cookie)
        r = m.reply_for(1)
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)
        self.assertIn("uid=5000", r)


@require_binaries
class ReloadUnderLoadTest(ReloadBase):
    """Clients authenticating without pause while the daemon reloads: every
    reply is the right one and no connection closes."""

    CLIENTS = 8
    RELOADS = 6

    def test_no_lost_reply_no_wrong_ok_no_closed_connection(self):
        sock = self.path("auth")
        users = self.users("users", alice=ALICE_PASSWORD)
        spare = os.path.join(self.run_dir(), "spare")
        base = make_config(sock, users)
        d = self.start_daemon(base)
        stop = threading.Event()
        errors = []
        counts = [0] * self.CLIENTS

        def client(n):
            try:
                c = AuthClient(sock)
                c.handshake()
                i = 0
                while not stop.is_set():
                    i += 1
                    right = i % 3 != 0
                    c.auth_plain(i, "alice", ALICE_PASSWORD if right else WRONG_PASSWORD)
                    r = c.reply()
                    want = "OK" if right else "FAIL"
                    if r[:2] != [want, str(i)]:
                        errors.append(f"client {n} request {i}: expected {want}, got {r}")
                        return
                    counts[n] += 1
                c.close()
            except (Closed, OSError) as e:
                errors.append(f"client {n}: connection lost: {e!r}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(self.CLIENTS)]
        for t in threads:
            t.start()
        try:
            for k in range(self.RELOADS):
                time.sleep(0.3)
                # Alternate: a second listener comes and goes, the penalty
                # and the cache settings change, the passdb is rebuilt.
                extra = unix_listener(spare) if k % 2 == 0 else "\n[cache]\nenabled = true\n"
                self.reload(d, base + extra)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertEqual(errors, [])
        self.assertTrue(all(n > 0 for n in counts), counts)
        self.assertIn(f"generation {self.RELOADS + 1} serving", d.stderr())
        self.assertTrue(d.alive())


class PostfixReloadTest(PostfixTestCase):
    """A real Postfix smtpd, driven by swaks, before and after a reload that
    changes the passdb: its auth connection stays open and its next AUTH
    uses the new passdb."""

    @classmethod
    def daemon_config(cls):
        cls.users_a = os.path.join(cls.tmp, "users-a")
        cls.users_b = os.path.join(cls.tmp, "users-b")
        write_file(cls.users_a, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        write_file(cls.users_b, passwd_line("carol", "{PLAIN}" + NEW_PASSWORD))
        cls.metrics_sock = os.path.join(cls.tmp, "metrics")
        return make_config(cls.pf.auth_socket, cls.users_a) + metrics_extra(path=cls.metrics_sock)

    def auth_connections(self):
        _, _, body = http_get(self.metrics_sock)
        m = re.search(r'^postern_listener_connections\{listener="unix:' + re.escape(self.pf.auth_socket) +
                      r'",role="client"\} (\S+)$', body, re.M)
        self.assertIsNotNone(m, body)
        return float(m.group(1))

    def test_passdb_change_seen_by_postfix(self):
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "carol", NEW_PASSWORD), 535)
        before = self.auth_connections()
        self.assertGreaterEqual(before, 1)  # smtpd keeps its auth connection
        d = self.daemon
        config = make_config(self.pf.auth_socket, self.users_b) + metrics_extra(path=self.metrics_sock)
        write_file(d.config_path, config)
        mark = d.stderr()
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WAIT
        while "generation 2 serving" not in d.stderr()[len(mark):]:
            self.assertLess(time.monotonic(), deadline, d.stderr()[len(mark):])
            time.sleep(0.05)
        # No connection was closed by the reload.
        self.assertGreaterEqual(self.auth_connections(), before)
        self.assert_reply(self.auth("PLAIN", "carol", NEW_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 535)
        self.assert_reply(self.auth("LOGIN", "carol", NEW_PASSWORD), 235)


if __name__ == "__main__":
    unittest.main()
