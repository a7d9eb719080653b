# The saslauthd-protocol listener: the real testsaslauthd (sasl2-bin) as a
# client, and raw sockets for the malformed cases (auth-protocol.md §5).

import os
import socket
import struct
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, TESTSASLAUTHD, WRONG_PASSWORD, DaemonTestCase, passwd_line,
                     require_binaries, toml_str, write_file)


def counted(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def saslauthd_config(mux, users, request_timeout=150, failure_delay=0):
    return "\n".join([
        "[log]", 'level = "debug"', "",
        "[auth]", f"failure_delay = {failure_delay}", f"request_timeout = {request_timeout}", "",
        "[[listener]]", 'type = "unix"', f"path = {toml_str(mux)}", 'mode = "0666"',
        'role = "saslauthd"', "",
        "[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""])


def raw_exchange(path, payload, shutdown=True, timeout=5):
    """Sends payload, returns (reply bytes, closed by server)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        if payload:
            s.sendall(payload)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    finally:
        s.close()


@require_binaries
class SaslauthdListenerTest(DaemonTestCase):

    def start(self, **kw):
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("carol@example.com", "{PLAIN}" + ALICE_PASSWORD))
        self.mux = self.path("mux")
        return self.start_daemon(saslauthd_config(self.mux, users, **kw))

    def run_testsaslauthd(self, user, password, *args):
        p = subprocess.run([TESTSASLAUTHD, "-u", user, "-p", password, "-f", self.mux, *args],
                           capture_output=True, text=True, timeout=30)
        return p.stdout.strip()

    @unittest.skipUnless(TESTSASLAUTHD, "testsaslauthd not installed (package sasl2-bin)")
    def test_real_testsaslauthd(self):
        d = self.start()
        self.assertEqual(self.run_testsaslauthd("alice", ALICE_PASSWORD), '0: OK "Success."')
        self.assertEqual(self.run_testsaslauthd("alice", WRONG_PASSWORD),
                         '0: NO "authentication failed"')
        self.assertEqual(self.run_testsaslauthd("nobody-here", WRONG_PASSWORD),
                         '0: NO "authentication failed"')
        # The realm is joined back to the login: carol@example.com.
        self.assertEqual(self.run_testsaslauthd("carol", ALICE_PASSWORD, "-r", "example.com",
                                            "-s", "smtp"), '0: OK "Success."')
        self.assertEqual(self.run_testsaslauthd("alice", ALICE_PASSWORD, "-R", "3"),
                         '0: OK "Success."\n1: OK "Success."\n2: OK "Success."')
        # The auth-client result line; no remote address on this protocol.
        self.assertIn('user="carol@example.com" service=smtp rip=- mech=saslauthd', d.stderr())

    def test_raw_ok_and_empty_password(self):
        self.start()
        reply, closed = raw_exchange(self.mux, counted("alice") + counted(ALICE_PASSWORD) +
                                     counted("imap") + counted(""))
        self.assertEqual(reply, b"\x00\x02OK")
        self.assertTrue(closed)
        reply, _ = raw_exchange(self.mux, counted("alice") + counted("") + counted("imap") +
                                counted(""))
        self.assertTrue(reply.startswith(b"\x00") and reply[2:4] == b"NO", reply)

    def test_overlong_field_gets_no_and_close(self):
        d = self.start()
        reply, closed = raw_exchange(self.mux, counted("a" * 257) + counted("x") * 3)
        self.assertEqual(reply, b"\x00\x02NO")
        self.assertTrue(closed)
        # A 256-byte field is still accepted (and just fails).
        reply, _ = raw_exchange(self.mux, counted("a" * 256) + counted(WRONG_PASSWORD) +
                                counted("imap") + counted(""))
        self.assertEqual(reply[2:4], b"NO")
        self.assertIn("field longer than 256 bytes", d.stderr())

    def test_truncated_length_prefix_closes_without_reply(self):
        d = self.start()
        reply, closed = raw_exchange(self.mux, counted("alice") + b"\x00")
        self.assertEqual(reply, b"")
        self.assertTrue(closed)
        reply, closed = raw_exchange(self.mux, counted("alice") + b"\x00\x10short")
        self.assertEqual(reply, b"")
        self.assertTrue(closed)
        self.assertIn("truncated request", d.stderr())
        self.assertTrue(d.alive())

    def test_silent_client_is_closed_at_the_deadline(self):
        d = self.start(request_timeout=1)
        started = time.monotonic()
        reply, closed = raw_exchange(self.mux, b"", shutdown=False, timeout=10)
        self.assertTrue(closed, "server kept a silent connection open")
        self.assertEqual(reply, b"")
        self.assertLess(time.monotonic() - started, 9)
        self.assertIn("no request before the deadline", d.stderr())
        # And the listener still serves.
        reply, _ = raw_exchange(self.mux, counted("alice") + counted(ALICE_PASSWORD) +
                                counted("imap") + counted(""))
        self.assertEqual(reply, b"\x00\x02OK")

    def test_temporary_failure_is_not_a_wrong_password(self):
        self.start()
        os.unlink(self.path("users"))
        time.sleep(1.1)  # passwd-file re-checks once per second
        reply, _ = raw_exchange(self.mux, counted("alice") + counted(ALICE_PASSWORD) +
                                counted("imap") + counted(""))
        self.assertEqual(reply[2:], b"NO temporary failure")


if __name__ == "__main__":
    unittest.main()
