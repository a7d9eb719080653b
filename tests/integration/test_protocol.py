# auth-client protocol behaviour of posternd over a real socket: handshake,
# AUTH/CONT/OK/FAIL, PLAIN and LOGIN (auth-protocol.md sections 3 and 6).

import os
import unittest

from harness import (ALICE_PASSWORD, HEX32, WRONG_PASSWORD, AuthClient, DaemonTestCase,
                     b64, bob_password, fields_dict, free_tcp_port, make_config,
                     plain_payload, require_binaries)

USERNAME_PROMPT = "VXNlcm5hbWU6"   # base64 "Username:"
PASSWORD_PROMPT = "UGFzc3dvcmQ6"   # base64 "Password:"


@require_binaries
class HandshakeTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def test_server_handshake_sent_without_waiting(self):
        with AuthClient(self.sock) as c:
            lines = c.read_handshake()   # nothing sent by us yet
        self.assertEqual(lines[0], "VERSION\t1\t2")
        self.assertEqual(lines[1], "MECH\tPLAIN\tplaintext")
        self.assertEqual(lines[2], "MECH\tLOGIN\tplaintext")
        self.assertEqual(lines[-1], "DONE")
        rest = [l.split("\t") for l in lines[3:-1]]
        self.assertEqual([f[0] for f in rest], ["SPID", "CUID", "COOKIE"], lines)
        self.assertEqual(rest[0], ["SPID", str(self.daemon.proc.pid)])
        self.assertTrue(rest[1][1].isdigit() and int(rest[1][1]) >= 1, rest[1])
        self.assertRegex(rest[2][1], HEX32)

    def test_mech_lines_before_spid(self):
        with AuthClient(self.sock) as c:
            kinds = [l.split("\t")[0] for l in c.read_handshake()]
        last_mech = max(i for i, k in enumerate(kinds) if k == "MECH")
        self.assertLess(last_mech, kinds.index("SPID"))

    def test_cuid_and_cookie_differ_per_connection(self):
        seen_cuid, seen_cookie = set(), set()
        for _ in range(3):
            with AuthClient(self.sock) as c:
                lines = dict(l.split("\t", 1) for l in c.read_handshake() if "\t" in l
                             and not l.startswith("MECH"))
            seen_cuid.add(lines["CUID"])
            seen_cookie.add(lines["COOKIE"])
        self.assertEqual(len(seen_cuid), 3)
        self.assertEqual(len(seen_cookie), 3)

    def test_minor_0_and_2_clients_authenticate(self):
        for minor in (0, 2):
            c = self.connect(self.sock, minor=minor)
            c.auth_plain(1, "alice", ALICE_PASSWORD)
            self.assert_ok(c.reply(), 1, "alice")

    def test_command_before_version_closes(self):
        with AuthClient(self.sock) as c:
            c.read_handshake()
            c.auth_plain(1, "alice", ALICE_PASSWORD)
            self.assertTrue(c.wait_closed())
            self.assertFalse(any(l.startswith("OK") for l in c.lines_before_close))

    def test_auth_before_cpid_closes(self):
        with AuthClient(self.sock) as c:
            c.read_handshake()
            c.send_line("VERSION", "1", "0")
            c.auth_plain(1, "alice", ALICE_PASSWORD)
            self.assertTrue(c.wait_closed())
            self.assertFalse(any(l.startswith("OK") for l in c.lines_before_close))

    def test_version_major_2_closes(self):
        with AuthClient(self.sock) as c:
            c.read_handshake()
            c.send_line("VERSION", "2", "0")
            c.send_line("CPID", str(os.getpid()))
            self.assertTrue(c.wait_closed())

    def test_cpid_zero_closes(self):
        with AuthClient(self.sock) as c:
            c.read_handshake()
            c.send_line("VERSION", "1", "0")
            c.send_line("CPID", "0")
            self.assertTrue(c.wait_closed())

    def test_cpid_not_a_number_closes(self):
        with AuthClient(self.sock) as c:
            c.read_handshake()
            c.send_line("VERSION", "1", "0")
            c.send_line("CPID", "abc")
            self.assertTrue(c.wait_closed())

    def test_pipelined_handshake_and_auth(self):
        # Postfix style: VERSION, CPID and AUTH in one write, before reading.
        with AuthClient(self.sock) as c:
            c.send("VERSION\t1\t0\nCPID\t4242\nAUTH\t9\tPLAIN\tservice=smtp\tresp="
                   + b64(plain_payload("alice", ALICE_PASSWORD)) + "\n")
            c.read_handshake()
            self.assert_ok(c.reply(), 9, "alice")


@require_binaries
class PlainTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()
        self.c = self.connect(self.sock)

    def test_plain_ok(self):
        self.c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assertEqual(self.c.reply(), ["OK", "1", "user=alice"])

    def test_plain_sha512_crypt_ok(self):
        self.c.auth_plain(2, "bob", bob_password())
        self.assert_ok(self.c.reply(), 2, "bob")

    def test_wrong_password_and_unknown_user_look_alike(self):
        self.c.auth_plain(1, "alice", WRONG_PASSWORD)
        wrong = self.c.reply_for(1)
        self.c.auth_plain(2, "nosuchuser", WRONG_PASSWORD)
        unknown = self.c.reply_for(2)
        self.assertEqual(wrong, ["FAIL", "1", "user=alice"])
        self.assertEqual(unknown, ["FAIL", "2", "user=nosuchuser"])

    def test_wrong_password_sha512_crypt(self):
        self.c.auth_plain(3, "bob", WRONG_PASSWORD)
        self.assertEqual(self.c.reply(), ["FAIL", "3", "user=bob"])

    def test_username_lowercased(self):
        self.c.auth_plain(1, "ALICE", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 1, "alice")

    def test_mechanism_name_case_insensitive(self):
        self.c.auth(4, "plain", resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(self.c.reply(), 4, "alice")
        self.c.auth(5, "PlAiN", resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(self.c.reply(), 5, "alice")

    def test_unknown_parameters_ignored(self):
        self.c.auth(6, "PLAIN", "nologin", "transport=x", "foo", "bar=baz=qux",
                    "session=abc", "lport=25", "rport=40000", "lip=not-an-ip",
                    resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(self.c.reply(), 6, "alice")

    def test_authzid_equal_to_authcid_ok(self):
        self.c.auth(7, "PLAIN", resp=b64(plain_payload("alice", ALICE_PASSWORD,
                                                       authzid="alice")))
        self.assert_ok(self.c.reply(), 7, "alice")

    def test_unknown_mechanism_fails_and_connection_stays(self):
        self.c.auth(8, "NO-SUCH-MECH", resp="")
        fields = self.c.reply()
        self.assert_fail(fields, 8)
        self.assertEqual(fields_dict(fields).get("code"), "auth_mech_invalid", fields)
        self.assertIn("reason", fields_dict(fields), fields)
        self.c.auth_plain(9, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 9, "alice")

    def test_minor0_empty_resp_means_no_initial_response(self):
        self.c.auth(10, "PLAIN", "nologin", resp="")
        self.assertEqual(self.c.reply(), ["CONT", "10", ""])
        self.c.send_line("CONT", "10", b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(self.c.reply(), 10, "alice")

    def test_no_resp_gives_empty_challenge(self):
        self.c.auth(11, "PLAIN")
        self.assertEqual(self.c.reply(), ["CONT", "11", ""])
        self.c.send_line("CONT", "11", b64(plain_payload("alice", WRONG_PASSWORD)))
        self.assertEqual(self.c.reply(), ["FAIL", "11", "user=alice"])

    def test_minor2_empty_resp_is_empty_data(self):
        c2 = self.connect(self.sock, minor=2)
        c2.auth(12, "PLAIN", resp="")
        self.assert_fail(c2.reply(), 12)

    def test_invalid_base64_in_resp(self):
        self.c.auth(13, "PLAIN", resp="!!!not*base64")
        fields = self.c.reply()
        self.assert_fail(fields, 13)
        d = fields_dict(fields)
        self.assertEqual(d.get("code"), "invalid_base64", fields)
        self.assertTrue(d.get("reason"), fields)
        self.c.auth_plain(14, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 14, "alice")

    def test_invalid_base64_in_cont(self):
        self.c.auth(15, "PLAIN")
        self.assertEqual(self.c.reply(), ["CONT", "15", ""])
        self.c.send_line("CONT", "15", "@@@@")
        fields = self.c.reply()
        self.assert_fail(fields, 15)
        self.assertEqual(fields_dict(fields).get("code"), "invalid_base64", fields)
        self.assertIn("reason", fields_dict(fields), fields)
        self.c.auth_plain(16, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 16, "alice")

    def test_cont_unknown_id(self):
        self.c.send_line("CONT", "777", b64("x"))
        self.assertEqual(self.c.reply(),
                         ["FAIL", "777", "reason=Authentication request timed out"])
        self.c.auth_plain(17, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 17, "alice")

    def test_cont_after_finished_request(self):
        self.c.auth_plain(18, "alice", ALICE_PASSWORD)
        self.assert_ok(self.c.reply(), 18, "alice")
        self.c.send_line("CONT", "18", b64("x"))
        self.assertEqual(self.c.reply(),
                         ["FAIL", "18", "reason=Authentication request timed out"])

    def test_id_reusable_after_completion(self):
        for _ in range(2):
            self.c.auth_plain(19, "alice", ALICE_PASSWORD)
            self.assert_ok(self.c.reply(), 19, "alice")

    def test_replies_have_no_empty_or_raw_control_fields(self):
        self.c.auth_plain(20, "alice", WRONG_PASSWORD)
        line = "\t".join(self.c.reply())
        self.assertFalse(any(ord(ch) < 0x20 and ch != "\t" for ch in line), repr(line))

    def test_tcp_listener(self):
        port = free_tcp_port()
        users = self.path("users")
        self.start_daemon(make_config(None, users, tcp_address=f"127.0.0.1:{port}"),
                          name="tcp")
        c = self.connect(("127.0.0.1", port))
        self.assertEqual(c.server_lines[0], "VERSION\t1\t2")
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")


@require_binaries
class LoginMechTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()
        self.c = self.connect(self.sock)

    def test_login_ok(self):
        self.c.auth(1, "LOGIN", "nologin")
        self.assertEqual(self.c.reply(), ["CONT", "1", USERNAME_PROMPT])
        self.c.send_line("CONT", "1", b64("alice"))
        self.assertEqual(self.c.reply(), ["CONT", "1", PASSWORD_PROMPT])
        self.c.send_line("CONT", "1", b64(ALICE_PASSWORD))
        self.assertEqual(self.c.reply(), ["OK", "1", "user=alice"])

    def test_login_minor0_empty_resp(self):
        self.c.auth(2, "LOGIN", resp="")
        self.assertEqual(self.c.reply(), ["CONT", "2", USERNAME_PROMPT])

    def test_login_wrong_password(self):
        self.c.auth(3, "login")
        self.assertEqual(self.c.reply(), ["CONT", "3", USERNAME_PROMPT])
        self.c.send_line("CONT", "3", b64("alice"))
        self.assertEqual(self.c.reply(), ["CONT", "3", PASSWORD_PROMPT])
        self.c.send_line("CONT", "3", b64(WRONG_PASSWORD))
        self.assertEqual(self.c.reply(), ["FAIL", "3", "user=alice"])

    def test_login_initial_response_skips_username(self):
        self.c.auth(4, "LOGIN", resp=b64("bob"))
        self.assertEqual(self.c.reply(), ["CONT", "4", PASSWORD_PROMPT])
        self.c.send_line("CONT", "4", b64(bob_password()))
        self.assert_ok(self.c.reply(), 4, "bob")

    def test_login_unknown_user(self):
        self.c.auth(5, "LOGIN", resp=b64("nosuchuser"))
        self.assertEqual(self.c.reply(), ["CONT", "5", PASSWORD_PROMPT])
        self.c.send_line("CONT", "5", b64(WRONG_PASSWORD))
        self.assertEqual(self.c.reply(), ["FAIL", "5", "user=nosuchuser"])

    def test_login_invalid_base64_in_cont(self):
        self.c.auth(6, "LOGIN")
        self.assertEqual(self.c.reply(), ["CONT", "6", USERNAME_PROMPT])
        self.c.send_line("CONT", "6", "*notbase64*")
        fields = self.c.reply()
        self.assert_fail(fields, 6)
        self.assertEqual(fields_dict(fields).get("code"), "invalid_base64", fields)

    def test_two_logins_interleaved(self):
        self.c.auth(7, "LOGIN")
        self.c.auth(8, "LOGIN")
        self.assertEqual(self.c.reply_for(7), ["CONT", "7", USERNAME_PROMPT])
        self.assertEqual(self.c.reply_for(8), ["CONT", "8", USERNAME_PROMPT])
        self.c.send_line("CONT", "8", b64("bob"))
        self.assertEqual(self.c.reply_for(8), ["CONT", "8", PASSWORD_PROMPT])
        self.c.send_line("CONT", "7", b64("alice"))
        self.assertEqual(self.c.reply_for(7), ["CONT", "7", PASSWORD_PROMPT])
        self.c.send_line("CONT", "7", b64(ALICE_PASSWORD))
        self.c.send_line("CONT", "8", b64(bob_password()))
        replies = {}
        for _ in range(2):
            f = self.c.reply(timeout=10)
            replies[f[1]] = f
        self.assert_ok(replies["7"], 7, "alice")
        self.assert_ok(replies["8"], 8, "bob")


if __name__ == "__main__":
    unittest.main()


@require_binaries
class Dovecot24DialectTest(DaemonTestCase):
    """What a Dovecot 2.4 auth client sends (lib-auth-client): protocol=
    instead of service=, VERSION minor 3 and 4, CONT parameters, CANCELLED."""

    def setUp(self):
        super().setUp()
        self.daemon, self.sock = self.start_standard()

    def auth24(self, c, req_id, *params, resp=None):
        fields = ["AUTH", str(req_id), "PLAIN", "protocol=imap", "final-resp-ok", "secured=tls",
                  "session=s1", "lip=127.0.0.1", "rip=127.0.0.1", "lport=143", "rport=50000",
                  "ssl_ja3_hash=0123", *params]
        if resp is not None:
            fields.append(f"resp={resp}")
        c.send_line(*fields)

    def test_protocol_stands_for_service(self):
        c = self.connect(self.sock, minor=3)
        self.auth24(c, 1, resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(c.reply(), 1, "alice")
        self.auth24(c, 2, resp=b64(plain_payload("alice", WRONG_PASSWORD)))
        self.assert_fail(c.reply_for(2), 2)
        log = self.daemon.stderr()
        # The protocol is the request's service in the result lines.
        self.assertIn('result=ok user="alice" service=imap', log)
        self.assertIn('result=fail user="alice" service=imap', log)

    def test_service_wins_over_protocol(self):
        c = self.connect(self.sock, minor=3)
        c.send_line("AUTH", "3", "PLAIN", "protocol=imap", "service=smtp", "nologin",
                    f"resp={b64(plain_payload('alice', ALICE_PASSWORD))}")
        self.assert_ok(c.reply(), 3, "alice")
        self.assertIn('result=ok user="alice" service=smtp', self.daemon.stderr())

    def test_neither_service_nor_protocol_closes(self):
        c = self.connect(self.sock, minor=3)
        c.send_line("AUTH", "4", "PLAIN", "protocol=", f"resp={b64(plain_payload('alice', ALICE_PASSWORD))}")
        self.assertTrue(c.wait_closed())

    def test_cancel_is_confirmed_from_minor_4(self):
        c4 = self.connect(self.sock, minor=4)
        self.auth24(c4, 5)
        self.assertEqual(c4.reply(), ["CONT", "5", ""])
        c4.send_line("CANCEL", "5")
        self.assertEqual(c4.reply(), ["CANCELLED", "5"])
        # An id nobody uses is confirmed as well (as Dovecot 2.4 does).
        c4.send_line("CANCEL", "99")
        self.assertEqual(c4.reply(), ["CANCELLED", "99"])
        # The connection goes on, and the cancelled id is free again.
        self.auth24(c4, 5, resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(c4.reply(), 5, "alice")

    def test_cancel_is_silent_below_minor_4(self):
        c3 = self.connect(self.sock, minor=3)
        self.auth24(c3, 6)
        self.assertEqual(c3.reply(), ["CONT", "6", ""])
        c3.send_line("CANCEL", "6")
        self.auth24(c3, 7, resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        # The next line is the answer to 7: nothing was sent for the CANCEL.
        self.assert_ok(c3.reply(), 7, "alice")

    def test_cont_parameters_from_minor_3(self):
        c3 = self.connect(self.sock, minor=3)
        self.auth24(c3, 8)
        self.assertEqual(c3.reply(), ["CONT", "8", ""])
        c3.send_line("CONT", "8", b64(plain_payload("alice", ALICE_PASSWORD)), "unknown_param=1")
        self.assert_ok(c3.reply(), 8, "alice")
        # channel_binding= only on the answer to a CONT that asked for it
        # (SCRAM-*-PLUS): anywhere else it fails the request.
        self.auth24(c3, 13)
        self.assertEqual(c3.reply(), ["CONT", "13", ""])
        c3.send_line("CONT", "13", b64(plain_payload("alice", ALICE_PASSWORD)), "channel_binding=Y2I=")
        self.assert_fail(c3.reply_for(13), 13)

    def test_cont_parameters_below_minor_3_are_invalid_base64(self):
        c2 = self.connect(self.sock, minor=2)
        self.auth24(c2, 9)
        self.assertEqual(c2.reply(), ["CONT", "9", ""])
        c2.send_line("CONT", "9", b64(plain_payload("alice", ALICE_PASSWORD)), "channel_binding=Y2I=")
        fields = c2.reply()
        self.assert_fail(fields, 9)
        self.assertEqual(fields_dict(fields).get("code"), "invalid_base64", fields)

    def test_hostile_parameters(self):
        c = self.connect(self.sock, minor=4)
        huge = "x" * 8000
        self.auth24(c, 10, f"forward_fields={huge}", f"ssl_client_cert_fp={huge[:100]}",
                    resp=b64(plain_payload("alice", WRONG_PASSWORD)))
        self.assert_fail(c.reply_for(10), 10)
        self.auth24(c, 11)
        self.assertEqual(c.reply(), ["CONT", "11", ""])
        c.send_line("CONT", "11", b64(plain_payload("alice", WRONG_PASSWORD)), "channel_binding=!!!", "\x01t")
        self.assert_fail(c.reply_for(11), 11)
        self.auth24(c, 12, resp=b64(plain_payload("alice", ALICE_PASSWORD)))
        self.assert_ok(c.reply(), 12, "alice")
