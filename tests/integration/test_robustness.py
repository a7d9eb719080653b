# Hostile and malformed input on the auth-client socket: broken AUTH lines,
# line-length limit, NUL bytes, nasty user names (auth-protocol.md 2, 3.2-3.4).

import unittest

from harness import (ALICE_PASSWORD, LONGNAME_PASSWORD, SLOW_PASSWORD, AuthClient,
                     DaemonTestCase, b64, fields_dict, passwd_line, plain_payload,
                     register_secret, require_binaries, sha512_crypt)

MAX_LINE = 16384
LONG_NAME_256 = "n" * 256
LONG_NAME_257 = "m" * 257


@require_binaries
class MalformedCommandTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def assert_closes(self, *lines, raw=None):
        c = self.connect(self.sock)
        if raw is not None:
            c.send(raw)
        for line in lines:
            c.send(line + "\n")
        self.assertTrue(c.wait_closed(), f"connection not closed after {lines or raw!r}")
        self.assertFalse(any(l.startswith("OK") for l in c.lines_before_close),
                         c.lines_before_close)
        self.assert_still_serves()

    def assert_still_serves(self):
        c = self.connect(self.sock)
        c.auth_plain(99, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 99, "alice")

    def resp(self):
        return "resp=" + b64(plain_payload("alice", ALICE_PASSWORD))

    def test_auth_without_service_closes(self):
        self.assert_closes(f"AUTH\t1\tPLAIN\tnologin\t{self.resp()}")

    def test_resp_not_last_closes(self):
        self.assert_closes(f"AUTH\t1\tPLAIN\t{self.resp()}\tservice=smtp")

    def test_id_zero_closes(self):
        self.assert_closes(f"AUTH\t0\tPLAIN\tservice=smtp\t{self.resp()}")

    def test_id_not_numeric_closes(self):
        self.assert_closes(f"AUTH\tabc\tPLAIN\tservice=smtp\t{self.resp()}")

    def test_id_negative_closes(self):
        self.assert_closes(f"AUTH\t-1\tPLAIN\tservice=smtp\t{self.resp()}")

    def test_id_too_big_closes(self):
        self.assert_closes(f"AUTH\t4294967296\tPLAIN\tservice=smtp\t{self.resp()}")

    def test_auth_missing_mechanism_closes(self):
        self.assert_closes("AUTH\t1")

    def test_in_flight_id_reused_closes(self):
        # id 1 waits for its continuation, so it is still in flight.
        self.assert_closes("AUTH\t1\tPLAIN\tservice=smtp",
                           f"AUTH\t1\tPLAIN\tservice=smtp\t{self.resp()}")

    def test_unknown_command_closes_or_is_ignored(self):
        # Dovecot closes on unknown commands; either way nothing must break.
        c = self.connect(self.sock)
        c.send("FROBNICATE\t1\n")
        c.wait_closed(timeout=1)
        self.assert_still_serves()

    def test_overlong_line_closes_only_that_connection(self):
        other = self.connect(self.sock)
        c = self.connect(self.sock)
        try:
            c.send("AUTH\t1\tPLAIN\tservice=smtp\tsession=" + "A" * (MAX_LINE + 100) + "\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.wait_closed())
        other.auth_plain(2, "alice", ALICE_PASSWORD)
        self.assert_ok(other.reply(), 2, "alice")
        self.assert_still_serves()

    def test_overlong_line_without_newline_closes(self):
        c = self.connect(self.sock)
        try:
            c.send("X" * (MAX_LINE * 4))
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.wait_closed())
        self.assert_still_serves()

    def test_line_just_under_limit_accepted(self):
        c = self.connect(self.sock)
        head = "AUTH\t1\tPLAIN\tservice=smtp\tsession="
        tail = "\t" + self.resp()
        pad = MAX_LINE - 200 - len(head) - len(tail)
        c.send(head + "s" * pad + tail + "\n")
        self.assert_ok(c.reply(), 1, "alice")

    def test_nul_byte_in_line_closes(self):
        self.assert_closes(raw=f"AUTH\t1\tPLAIN\tservice=smtp\tsession=a\0b\t{self.resp()}\n")

    def test_escaped_control_characters_in_values_accepted(self):
        c = self.connect(self.sock)
        c.send(f"AUTH\t1\tPLAIN\tservice=smtp\tsession=a\x01tb\x01nc\x01rd\x011e\x010f"
               f"\tclient_id=\x01x\x01\t{self.resp()}\n")
        self.assert_ok(c.reply(), 1, "alice")

    def test_cr_before_lf_is_stripped(self):
        c = self.connect(self.sock)
        c.send(f"AUTH\t1\tPLAIN\tservice=smtp\t{self.resp()}\r\n")
        self.assert_ok(c.reply(), 1, "alice")

    def test_cancel_then_reuse_id(self):
        c = self.connect(self.sock)
        c.auth(1, "PLAIN")
        self.assertEqual(c.reply(), ["CONT", "1", ""])
        c.send_line("CANCEL", "1")
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_garbage_resp_payloads_fail(self):
        c = self.connect(self.sock)
        payloads = [b"\0", b"\0\0", b"alice", b"\0alice", b"alice\0" + ALICE_PASSWORD.encode(),
                    b"\0alice\0" + ALICE_PASSWORD.encode() + b"\0extra",
                    b"\xff\xfe\0\xff\0\xff", b"\0" * 5000]
        for i, p in enumerate(payloads, start=1):
            c.auth(i, "PLAIN", resp=b64(p))
        for i in range(1, len(payloads) + 1):
            fields = c.reply_for(i)
            self.assert_fail(fields, i)
        self.assert_still_serves()

    def test_disconnect_with_requests_in_flight(self):
        for _ in range(5):
            c = AuthClient(self.sock)
            c.handshake()
            c.auth(1, "PLAIN")
            c.auth(2, "LOGIN")
            c.auth_plain(3, "alice", ALICE_PASSWORD)
            c.close()
        self.assert_still_serves()
        self.assertTrue(self.daemon.alive())


@require_binaries
class UnexpectedContinuationTest(DaemonTestCase):

    def test_cont_while_password_is_being_checked(self):
        # A deliberately slow SHA512-CRYPT hash keeps the request busy in the
        # passdb while the pipelined CONT arrives: no challenge is pending.
        slow = sha512_crypt(SLOW_PASSWORD, rounds=2_000_000)
        register_secret(slow)
        if not slow:
            self.skipTest("cannot make a SHA512-CRYPT hash (no crypt module, no doveadm)")
        daemon, sock = self.start_standard(
            extra_users=passwd_line("slow", "{SHA512-CRYPT}" + slow))
        c = self.connect(sock)
        c.send(f"AUTH\t1\tPLAIN\tservice=smtp\tresp={b64(plain_payload('slow', SLOW_PASSWORD))}\n"
               f"CONT\t1\t{b64('x')}\n")
        first = c.reply_for(1, timeout=30)
        self.assertEqual(first, ["FAIL", "1", "reason=Unexpected continuation"])
        c.auth_plain(2, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply_for(2, timeout=30), 2, "alice")


@require_binaries
class UserNameTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        extra = (passwd_line(LONG_NAME_256, "{PLAIN}" + LONGNAME_PASSWORD) +
                 passwd_line(LONG_NAME_257, "{PLAIN}" + LONGNAME_PASSWORD) +
                 passwd_line("emptypw", "{PLAIN}"))
        self.daemon, self.sock = self.start_standard(extra_users=extra)
        self.c = self.connect(self.sock)

    def test_hostile_user_names_never_succeed(self):
        names = [b"alice\t", b"al\tice", b"alice\n", b"alice\r", b"alice\x01",
                 b"\x01alice", b"alice\x01t", b"al\x00ice",
                 b"alice' OR '1'='1", b"alice\"; DROP TABLE users; --", b"alice%",
                 b"alice%u", b"alice\\", b"alice'--", b"*", b"%", b"alice;", b"../alice",
                 b"alice\xff", b"alice:", b"alice:x:0:0",
                 b"\xc3\x28", b" alice", b"alice "]
        for i, name in enumerate(names, start=1):
            self.c.auth(i, "PLAIN", resp=b64(b"\0" + name + b"\0" + ALICE_PASSWORD.encode()))
        for i, name in enumerate(names, start=1):
            fields = self.c.reply_for(i)
            self.assertEqual(fields[:2], ["FAIL", str(i)], f"{name!r}: {fields}")
            for f in fields:
                self.assertNotIn("\n", f)
                self.assertNotIn("\r", f)
        self.c.auth_plain(100, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 100, "alice")
        self.assertTrue(self.daemon.alive())

    def test_name_with_256_bytes_accepted(self):
        self.c.auth_plain(1, LONG_NAME_256, LONGNAME_PASSWORD)
        self.assert_ok(self.c.reply(), 1, LONG_NAME_256)

    def test_name_longer_than_256_bytes_fails(self):
        self.c.auth_plain(1, LONG_NAME_257, LONGNAME_PASSWORD)
        self.assert_fail(self.c.reply(), 1)

    def test_huge_name_fails(self):
        self.c.auth_plain(1, "h" * 10000, LONGNAME_PASSWORD)
        self.assert_fail(self.c.reply(), 1)

    def test_empty_password_fails_even_if_stored_empty(self):
        self.c.auth_plain(1, "emptypw", "")
        self.assert_fail(self.c.reply(), 1)
        self.c.auth_plain(2, "alice", "")
        self.assert_fail(self.c.reply(), 2)

    def test_empty_user_fails(self):
        self.c.auth_plain(1, "", ALICE_PASSWORD)
        self.assert_fail(self.c.reply(), 1)

    def test_login_mech_hostile_user(self):
        self.c.auth(1, "LOGIN", resp=b64(b"ali\tce"))
        f = self.c.reply()
        if f[0] == "CONT":
            self.c.send_line("CONT", "1", b64(ALICE_PASSWORD))
            f = self.c.reply()
        self.assert_fail(f, 1)

    def test_fail_reply_user_field_escaped(self):
        # Unknown user with a TAB: if user= is echoed it must be escaped, so
        # the reply still splits into key=value fields only.
        self.c.auth(1, "PLAIN", resp=b64(b"\0bad\tname\0" + ALICE_PASSWORD.encode()))
        fields = self.c.reply()
        self.assert_fail(fields, 1)
        for f in fields[2:]:
            key = f.partition("=")[0]
            self.assertRegex(key, r"^[a-z_]+$", fields)
        self.assertTrue(set(fields_dict(fields)) <= {"user", "code", "reason", "nodelay"},
                        fields)


if __name__ == "__main__":
    unittest.main()
