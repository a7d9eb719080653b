# The limits, each enforced: master line length, requests in flight per
# connection, connections per listener, pending hashing jobs, the handshake
# timeout (auth-client and master sockets) and the per-request timeout across
# the passdb chain. (The auth-client line limit is in test_robustness.py.)

import os
import socket
import threading
import time
import unittest

from harness import (ALICE_PASSWORD, BOB_PASSWORD, AuthClient, DaemonTestCase, b64, make_config,
                     passwd_line, plain_payload, register_secret, require_binaries, sha512_crypt,
                     toml_str, write_file)

MAX_REQUESTS_PER_CONNECTION = 1024   # server::kMaxRequestsPerConnection
MASTER_MAX_LINE = 1024               # server::kMasterMaxLine


def master_listener(path, role="master"):
    return ("\n[[listener]]\ntype = \"unix\"\n"
            f"path = {toml_str(path)}\nmode = \"0600\"\nrole = \"{role}\"\n")


class MasterConn:
    def __init__(self, path, timeout=5):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def closed_within(self, timeout):
        """True if the server closes within timeout (data before EOF is read and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False


@require_binaries
class LimitsTest(DaemonTestCase):

    def test_master_line_longer_than_limit_closes(self):
        users = self.standard_users()
        msock = self.path("master")
        self.start_daemon(make_config(self.path("auth"), users) + master_listener(msock))
        m = MasterConn(msock)
        self.addCleanup(m.sock.close)
        m.sock.sendall(b"VERSION\t1\t0\n")
        m.sock.sendall(b"USER\t1\talice\tservice=imap\tsession=" + b"x" * MASTER_MAX_LINE + b"\n")
        self.assertTrue(m.closed_within(5))
        # A line within the limit is served.
        m2 = MasterConn(msock)
        self.addCleanup(m2.sock.close)
        m2.sock.sendall(b"VERSION\t1\t0\nUSER\t2\talice\tservice=imap\tsession=" + b"y" * 900 + b"\n")
        data = b""
        while b"USER\t2\t" not in data:
            chunk = m2.sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk

    def test_requests_in_flight_per_connection(self):
        _, sock = self.start_standard()
        c = self.connect(sock)
        # LOGIN without an initial response waits for the user name: each
        # request stays in flight.
        c.send("".join(f"AUTH\t{i}\tLOGIN\tservice=smtp\n"
                       for i in range(1, MAX_REQUESTS_PER_CONNECTION + 1)))
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            self.assertEqual(c.reply(timeout=10)[0], "CONT")
        c.send(f"AUTH\t{MAX_REQUESTS_PER_CONNECTION + 1}\tLOGIN\tservice=smtp\n")
        self.assertTrue(c.wait_closed(5))
        self.assertEqual(c.lines_before_close, [])
        other = self.connect(sock)
        other.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(other.reply(), 1, "alice")

    def test_connections_per_listener(self):
        users = self.standard_users()
        sock = self.path("auth")
        conf = make_config(sock, users).replace('role = "client"', 'role = "client"\nmax_connections = 5')
        self.start_daemon(conf)
        held = [self.connect(sock) for _ in range(5)]
        for c in held:
            c.auth_plain(1, "alice", ALICE_PASSWORD)
            self.assert_ok(c.reply(), 1, "alice")
        extra = AuthClient(sock)
        self.addCleanup(extra.close)
        self.assertTrue(extra.wait_closed(5), "sixth connection not refused")
        self.assertEqual(extra.lines_before_close, [])
        held[0].close()
        deadline = time.monotonic() + 5
        while True:   # the slot comes free once the server saw the close
            c = AuthClient(sock)
            self.addCleanup(c.close)
            try:
                c.handshake()
                c.auth_plain(2, "alice", ALICE_PASSWORD)
                self.assert_ok(c.reply(), 2, "alice")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def test_pending_hashing_jobs_over_limit_temp_fail_at_once(self):
        slow = sha512_crypt(BOB_PASSWORD, rounds=400_000)
        if not slow:
            self.skipTest("cannot make a SHA512-CRYPT hash")
        register_secret(slow)
        users = self.path("users")
        write_file(users, passwd_line("slowbob", "{SHA512-CRYPT}" + slow))
        conf = "[daemon]\nhash_threads = 1\nhash_queue_max = 2\n" + make_config(self.path("auth"), users)
        self.start_daemon(conf)
        c = self.connect(self.path("auth"))
        n = 12
        start = time.monotonic()
        lines = [f"AUTH\t{i}\tPLAIN\tservice=smtp\tnologin\tresp={b64(plain_payload('slowbob', BOB_PASSWORD))}\n"
                 for i in range(1, n + 1)]
        # The first job reaches the hashing thread before the others queue up.
        c.send(lines[0])
        time.sleep(0.2)
        c.send("".join(lines[1:]))
        temp_at = []
        results = {}
        for _ in range(n):
            fields = c.reply(timeout=120)
            results[fields[1]] = fields
            if fields[0] == "FAIL":
                self.assertIn("code=temp_fail", fields, fields)   # never a plain failure
                temp_at.append(time.monotonic() - start)
        self.assertEqual(len(results), n)
        self.assertTrue(temp_at, "no request was refused although the queue holds 2")
        oks = [f for f in results.values() if f[0] == "OK"]
        self.assertGreaterEqual(len(oks), 3)   # one running + two queued
        # Refused at once, not after waiting for the queue.
        self.assertLess(min(temp_at), 1.0, temp_at)
        print(f"\n  hashing queue 1 thread + 2 queued: {len(oks)} OK, {len(temp_at)} temp-fail, "
              f"first temp-fail after {min(temp_at) * 1000:.0f} ms", end=" ")

    def test_handshake_timeout_auth_client(self):
        users = self.standard_users()
        sock = self.path("auth")
        self.start_daemon(make_config(sock, users).replace("[auth]\n", "[auth]\nhandshake_timeout = 1\n"))
        silent = AuthClient(sock)
        self.addCleanup(silent.close)
        half = AuthClient(sock)
        self.addCleanup(half.close)
        half.read_handshake()
        half.send_line("VERSION", "1", "2")     # never sends CPID
        done = self.connect(sock)                # finishes its handshake
        start = time.monotonic()
        self.assertTrue(silent.wait_closed(5))
        self.assertTrue(half.wait_closed(5))
        self.assertLess(time.monotonic() - start, 4)
        time.sleep(1.5)
        done.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(done.reply(), 1, "alice")

    def test_handshake_timeout_master(self):
        users = self.standard_users()
        msock = self.path("master")
        conf = make_config(self.path("auth"), users).replace("[auth]\n", "[auth]\nhandshake_timeout = 1\n")
        self.start_daemon(conf + master_listener(msock))
        silent = MasterConn(msock)
        self.addCleanup(silent.sock.close)
        self.assertTrue(silent.closed_within(5))
        ok = MasterConn(msock)
        self.addCleanup(ok.sock.close)
        ok.sock.sendall(b"VERSION\t1\t0\n")
        self.assertFalse(ok.closed_within(2))

    def test_request_timeout_covers_a_stalled_passdb(self):
        # The users "file" is a FIFO nobody writes to: loading it blocks a
        # pool thread. The request is answered with a temporary failure after
        # request_timeout, not left hanging; once data arrives it recovers.
        users = self.path("users")
        os.mkfifo(users, 0o644)
        sock = self.path("auth")
        conf = make_config(sock, users).replace("[auth]\n", "[auth]\nrequest_timeout = 1\n")
        self.start_daemon(conf)
        c = self.connect(sock)
        start = time.monotonic()
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        fields = c.reply(timeout=10)
        elapsed = time.monotonic() - start
        self.assertEqual(fields[:2], ["FAIL", "1"], fields)
        self.assertIn("code=temp_fail", fields)
        self.assertLess(elapsed, 3.5)

        def feed():
            with open(users, "w", encoding="utf-8") as f:
                f.write(passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        t = threading.Thread(target=feed, daemon=True)
        t.start()
        t.join(10)
        # Replace the FIFO by a regular file so later checks read it too.
        tmp = self.path("users.new")
        write_file(tmp, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        os.chmod(tmp, 0o644)
        os.rename(tmp, users)
        deadline = time.monotonic() + 10
        req = 2
        while True:
            c.auth_plain(req, "alice", ALICE_PASSWORD)
            fields = c.reply_for(req, timeout=10)
            if fields[0] == "OK":
                break
            self.assertIn("code=temp_fail", fields)
            self.assertLess(time.monotonic(), deadline, "no recovery after the passdb came back")
            req += 1
            time.sleep(0.3)


if __name__ == "__main__":
    unittest.main()
