# systemd integration: Type=notify (READY=1, STATUS=, RELOADING=1, STOPPING=1,
# WATCHDOG=1) read from a NOTIFY_SOCKET the test owns, and socket activation
# through the real systemd-socket-activate passing real sockets.

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, POSTERND, READY_LINE, START_TIMEOUT, AuthClient, Daemon,
                     DaemonTestCase, MasterClient, free_tcp_port, make_config, require_binaries,
                     toml_str)

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


class NotifyReceiver:
    """The manager's end of sd_notify: a unix datagram socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        # posternd sends after dropping root (to nobody when the tests run as root).
        os.chmod(path, 0o666)
        self.messages = []

    def close(self):
        self.sock.close()

    def wait_for(self, predicate, timeout=START_TIMEOUT):
        """The first message (a dict of its assignments, plus the raw text)
        for which predicate holds; AssertionError after timeout."""
        for m in self.messages:
            if predicate(m):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            m = {"_raw": data.decode("utf-8", "replace")}
            for line in m["_raw"].split("\n"):
                key, sep, value = line.partition("=")
                if sep:
                    m[key] = value
            self.messages.append(m)
            if predicate(m):
                return m
        raise AssertionError(f"no matching notification in {timeout}s; got {[x['_raw'] for x in self.messages]}")

    def count(self, key, value):
        return sum(1 for m in self.messages if m.get(key) == value)

    def drain(self, seconds):
        """Collects whatever arrives for that long."""
        deadline = time.monotonic() + seconds
        try:
            self.wait_for(lambda m: False, seconds)
        except AssertionError:
            pass
        while time.monotonic() < deadline:
            time.sleep(0.01)


def proc_uid(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


@require_binaries
class NotifyTest(DaemonTestCase):

    def notify_env(self, **extra):
        self.notify = NotifyReceiver(self.path("notify"))
        self.addCleanup(self.notify.close)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        env.update(extra)
        return env

    def start_notified(self, env):
        sock = self.path("auth")
        return self.start_daemon(make_config(sock, self.standard_users()), env=env), sock

    def test_ready_and_status_after_listeners(self):
        env = self.notify_env()
        d, sock = self.start_notified(env)
        ready = self.notify.wait_for(lambda m: m.get("READY") == "1")
        # READY=1 comes with the one-line summary, once the socket accepts.
        status = ready.get("STATUS", "")
        self.assertIn(f"1 listener (unix:{sock} client)", status)
        self.assertIn("passdbs: passwd-file", status)
        self.assertIn("userdbs: passwd-file", status)
        self.assertNotIn("\n", status)
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        # No watchdog was asked for: no pings.
        self.notify.drain(0.3)
        self.assertEqual(self.notify.count("WATCHDOG", "1"), 0)

    def test_sighup_reloading_then_ready(self):
        env = self.notify_env()
        d, sock = self.start_notified(env)
        self.notify.wait_for(lambda m: m.get("READY") == "1")
        os.kill(d.proc.pid, signal.SIGHUP)
        reloading = self.notify.wait_for(lambda m: m.get("RELOADING") == "1")
        self.assertTrue(reloading.get("MONOTONIC_USEC", "").isdigit(), reloading)
        first_ready = self.notify.messages[0]
        # READY=1 again after the reload, with the summary.
        again = self.notify.wait_for(lambda m: m.get("READY") == "1" and m is not first_ready)
        self.assertIn("passdbs: passwd-file", again.get("STATUS", ""))
        self.assertLess(self.notify.messages.index(reloading), len(self.notify.messages) - 1)
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_reload_that_changes_the_config_then_a_broken_one(self):
        env = self.notify_env()
        d, sock = self.start_notified(env)
        first_ready = self.notify.wait_for(lambda m: m.get("READY") == "1")
        c = self.connect(sock)
        # A second listener: RELOADING=1, then READY=1 whose summary has it.
        # (In a directory the daemon may write after dropping root.)
        run = self.path("run")
        os.makedirs(run)
        os.chmod(run, 0o777)
        extra = os.path.join(run, "auth2")
        with open(d.config_path, "a", encoding="utf-8") as f:
            f.write(f'\n[[listener]]\ntype = "unix"\npath = {toml_str(extra)}\nmode = "0666"\nrole = "client"\n')
        os.kill(d.proc.pid, signal.SIGHUP)
        reloading = self.notify.wait_for(lambda m: m.get("RELOADING") == "1")
        ready = self.notify.wait_for(lambda m: m.get("READY") == "1" and m is not first_ready)
        self.assertLess(self.notify.messages.index(reloading), self.notify.messages.index(ready))
        self.assertIn("2 listeners", ready.get("STATUS", ""))
        self.assertIn(f"unix:{extra} client", ready.get("STATUS", ""))
        # A broken one: RELOADING=1, READY=1 again, STATUS says it failed.
        with open(d.config_path, "a", encoding="utf-8") as f:
            f.write("\n[auth]\nfailure_delay = 1\n")  # [auth] a second time
        os.kill(d.proc.pid, signal.SIGHUP)
        self.notify.wait_for(lambda m: m.get("RELOADING") == "1" and m is not reloading)
        failed = self.notify.wait_for(lambda m: m.get("READY") == "1" and m is not first_ready and m is not ready)
        self.assertIn("reload failed", failed.get("STATUS", ""))
        self.assertIn("2 listeners", failed.get("STATUS", ""))
        # The connection from before both reloads still answers.
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_stopping_on_sigterm(self):
        env = self.notify_env()
        d, sock = self.start_notified(env)
        self.notify.wait_for(lambda m: m.get("READY") == "1")
        self.assertEqual(d.stop(), 0)
        self.notify.wait_for(lambda m: m.get("STOPPING") == "1", timeout=2)

    def test_watchdog_pings_at_half_the_interval(self):
        env = self.notify_env(WATCHDOG_USEC="200000")
        d, sock = self.start_notified(env)
        self.notify.wait_for(lambda m: m.get("READY") == "1")
        # 100 ms apart: several within a second (no timing assertion beyond "some").
        self.notify.drain(1.0)
        self.assertGreaterEqual(self.notify.count("WATCHDOG", "1"), 3, self.notify.messages)
        self.assertIn("systemd watchdog: pinging every 100 ms", d.stderr())
        # A loop that stops (the process stopped) sends nothing.
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(0.1)
            before = self.notify.count("WATCHDOG", "1")
            self.notify.drain(0.5)
            after = self.notify.count("WATCHDOG", "1")
            self.assertLessEqual(after - before, 1)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        self.notify.drain(0.5)
        self.assertGreater(self.notify.count("WATCHDOG", "1"), after)

    def test_watchdog_for_another_pid_is_ignored(self):
        env = self.notify_env(WATCHDOG_USEC="200000", WATCHDOG_PID="1")
        d, sock = self.start_notified(env)
        self.notify.wait_for(lambda m: m.get("READY") == "1")
        self.notify.drain(0.5)
        self.assertEqual(self.notify.count("WATCHDOG", "1"), 0)

    def test_without_notify_socket_as_before(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
        d, sock = self.start_notified(env)
        self.assertIn(READY_LINE, d.stderr())
        self.assertNotIn("watchdog", d.stderr())
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        self.assertEqual(d.stop(), 0)


class SocketActivated(Daemon):
    """posternd under systemd-socket-activate: SPECS are (address, name)."""

    def __init__(self, workdir, config_text, specs, name="posternd"):
        super().__init__(workdir, config_text, name)
        self.specs = specs

    def start(self, wait_ready=False, **popen_kw):
        cmd = [SOCKET_ACTIVATE]
        for address, _ in self.specs:
            cmd += ["-l", address]
        cmd.append("--fdname=" + ":".join(n for _, n in self.specs))
        # The child gets only what -E names; sanitizer builds need theirs.
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "NOTIFY_SOCKET"):
            if var in os.environ:
                cmd += ["-E", f"{var}={os.environ[var]}"]
        cmd += [POSTERND, "-c", self.config_path]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True, **popen_kw)
        # systemd-socket-activate listens first and runs posternd (in its own
        # process, exec'd) at the first connection.
        deadline = time.monotonic() + START_TIMEOUT
        while "Listening on" not in self.stderr() or self.stderr().count("Listening on") < len(self.specs):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"systemd-socket-activate did not listen:\n{self.stderr()}")
            time.sleep(0.02)
        return self


@require_binaries
@unittest.skipUnless(SOCKET_ACTIVATE, "systemd-socket-activate not found (Debian package systemd)")
class SocketActivationTest(DaemonTestCase):

    def activate(self, config_text, specs):
        d = SocketActivated(self.tmp, config_text, specs)
        self.daemons.append(d)
        return d.start()

    def users(self):
        return self.standard_users()

    def login_alice(self, address, req_id=1):
        """A client connected before posternd runs: its connection is what
        makes systemd-socket-activate start posternd, and it is served."""
        c = AuthClient(address, timeout=START_TIMEOUT)
        self.addCleanup(c.close)
        c.read_handshake()
        c.send_line("VERSION", "1", "0")
        c.send_line("CPID", str(os.getpid()))
        c.auth_plain(req_id, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(timeout=START_TIMEOUT), req_id, "alice")
        return c

    def test_passed_unix_socket_matched_by_path(self):
        sock = self.path("auth")
        d = self.activate(make_config(sock, self.users(), mode="0600"), [(sock, "auth-client")])
        mode_before = stat.S_IMODE(os.stat(sock).st_mode)
        self.login_alice(sock)
        d.wait_ready()
        self.assertIn(f"listening on unix:{sock} (client, from systemd)", d.stderr())
        # systemd's socket: posternd leaves its mode and owner alone.
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), mode_before)
        if os.geteuid() == 0:
            # Root is dropped as with sockets posternd binds itself.
            self.assertEqual(proc_uid(d.proc.pid), [pwd.getpwnam("nobody").pw_uid] * 4)
        # Another connection on the same socket.
        self.login_alice(sock, 2)
        # Stopping leaves systemd's socket file in place.
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(sock))

    def test_matched_by_name_and_the_rest_bound_here(self):
        passed = self.path("passed-auth")
        own_master = self.path("master")
        users = self.users()
        conf = make_config(self.path("configured-auth"), users).replace(
            'role = "client"', 'role = "client"\nname = "client"', 1)
        conf += f'\n[[listener]]\ntype = "unix"\npath = {toml_str(own_master)}\nmode = "0600"\nrole = "master"\n'
        d = self.activate(conf, [(passed, "client")])
        self.login_alice(passed)
        d.wait_ready()
        err = d.stderr()
        self.assertIn("(client, from systemd)", err)
        self.assertIn(f"listening on unix:{own_master} (master)", err)
        # The configured path was not bound: the passed socket serves the listener.
        self.assertFalse(os.path.exists(self.path("configured-auth")))
        m = MasterClient(own_master)
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", "alice", "service=imap")
        self.assertEqual(m.read_fields()[:2], ["USER", "1"])

    def test_unmatched_socket_is_logged_and_closed(self):
        sock, stray = self.path("auth"), self.path("stray")
        d = self.activate(make_config(sock, self.users()), [(sock, "auth"), (stray, "stray")])
        self.login_alice(sock)
        d.wait_ready()
        self.assertIn('systemd passed socket "stray" (unix:' + stray + '), which matches no [[listener]]',
                      d.stderr())
        # Nobody holds it any more: systemd-socket-activate exec'd posternd.
        with self.assertRaises(ConnectionRefusedError):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(stray)
            finally:
                s.close()

    def test_passed_tcp_socket_matched_by_address(self):
        port = free_tcp_port()
        address = f"127.0.0.1:{port}"
        d = self.activate(make_config(None, self.users(), tcp_address=address), [(address, "tcp")])
        self.login_alice(("127.0.0.1", port))
        d.wait_ready()
        self.assertIn(f"listening on tcp:127.0.0.1:{port} (client, from systemd)", d.stderr())

    def test_passed_socket_of_the_wrong_kind_is_an_error(self):
        # A TCP socket passed by name for a unix listener.
        port = free_tcp_port()
        conf = make_config(self.path("auth"), self.users()).replace(
            'role = "client"', 'role = "client"\nname = "client"', 1)
        d = self.activate(conf, [(f"127.0.0.1:{port}", "client")])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            pass
        d.proc.wait(START_TIMEOUT)
        self.assertEqual(d.proc.returncode, 71, d.stderr())
        self.assertIn("is not a listening unix stream socket", d.stderr())

    def test_notify_with_passed_sockets(self):
        notify = NotifyReceiver(self.path("notify"))
        self.addCleanup(notify.close)
        os.environ["NOTIFY_SOCKET"] = notify.path
        try:
            sock = self.path("auth")
            d = self.activate(make_config(sock, self.users()), [(sock, "auth")])
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self.login_alice(sock)
        ready = notify.wait_for(lambda m: m.get("READY") == "1")
        self.assertIn(f"unix:{sock} client from systemd", ready.get("STATUS", ""))


if __name__ == "__main__":
    unittest.main()
