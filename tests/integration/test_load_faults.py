# Load and fault tests, each bounded in time, printing its figures:
# 10,000 idle connections (daemon RSS), 1,000,000 mixed requests through the
# epoll load generator (tests/bench/loadgen --mix) with zero lost replies and
# zero wrong OKs, slow-loris clients, clients that vanish mid-exchange, a
# passdb that dies or stalls under load, and SIGHUP reloads under load.
#
# POSTERN_LOAD_REQUESTS overrides the request count (tests/run.sh lowers it
# for the sanitizer build, where everything is several times slower).

import os
import resource
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (ALICE_PASSWORD, BUILD_DIR, LOAD_PASSWORDS, AuthClient, DaemonTestCase,
                     make_config, passwd_line, require_binaries, write_file)

LOADGEN = os.path.join(BUILD_DIR, "tests", "bench", "loadgen")
IDLE_CONNECTIONS = 10_000
MIXED_REQUESTS = int(os.environ.get("POSTERN_LOAD_REQUESTS", "1000000"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return True
    if hard < want and os.geteuid() == 0:
        hard = max(hard, want)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    except (ValueError, OSError):
        return False
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want


def parse_result(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    raise AssertionError(f"no RESULT line from loadgen:\n{out}")


@require_binaries
@unittest.skipUnless(os.access(LOADGEN, os.X_OK), "tests/bench/loadgen not built")
class LoadFaultTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.users = self.path("users")
        self.write_users(self.users)
        self.creds = self.path("loadgen-users")
        write_file(self.creds, "".join(f"load{i:03d}:{pw}\n" for i, pw in enumerate(LOAD_PASSWORDS)))
        self.sock = self.path("auth")
        self.nofile_ok = raise_nofile(IDLE_CONNECTIONS + 200)   # inherited by the daemon
        # Warnings only: a million "auth: result=" lines would be the test's bottleneck.
        self.daemon = self.start_daemon(make_config(self.sock, self.users, level="warning"))

    def write_users(self, path, extra="", mode=0o644):
        text = "".join(passwd_line(f"load{i:03d}", "{PLAIN}" + pw) for i, pw in enumerate(LOAD_PASSWORDS))
        text += passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) + extra
        tmp = path + ".tmp"
        write_file(tmp, text, mode)
        os.rename(tmp, path)

    def loadgen(self, *args, timeout=120):
        cmd = [LOADGEN, "--socket", self.sock, "--users", self.creds, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return proc, parse_result(proc.stdout)

    def start_loadgen(self, *args):
        cmd = [LOADGEN, "--socket", self.sock, "--users", self.creds, *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def assert_clean(self, proc, r, label):
        msg = f"{label}: {r}\nstderr: {proc.stderr[-2000:]}"
        self.assertEqual(r["wrong_ok"], "0", msg)
        self.assertEqual(r["unexpected"], "0", msg)
        self.assertEqual(r["errors"], "0", msg)
        self.assertEqual(r["answered"], r["sent"], msg)   # no lost replies
        self.assertEqual(proc.returncode, 0, msg)
        self.assertTrue(self.daemon.alive())

    def assert_serves(self):
        c = self.connect(self.sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(timeout=10), 1, "alice")

    def test_ten_thousand_idle_connections(self):
        if not self.nofile_ok:
            self.skipTest("cannot raise RLIMIT_NOFILE for 10,000 sockets")
        pid = self.daemon.proc.pid
        base_rss = rss_kib(pid)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        start = time.monotonic()
        hello = f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode()
        for _ in range(IDLE_CONNECTIONS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.sock)      # blocking: waits while the backlog is full
            s.settimeout(10)
            s.sendall(hello)
            socks.append(s)
        # Every one got its handshake (read the first bytes of each).
        for s in socks:
            self.assertTrue(s.recv(16).startswith(b"VERSION"))
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 20
        while open_fds(pid) < IDLE_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreaterEqual(open_fds(pid), IDLE_CONNECTIONS)
        rss = rss_kib(pid)
        print(f"\n  {IDLE_CONNECTIONS} idle connections in {elapsed:.1f} s: daemon RSS {rss / 1024:.1f} MiB "
              f"(idle daemon {base_rss / 1024:.1f} MiB, {(rss - base_rss) * 1024 / IDLE_CONNECTIONS:.0f} "
              "bytes per connection)", end=" ")
        # Still serving: a new client, and some of the idle ones.
        self.assert_serves()
        for i, s in enumerate(socks[::1000], start=1):
            s.sendall(f"AUTH\t{i}\tPLAIN\tservice=smtp\tnologin\tresp=".encode() +
                      __import__("base64").b64encode(b"\0alice\0" + ALICE_PASSWORD.encode()) + b"\n")
            data = b""
            while f"OK\t{i}\t".encode() not in data:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk

    def test_million_mixed_requests(self):
        start = time.monotonic()
        proc, r = self.loadgen("--mix", "--requests", str(MIXED_REQUESTS),
                               "--connections", "16", "--inflight", "64", timeout=600)
        elapsed = time.monotonic() - start
        print(f"\n  {r['requests']} mixed requests (good/wrong/unknown/bad base64/malformed) in "
              f"{elapsed:.1f} s: {float(r['auths_per_s']):.0f}/s, ok {r['ok']}, fail {r['fail']}, "
              f"wrong OK {r['wrong_ok']}, lost {int(r['sent']) - int(r['answered'])}, "
              f"p99 {r['p99_ms']} ms", end=" ")
        self.assert_clean(proc, r, "mixed load")
        self.assertEqual(int(r["requests"]), MIXED_REQUESTS)
        self.assertEqual(int(r["ok"]), (MIXED_REQUESTS + 4) // 5)

    def test_slow_loris_clients(self):
        # 50 clients that send their handshake one byte a second: closed when
        # the handshake timeout ends (1 s here), while a normal client is
        # served at normal speed throughout.
        self.daemon.stop()
        self.daemon = self.start_daemon(
            make_config(self.sock, self.users, level="warning").replace(
                "[auth]\n", "[auth]\nhandshake_timeout = 2\n"), name="loris")
        hello = b"VERSION\t1\t2\nCPID\t1\n"
        loris = []
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.sock)
            s.setblocking(False)
            loris.append(s)
        self.addCleanup(lambda: [s.close() for s in loris])
        closed = set()
        worst = 0.0
        start = time.monotonic()
        for second in range(6):
            for i, s in enumerate(loris):
                if i in closed:
                    continue
                try:
                    s.send(hello[second:second + 1])
                    while True:
                        if not s.recv(65536):
                            closed.add(i)
                            break
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed.add(i)
            t0 = time.monotonic()
            self.assert_serves()
            worst = max(worst, time.monotonic() - t0)
            time.sleep(max(0, start + second + 1 - time.monotonic()))
        print(f"\n  50 slow-loris clients: {len(closed)} closed by the handshake timeout; "
              f"normal client worst latency {worst * 1000:.0f} ms", end=" ")
        self.assertEqual(len(closed), 50)
        self.assertLess(worst, 1.0)

    def test_clients_vanishing_mid_exchange(self):
        pid = self.daemon.proc.pid
        baseline = open_fds(pid)
        payload = __import__("base64").b64encode(b"\0alice\0" + ALICE_PASSWORD.encode()).decode()
        for i in range(300):
            c = AuthClient(self.sock)
            kind = i % 5
            if kind == 0:      # gone before the handshake
                pass
            elif kind == 1:    # gone with a request in flight
                c.handshake()
                c.send(f"AUTH\t1\tPLAIN\tservice=smtp\tresp={payload}\n")
            elif kind == 2:    # gone while a LOGIN waits for its continuation
                c.handshake()
                c.send("AUTH\t1\tLOGIN\tservice=smtp\n")
            elif kind == 3:    # gone in the middle of a line
                c.handshake()
                c.send("AUTH\t1\tPLAIN\tserv")
            else:              # reset instead of a close
                c.handshake()
                c.send(f"AUTH\t1\tPLAIN\tservice=smtp\tresp={payload}\n")
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            c.close()
        deadline = time.monotonic() + 10
        while open_fds(pid) > baseline + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"\n  300 vanished clients: daemon fds {open_fds(pid)} (baseline {baseline})", end=" ")
        self.assertLessEqual(open_fds(pid), baseline + 2)
        self.assert_serves()

    def run_with_faults(self, faults, *loadgen_args):
        """Runs the mixed load for 6 s while faults() runs; returns the result."""
        proc = self.start_loadgen("--mix", "--duration", "6", "--warmup", "0",
                                  "--connections", "8", "--inflight", "32", *loadgen_args)
        try:
            time.sleep(0.5)
            faults()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        proc.stdout_text, proc.stderr = out, err
        return proc, parse_result(out)

    def test_passdb_dies_and_recovers_under_load(self):
        backup = self.path("users.backup")

        def faults():
            os.rename(self.users, backup)          # removed
            time.sleep(1.5)
            os.rename(backup, self.users)
            time.sleep(1.5)
            self.write_users(self.users, mode=0o000)   # unreadable for the daemon
            time.sleep(1.5)
            os.chmod(self.users, 0o644)                # fixed in place: same file, same stamp
        proc, r = self.run_with_faults(faults, "--tempfail-ok")
        print(f"\n  passdb removed then unreadable under load: {r['requests']} requests, "
              f"{r['temp_fail']} temp-fail, ok {r['ok']}, wrong OK {r['wrong_ok']}", end=" ")
        self.assert_clean(proc, r, "passdb faults")
        self.assertGreater(int(r["temp_fail"]), 0, "the outage was never seen")
        # Recovered: every good request succeeds again.
        time.sleep(1.2)
        proc, r = self.loadgen("--requests", "2000", "--connections", "4", "--inflight", "8")
        self.assert_clean(proc, r, "after recovery")
        self.assertEqual(r["temp_fail"], "0")
        self.assertIn("cannot", self.daemon.stderr())

    def test_passdb_stalls_under_load(self):
        # The users file is replaced by a FIFO: the reload blocks in the pool
        # while requests go on being answered from the table already loaded;
        # feeding the FIFO completes the reload.
        fifo = self.path("users.fifo")
        os.mkfifo(fifo, 0o644)
        saved = self.path("users.saved")
        os.link(self.users, saved)
        content = open(self.users, encoding="utf-8").read()

        def faults():
            os.rename(fifo, self.users)
            os.kill(self.daemon.proc.pid, signal.SIGHUP)
            time.sleep(2.5)
            # Unblock the stalled reader with the same data, then restore the file.
            with open(self.users, "w", encoding="utf-8") as f:
                f.write(content)
            os.rename(saved, self.users)
        proc, r = self.run_with_faults(faults, "--tempfail-ok")
        print(f"\n  passdb stalled 2.5 s under load: {r['requests']} requests, {r['temp_fail']} temp-fail, "
              f"wrong OK {r['wrong_ok']}, max latency {r['max_ms']} ms", end=" ")
        self.assert_clean(proc, r, "passdb stall")
        # Answered from the table already loaded; nobody waits for the stalled read.
        self.assertEqual(r["temp_fail"], "0")
        self.assertLess(float(r["max_ms"]), 2000)

    def test_sighup_reload_under_load(self):
        # Reloads every 100 ms, each a complete new file put in place by
        # rename: every reply is right (no temp-fail, no wrong answer, no
        # dropped connection) whatever version answered it.
        stop = threading.Event()
        reloads = [0]

        def reloader():
            n = 0
            while not stop.is_set():
                n += 1
                self.write_users(self.users, extra=passwd_line(f"canary{n}", "{PLAIN}x" * 1))
                os.kill(self.daemon.proc.pid, signal.SIGHUP)
                reloads[0] += 1
                time.sleep(0.1)

        def faults():
            t = threading.Thread(target=reloader, daemon=True)
            t.start()
            time.sleep(5)
            stop.set()
            t.join(5)
        proc, r = self.run_with_faults(faults)
        print(f"\n  {reloads[0]} SIGHUP reloads under load: {r['requests']} requests, "
              f"unexpected {r['unexpected']}, errors {r['errors']}", end=" ")
        self.assert_clean(proc, r, "SIGHUP reloads")
        self.assertEqual(r["temp_fail"], "0")
        self.assertGreater(reloads[0], 20)


if __name__ == "__main__":
    unittest.main()
