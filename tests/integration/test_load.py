# Many requests at once (one connection, many connections) and the failure
# delay. Only a lower bound on the delay is asserted; no speed assertions.

import threading
import time
import unittest

from harness import (ALICE_PASSWORD, WRONG_PASSWORD, AuthClient, DaemonTestCase, b64,
                     bob_password, plain_payload, require_binaries)

N = 50
SLACK = 0.05


def expected_for(i):
    """Request i: alice right (OK), alice wrong, unknown user, bob right (crypt)."""
    kind = i % 4
    if kind == 0:
        return "alice", ALICE_PASSWORD, "OK"
    if kind == 1:
        return "alice", WRONG_PASSWORD, "FAIL"
    if kind == 2:
        return f"ghost{i}", WRONG_PASSWORD, "FAIL"
    return "bob", bob_password(), "OK"


@require_binaries
class ConcurrencyTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def test_many_requests_in_flight_on_one_connection(self):
        c = self.connect(self.sock)
        lines = []
        for i in range(1, N + 1):
            user, pw, _ = expected_for(i)
            lines.append(f"AUTH\t{i}\tPLAIN\tservice=smtp\tnologin\t"
                         f"resp={b64(plain_payload(user, pw))}\n")
        c.send("".join(lines))
        replies = {}
        for _ in range(N):
            fields = c.reply(timeout=30)
            self.assertNotIn(fields[1], replies, f"second reply for id {fields[1]}")
            replies[fields[1]] = fields
        self.assertEqual(set(replies), {str(i) for i in range(1, N + 1)})
        for i in range(1, N + 1):
            user, _, want = expected_for(i)
            self.assertEqual(replies[str(i)][0], want, (i, replies[str(i)]))
            self.assertIn(f"user={user}", replies[str(i)], replies[str(i)])

    def test_many_connections(self):
        clients = []
        for _ in range(N):
            c = AuthClient(self.sock, timeout=30)
            self.addCleanup(c.close)
            clients.append(c)
        for c in clients:
            c.handshake()
        for i, c in enumerate(clients, start=1):
            user, pw, _ = expected_for(i)
            c.auth_plain(i, user, pw)
        for i, c in enumerate(clients, start=1):
            user, _, want = expected_for(i)
            fields = c.reply(timeout=30)
            self.assertEqual(fields[:2], [want, str(i)], fields)
            self.assertIn(f"user={user}", fields)

    def test_many_connections_from_threads(self):
        errors = []

        def worker(n):
            try:
                with AuthClient(self.sock, timeout=30) as c:
                    c.handshake(minor=n % 3)
                    for k in range(1, 5):
                        user, pw, want = expected_for(n + k)
                        c.auth_plain(k, user, pw)
                        fields = c.reply(timeout=30)
                        if fields[:2] != [want, str(k)]:
                            errors.append((n, k, fields))
            except Exception as e:   # collected and reported below
                errors.append((n, repr(e)))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertTrue(self.daemon.alive())


@require_binaries
class FailureDelayTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard(failure_delay=1)
        self.c = self.connect(self.sock)

    def timed(self, req_id, user, password):
        start = time.monotonic()
        self.c.auth_plain(req_id, user, password)
        fields = self.c.reply_for(req_id, timeout=15)
        return fields, time.monotonic() - start

    def test_wrong_password_delayed(self):
        fields, elapsed = self.timed(1, "alice", WRONG_PASSWORD)
        self.assertEqual(fields, ["FAIL", "1", "user=alice"])
        self.assertGreaterEqual(elapsed, 1.0 - SLACK)

    def test_unknown_user_delayed(self):
        fields, elapsed = self.timed(2, "nosuchuser", WRONG_PASSWORD)
        self.assertEqual(fields, ["FAIL", "2", "user=nosuchuser"])
        self.assertGreaterEqual(elapsed, 1.0 - SLACK)

    def test_ok_not_blocked_by_pending_failures(self):
        # A success is not held back behind the failures queued before it.
        self.c.auth_plain(1, "alice", WRONG_PASSWORD)
        self.c.auth_plain(2, "nosuchuser", WRONG_PASSWORD)
        self.c.auth_plain(3, "alice", ALICE_PASSWORD)
        first = self.c.reply(timeout=15)
        self.assertEqual(first[:2], ["OK", "3"], first)
        got = {self.c.reply(timeout=15)[1], self.c.reply(timeout=15)[1]}
        self.assertEqual(got, {"1", "2"})

    def test_concurrent_failures_each_delayed(self):
        start = time.monotonic()
        for i in range(1, 6):
            self.c.auth_plain(i, "alice", WRONG_PASSWORD)
        for _ in range(5):
            fields = self.c.reply(timeout=15)
            self.assertEqual(fields[0], "FAIL", fields)
            self.assertGreaterEqual(time.monotonic() - start, 1.0 - SLACK)


if __name__ == "__main__":
    unittest.main()
