# auth-master / auth-userdb protocol of posternd (auth-protocol.md section 4)
# over real sockets: USER, PASS, LIST, REQUEST (the login continuation with
# its cookie checks), CACHE-FLUSH, listener roles and malformed lines; and
# Dovecot's doveadm as a real client of the master and login sockets.

import itertools
import os
import shutil
import socket

import harness
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, WRONG_PASSWORD, AuthClient, Closed, DaemonTestCase, MasterClient,
                     b64, passwd_line, plain_payload, require_binaries, toml_str, write_file)

DOVEADM = shutil.which("doveadm")
EX_NOUSER = 67
EX_NOPERM = 77
# Pending logins live as long as auth.request_timeout: short here so the
# expiry case takes seconds, not Dovecot's 150.
REQUEST_TIMEOUT = 2


def master_config(tmp, users, *, userdbs=None, extra=""):
    """Listeners of every role on one users file; userdbs is a list of
    [[userdb]] bodies (default: the same passwd-file)."""
    if userdbs is None:
        userdbs = [f'driver = "passwd-file"\npath = {toml_str(users)}']
    lines = ["[log]", 'level = "debug"', "[auth]", 'mechanisms = ["PLAIN", "LOGIN"]',
             "failure_delay = 0", f"request_timeout = {REQUEST_TIMEOUT}", ""]
    for name, role, mode in (("client", "client", "0666"), ("login", "login", "0666"),
                             ("master", "master", "0600"), ("userdb", "userdb", "0666")):
        lines += ["[[listener]]", 'type = "unix"', f"path = {toml_str(os.path.join(tmp, name))}",
                  f"mode = {toml_str(mode)}", f"role = {toml_str(role)}", ""]
    lines += ["[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""]
    for body in userdbs:
        lines += ["[[userdb]]", body, ""]
    return "\n".join(lines) + extra


_cpids = itertools.count(1_000_000 + os.getpid() % 1000 * 1000)


def users_text():
    return (passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=5000, gid=5000,
                        home="/var/vmail/example.com/alice",
                        extra="userdb_mail=maildir:~/Maildir userdb_quota_rule=*:storage=1G quota_class=gold")
            + passwd_line("bob", "{PLAIN}" + ALICE_PASSWORD, uid=5001, gid=5001, home="/home/bob")
            + passwd_line("carol", "{PLAIN}" + ALICE_PASSWORD, uid=5002, gid=5002, home="/home/carol",
                          extra="nologin reason=moved")
            + passwd_line("dave@example.org", "{PLAIN}" + ALICE_PASSWORD, uid=5003, gid=5003,
                          home="/home/dave"))


class MasterBase(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.users = self.path("users")
        write_file(self.users, users_text())
        self.daemon = self.start_daemon(master_config(self.tmp, self.users))

    def master(self, name="master", version=True):
        c = MasterClient(self.path(name))
        self.addCleanup(c.close)
        return c.master_handshake(version)

    def login_client(self, name="login", cpid=None):
        c = AuthClient(self.path(name))
        self.addCleanup(c.close)
        # Each live login connection needs a pid of its own (a second one
        # with a live pid is refused, as Dovecot does).
        cpid = cpid if cpid is not None else next(_cpids)
        c.handshake(cpid=cpid)
        hs = dict(l.split("\t", 1) for l in c.server_lines if "\t" in l and not l.startswith("MECH"))
        c.cookie = hs["COOKIE"]
        c.spid = hs["SPID"]
        c.cpid = cpid
        return c

    def login(self, req_id, user="alice", password=ALICE_PASSWORD, *params, name="login", cpid=None,
              client=None):
        """A PLAIN AUTH without nologin on a login socket; returns the client
        and the reply fields."""
        c = client or self.login_client(name, cpid)
        c.auth(req_id, "PLAIN", "lip=127.0.0.1", "rip=127.0.0.1", *params,
               resp=b64(plain_payload(user, password)), service="imap")
        return c, c.reply_for(req_id)

    def request(self, m, req_id, cpid, auth_id, cookie, *extra):
        m.send_line("REQUEST", str(req_id), str(cpid), str(auth_id), cookie, *extra)
        return m.reply_for(req_id)

    def assert_closed(self, c):
        self.assertTrue(c.wait_closed(), "server kept the connection open")


@require_binaries
class HandshakeAndRolesTest(MasterBase):

    def test_handshake(self):
        m = self.master(version=False)
        self.assertEqual(m.server_lines[0], "VERSION\t1\t1")
        self.assertEqual(m.server_lines[1], f"SPID\t{self.daemon.proc.pid}")

    def test_spid_identical_on_every_socket(self):
        spids = {self.master(n).spid() for n in ("master", "userdb")}
        spids.add(self.login_client().spid)
        spids.add(self.login_client("client").spid)
        self.assertEqual(spids, {str(self.daemon.proc.pid)})

    def test_userdb_role_serves_user_and_list(self):
        m = self.master("userdb")
        m.send_line("USER", "1", "alice", "service=lmtp")
        self.assertEqual(m.reply_for(1)[:3], ["USER", "1", "alice"])
        m.send_line("LIST", "2")
        names = []
        while True:
            f = m.reply()
            if f[0] == "DONE":
                break
            names.append(f[2])
        self.assertEqual(f, ["DONE", "2", ""])
        self.assertIn("alice", names)

    def test_userdb_role_refuses_pass_request_and_cache_flush(self):
        m = self.master("userdb")
        m.send_line("PASS", "1", "alice", "service=doveadm")
        self.assertEqual(m.reply_for(1)[:2], ["FAIL", "1"])
        m.send_line("CACHE-FLUSH", "2")
        self.assertEqual(m.reply_for(2)[:2], ["FAIL", "2"])
        c, ok = self.login(5)
        self.assertEqual(ok[0], "OK", ok)
        self.assertEqual(self.request(m, 3, c.cpid, 5, c.cookie)[:2], ["FAIL", "3"])
        # The refusal did not use up the login: the master socket still gets it.
        r = self.request(self.master(), 4, c.cpid, 5, c.cookie)
        self.assertEqual(r[:3], ["USER", "4", "alice"], r)

    def test_master_commands_on_a_client_socket_close(self):
        with AuthClient(self.path("client")) as c:
            c.read_handshake()
            c.send_line("VERSION", "1", "1")
            c.send_line("USER", "1", "alice", "service=imap")
            self.assert_closed(c)

    def test_cache_flush(self):
        m = self.master()
        m.send_line("CACHE-FLUSH", "7")
        self.assertEqual(m.reply_for(7), ["OK", "7", "0"])
        m.send_line("CACHE-FLUSH", "8", "alice", "bob")
        self.assertEqual(m.reply_for(8), ["OK", "8", "0"])


@require_binaries
class MalformedTest(MasterBase):

    def check_closes(self, *lines, version=True):
        m = self.master(version=version)
        for line in lines:
            m.send(line)
        self.assert_closed(m)

    def test_command_before_version(self):
        self.check_closes("USER\t1\talice\tservice=imap\n", version=False)

    def test_version_major_2(self):
        self.check_closes("VERSION\t2\t0\n", version=False)

    def test_cpid_on_master_socket(self):
        self.check_closes("CPID\t1234\n", version=False)
        self.check_closes("CPID\t1234\n")

    def test_unknown_command(self):
        self.check_closes("HELLO\t1\n")

    def test_user_without_service(self):
        self.check_closes("USER\t1\talice\n")

    def test_user_bad_id(self):
        self.check_closes("USER\tone\talice\tservice=imap\n")

    def test_pass_truncated(self):
        self.check_closes("PASS\t1\n")

    def test_request_bad_numbers(self):
        self.check_closes("REQUEST\t1\tpid\t2\t00\n")
        self.check_closes("REQUEST\t1\t2\t3\n")

    def test_nul_byte(self):
        self.check_closes("USER\t1\tal\0ice\tservice=imap\n")

    def test_overlong_line(self):
        self.check_closes("USER\t1\t" + "a" * 2000 + "\tservice=imap\n")

    def test_overlong_without_newline(self):
        self.check_closes("L" * 5000)

    def test_connection_survives_a_good_command_after_handshake(self):
        m = self.master()
        m.send_line("USER", "1", "nosuchuser", "service=imap")
        self.assertEqual(m.reply_for(1), ["NOTFOUND", "1"])
        m.send_line("USER", "2", "bob", "service=imap")
        self.assertEqual(m.reply_for(2)[:3], ["USER", "2", "bob"])


@require_binaries
class UserPassTest(MasterBase):

    def test_user_found_with_fields(self):
        m = self.master()
        m.send_line("USER", "1", "Alice", "service=lmtp", "rip=192.0.2.7", "lip=192.0.2.1", "session=abc")
        r = m.reply_for(1)
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)
        self.assertEqual(r[3:], ["uid=5000", "gid=5000", "home=/var/vmail/example.com/alice",
                                 "mail=maildir:~/Maildir", "quota_rule=*:storage=1G"])

    def test_user_not_found(self):
        m = self.master()
        m.send_line("USER", "1", "nosuchuser", "service=lmtp")
        self.assertEqual(m.reply_for(1), ["NOTFOUND", "1"])

    def test_user_with_control_bytes_is_not_found(self):
        m = self.master()
        m.send_line("USER", "1", "ali\x01tce", "service=lmtp")
        self.assertEqual(m.reply_for(1), ["NOTFOUND", "1"])

    def test_pass_found_without_password(self):
        m = self.master()
        m.send_line("PASS", "1", "alice", "service=doveadm")
        r = m.reply_for(1)
        self.assertEqual(r[:3], ["PASS", "1", "user=alice"], r)
        self.assertIn("quota_class=gold", r)
        self.assertFalse(any(ALICE_PASSWORD in f for f in r), r)
        self.assertFalse(any(f.startswith(("userdb_", "password")) for f in r), r)

    def test_pass_not_found(self):
        m = self.master()
        m.send_line("PASS", "1", "nosuchuser", "service=doveadm")
        self.assertEqual(m.reply_for(1), ["NOTFOUND", "1"])


@require_binaries
class BackendDownTest(DaemonTestCase):
    """The users file is missing: lookups fail temporarily (FAIL), never NOTFOUND."""

    def setUp(self):
        super().setUp()
        missing = self.path("missing-users")
        self.daemon = self.start_daemon(master_config(self.tmp, missing))

    def test_user_and_pass_fail(self):
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", "alice", "service=lmtp")
        r = m.reply_for(1)
        self.assertEqual(r[:2], ["FAIL", "1"], r)
        m.send_line("PASS", "2", "alice", "service=doveadm")
        r = m.reply_for(2)
        self.assertEqual(r[:2], ["FAIL", "2"], r)
        m.send_line("LIST", "3")
        self.assertEqual(m.reply_for(3), ["DONE", "3", "fail"])


@require_binaries
class ListTest(MasterBase):

    def list(self, m, req_id, *params):
        m.send_line("LIST", str(req_id), *params)
        names = []
        while True:
            f = m.reply_for(req_id)
            if f[0] == "DONE":
                return names, f
            self.assertEqual(f[0], "LIST", f)
            names.append(f[2])

    def test_list_all(self):
        names, done = self.list(self.master(), 1)
        self.assertEqual(done, ["DONE", "1", ""])
        self.assertEqual(names, ["alice", "bob", "carol", "dave@example.org"])

    def test_list_masks(self):
        m = self.master()
        self.assertEqual(self.list(m, 1, "user=*@example.org")[0], ["dave@example.org"])
        self.assertEqual(self.list(m, 2, "user=?o?")[0], ["bob"])
        self.assertEqual(self.list(m, 3, "user=A*", "service=doveadm")[0], ["alice"])
        self.assertEqual(self.list(m, 4, "user=nobody*")[0], [])

    def test_hostile_mask(self):
        m = self.master()
        mask = "*a" * 400 + "*b"
        names, done = self.list(m, 1, "user=" + mask)
        self.assertEqual((names, done), ([], ["DONE", "1", ""]))
        # Metacharacters of other matchers are plain bytes here.
        self.assertEqual(self.list(m, 2, "user=[a-z]*")[0], [])
        self.assertEqual(self.list(m, 3, "user=%s%n")[0], [])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@require_binaries
class LargeListTest(DaemonTestCase):
    N = 100000

    def setUp(self):
        super().setUp()
        self.users = self.path("users")
        pad = "x" * 90
        with open(self.users, "w") as f:
            for i in range(self.N):
                f.write(f"user{i:06d}-{pad}@example.com::5000:5000::/home/u{i}::\n")
        self.daemon = self.start_daemon(master_config(self.tmp, self.users))

    def test_list_100000_users_streams(self):
        m = MasterClient(self.path("master"), timeout=60)
        self.addCleanup(m.close)
        m.master_handshake()
        # Load the table first, so what follows measures only the LIST.
        m.send_line("USER", "1", "user000000-" + "x" * 90 + "@example.com", "service=doveadm")
        self.assertEqual(m.reply_for(1, timeout=60)[0], "USER")
        base = rss_kib(self.daemon.proc.pid)
        m.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        m.send_line("LIST", "2")
        first = m.read_fields(timeout=30)
        self.assertEqual(first[:2], ["LIST", "2"])
        # Stop reading: the whole answer is over 11 MB; a server that built it
        # in memory would grow by that much, a streaming one stays put.
        time.sleep(1.5)
        grown = rss_kib(self.daemon.proc.pid) - base
        # ASan's shadow memory and quarantine add to any growth; 8 MiB is
        # still well below the 11 MB a buffered answer would take.
        limit = 8192 if harness.ASAN_RUNTIME else 4096
        self.assertLess(grown, limit, f"posternd grew by {grown} KiB while the reader stalled")
        # The loop is not stuck behind the stalled LIST.
        other = MasterClient(self.path("master"))
        self.addCleanup(other.close)
        other.master_handshake()
        other.send_line("USER", "9", "user000001-" + "x" * 90 + "@example.com", "service=doveadm")
        self.assertEqual(other.reply_for(9)[:2], ["USER", "9"])
        count = 1
        while True:
            f = m.read_fields(timeout=30)
            if f[0] == "DONE":
                break
            count += 1
        self.assertEqual(f, ["DONE", "2", ""])
        self.assertEqual(count, self.N)

    @unittest.skipUnless(DOVEADM, "doveadm not installed (apt-get install dovecot-core)")
    def test_doveadm_iterates_100000(self):
        p = subprocess.run([DOVEADM, "-c", "/dev/null", "user", "-a", self.path("master"), "*"],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), self.N)
        self.assertEqual(lines[0], "user000000-" + "x" * 90 + "@example.com")


@require_binaries
class RequestTest(MasterBase):
    """The login continuation: AUTH on a login socket, then REQUEST on the
    master socket with the client pid, the request id and the cookie."""

    def test_good_request_once(self):
        c, ok = self.login(11)
        self.assertEqual(ok[:2], ["OK", "11"], ok)
        m = self.master()
        r = self.request(m, 1, c.cpid, 11, c.cookie)
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)
        self.assertIn("uid=5000", r)
        self.assertIn("home=/var/vmail/example.com/alice", r)
        self.assertIn("mail=maildir:~/Maildir", r)
        self.assertIn("auth_mech=PLAIN", r)
        # Used up: the same triple again fails.
        self.assertEqual(self.request(m, 2, c.cpid, 11, c.cookie), ["FAIL", "2"])

    def test_tolerates_session_pid_and_auth_token_request(self):
        c, ok = self.login(12)
        self.assertEqual(ok[0], "OK")
        m = self.master()
        # Our own pid is the peer the kernel reports for this connection.
        r = self.request(m, 1, c.cpid, 12, c.cookie, f"session_pid={os.getpid()}", "request_auth_token")
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)

    def test_wrong_session_pid(self):
        c, ok = self.login(13)
        self.assertEqual(ok[0], "OK")
        m = self.master()
        r = self.request(m, 1, c.cpid, 13, c.cookie, f"session_pid={os.getpid() + 100000}")
        self.assertEqual(r, ["FAIL", "1"])

    def test_wrong_cookie(self):
        c, ok = self.login(14)
        self.assertEqual(ok[0], "OK")
        m = self.master()
        wrong = ("0" if c.cookie[0] != "0" else "1") + c.cookie[1:]
        self.assertEqual(self.request(m, 1, c.cpid, 14, wrong), ["FAIL", "1"])
        self.assertEqual(self.request(m, 2, c.cpid, 14, "zz"), ["FAIL", "2"])
        self.assertEqual(self.request(m, 3, c.cpid, 14, ""), ["FAIL", "3"])

    def test_cookie_of_another_connection(self):
        c, ok = self.login(15)
        self.assertEqual(ok[0], "OK")
        other = self.login_client()
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 15, other.cookie), ["FAIL", "1"])

    def test_wrong_pid(self):
        c, ok = self.login(16, cpid=424242)
        self.assertEqual(ok[0], "OK")
        m = self.master()
        self.assertEqual(self.request(m, 1, 424243, 16, c.cookie), ["FAIL", "1"])
        self.assertEqual(self.request(m, 2, os.getpid(), 16, c.cookie), ["FAIL", "2"])

    def test_id_that_never_authenticated(self):
        c = self.login_client()
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 99, c.cookie), ["FAIL", "1"])

    def test_failed_auth_cannot_be_redeemed(self):
        c, fail = self.login(17, "alice", WRONG_PASSWORD)
        self.assertEqual(fail[:2], ["FAIL", "17"])
        c2, fail2 = self.login(18, "nosuchuser", WRONG_PASSWORD, client=c)
        self.assertEqual(fail2[:2], ["FAIL", "18"])
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 17, c.cookie), ["FAIL", "1"])
        self.assertEqual(self.request(m, 2, c.cpid, 18, c.cookie), ["FAIL", "2"])

    def test_nologin_request(self):
        c, ok = self.login(19, "alice", ALICE_PASSWORD, "nologin")
        self.assertEqual(ok[0], "OK")
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 19, c.cookie), ["FAIL", "1"])

    def test_passdb_nologin_field(self):
        c, ok = self.login(20, "carol")
        self.assertEqual(ok[0], "OK", ok)
        self.assertIn("nologin", ok)
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 20, c.cookie), ["FAIL", "1"])

    def test_client_socket_logins_cannot_be_redeemed(self):
        c, ok = self.login(21, name="client")
        self.assertEqual(ok[0], "OK")
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 21, c.cookie), ["FAIL", "1"])
        self.assertEqual(self.request(m, 2, 0, 21, c.cookie), ["FAIL", "2"])

    def test_expired_request(self):
        c, ok = self.login(22)
        self.assertEqual(ok[0], "OK")
        time.sleep(REQUEST_TIMEOUT + 0.5)
        m = self.master()
        self.assertEqual(self.request(m, 1, c.cpid, 22, c.cookie), ["FAIL", "1"])

    def test_login_connection_closed_before_request(self):
        # A login process may hang up right after handing the client over;
        # its pending login stays redeemable, once, until it expires.
        c, ok = self.login(23)
        self.assertEqual(ok[0], "OK")
        c.close()
        m = self.master()
        r = self.request(m, 1, c.cpid, 23, c.cookie)
        self.assertEqual(r[:3], ["USER", "1", "alice"], r)


@require_binaries
class UserdbDriversTest(DaemonTestCase):
    """static, prefetch and passwd userdbs behind the master socket."""

    def start(self, userdbs, users=None):
        self.users = self.path("users")
        write_file(self.users, users if users is not None else users_text())
        self.daemon = self.start_daemon(master_config(self.tmp, self.users, userdbs=userdbs))

    def master(self):
        m = MasterClient(self.path("master"))
        self.addCleanup(m.close)
        return m.master_handshake()

    def user(self, name, req_id=1):
        m = self.master()
        m.send_line("USER", str(req_id), name, "service=lmtp")
        return m.reply_for(req_id)

    def test_static_templates(self):
        self.start(['driver = "static"\n'
                    'fields = ["uid=nobody", "gid=nogroup", "home=/var/vmail/%d/%n", "mail=maildir:~/Maildir"]'])
        import grp
        import pwd
        uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        r = self.user("dave@example.org")
        self.assertEqual(r, ["USER", "1", "dave@example.org", f"uid={uid}", f"gid={gid}",
                             "home=/var/vmail/example.org/dave", "mail=maildir:~/Maildir"])
        # Without allow_all_users the passdb must know the user.
        self.assertEqual(self.user("eve@example.org"), ["NOTFOUND", "1"])

    def test_static_allow_all_users_and_path_safety(self):
        self.start(['driver = "static"\nallow_all_users = true\n'
                    'fields = ["uid=5000", "gid=5000", "home=/var/vmail/%d/%n"]'])
        r = self.user("eve@example.org")
        self.assertEqual(r[:3], ["USER", "1", "eve@example.org"], r)
        self.assertIn("home=/var/vmail/example.org/eve", r)
        # A variable that would climb out of the directory finds nobody.
        self.assertEqual(self.user("x@.."), ["NOTFOUND", "1"])
        self.assertEqual(self.user("../../etc@example.org"), ["NOTFOUND", "1"])

    def test_static_bad_config_refused(self):
        for fields in ('["uid=no-such-user-xyz"]', '["uid=0"]', '["=x"]', '["home=%q"]',
                       '["uid=%u"]'):
            d = self.start_daemon(master_config(self.tmp, self.path("users"),
                                                userdbs=[f'driver = "static"\nfields = {fields}']),
                                  name="bad", wait_ready=False)
            d.proc.wait(10)
            self.assertEqual(d.proc.returncode, 78, (fields, d.stderr()))
            self.assertIn("fields", d.stderr())
            self.daemons.remove(d)
            d.stop()

    def test_prefetch_then_passwd_file(self):
        self.start(['driver = "prefetch"', f'driver = "passwd-file"\npath = {toml_str(self.path("users"))}'],
                   users=passwd_line("erin", "{PLAIN}" + ALICE_PASSWORD, uid=5010, gid=5010,
                                     home="/home/erin-file", extra="userdb_home=/home/erin-prefetch "
                                     "userdb_uid=6000 userdb_gid=6000"))
        # USER has no passdb result: prefetch knows nobody, passwd-file answers
        # with its own fields and the userdb_ ones of the line.
        r = self.user("erin")
        self.assertEqual(r[:3], ["USER", "1", "erin"])
        self.assertIn("home=/home/erin-prefetch", r)
        # After AUTH, prefetch answers from the passdb's userdb_ fields.
        c = AuthClient(self.path("login"))
        self.addCleanup(c.close)
        c.handshake()
        cookie = [l.split("\t")[1] for l in c.server_lines if l.startswith("COOKIE")][0]
        c.auth(1, "PLAIN", resp=b64(plain_payload("erin", ALICE_PASSWORD)), service="imap")
        self.assertEqual(c.reply_for(1)[0], "OK")
        m = self.master()
        m.send_line("REQUEST", "5", str(os.getpid()), "1", cookie)
        r = m.reply_for(5)
        self.assertEqual(r[:3], ["USER", "5", "erin"], r)
        self.assertIn("uid=6000", r)
        self.assertIn("home=/home/erin-prefetch", r)
        self.assertIn("auth_mech=PLAIN", r)

    def test_passwd_system_users(self):
        self.start(['driver = "passwd"'])
        import pwd
        nobody = pwd.getpwnam("nobody")
        r = self.user("nobody")
        self.assertEqual(r[:3], ["USER", "1", "nobody"], r)
        self.assertIn(f"uid={nobody.pw_uid}", r)
        self.assertIn(f"gid={nobody.pw_gid}", r)
        self.assertIn(f"home={nobody.pw_dir}", r)
        self.assertIn("system_groups_user=nobody", r)
        self.assertEqual(self.user("no-such-system-user-xyz"), ["NOTFOUND", "1"])
        m = self.master()
        m.send_line("LIST", "2", "user=nobod?")
        self.assertEqual(m.reply_for(2), ["LIST", "2", "nobody"])
        self.assertEqual(m.reply_for(2), ["DONE", "2", ""])


# Run by a peer of another uid: one master-protocol exchange, replies printed.
PEER_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(("VERSION\t1\t1\n" + "".join(a + "\n" for a in sys.argv[2:])).encode())
want = len(sys.argv) - 2
buf = b""
while buf.count(b"\n") < 2 + want:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
"""


@require_binaries
@unittest.skipUnless(os.geteuid() == 0, "needs root to connect as another uid")
class RestrictedUserdbTest(DaemonTestCase):
    """A 0666 userdb socket: a peer that is neither its owner nor in its
    group sees only its own user; LIST and everything else are refused."""

    def setUp(self):
        super().setUp()
        import pwd
        self.nobody = pwd.getpwnam("nobody")
        users = self.path("users")
        write_file(users, users_text() + passwd_line("nob", "{PLAIN}" + ALICE_PASSWORD,
                                                     uid=self.nobody.pw_uid, gid=self.nobody.pw_gid,
                                                     home="/home/nob"))
        self.daemon = self.start_daemon(master_config(self.tmp, users))

    def as_nobody(self, *lines):
        def drop():
            os.setgid(self.nobody.pw_gid)
            os.setgroups([])
            os.setuid(self.nobody.pw_uid)
        p = subprocess.run(["python3", "-c", PEER_SCRIPT, self.path("userdb"), *lines],
                           capture_output=True, text=True, timeout=30, preexec_fn=drop)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l.split("\t") for l in p.stdout.splitlines()[2:]]

    def test_own_user_only(self):
        r = self.as_nobody("USER\t1\tnob\tservice=lda", "USER\t2\talice\tservice=lda",
                           "USER\t3\tnosuchuser\tservice=lda", "LIST\t4")
        self.assertEqual(r[0][:3], ["USER", "1", "nob"], r)
        self.assertEqual(r[1][:2], ["FAIL", "2"], r)
        self.assertEqual(r[2], ["NOTFOUND", "3"], r)
        self.assertEqual(r[3], ["DONE", "4", "fail"], r)

    def test_owner_keeps_full_access(self):
        m = MasterClient(self.path("userdb"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", "alice", "service=lda")
        self.assertEqual(m.reply_for(1)[:3], ["USER", "1", "alice"])


@require_binaries
@unittest.skipUnless(DOVEADM, "doveadm not installed (apt-get install dovecot-core)")
class DoveadmMasterTest(MasterBase):

    def doveadm(self, *args):
        return subprocess.run([DOVEADM, "-c", "/dev/null", *args], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def test_user_found(self):
        for sock in ("master", "userdb"):
            p = self.doveadm("user", "-a", self.path(sock), "alice")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            rows = dict(l.split("\t", 1) for l in p.stdout.splitlines() if "\t" in l)
            self.assertEqual(rows.get("uid"), "5000", p.stdout)
            self.assertEqual(rows.get("home"), "/var/vmail/example.com/alice", p.stdout)
            self.assertEqual(rows.get("mail"), "maildir:~/Maildir", p.stdout)

    def test_user_field(self):
        p = self.doveadm("user", "-a", self.path("master"), "-f", "home", "alice")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "/var/vmail/example.com/alice"), p.stderr)

    def test_user_not_found(self):
        p = self.doveadm("user", "-a", self.path("master"), "nosuchuser")
        self.assertEqual(p.returncode, EX_NOUSER, p.stdout + p.stderr)
        self.assertIn("doesn't exist", p.stdout + p.stderr)

    def test_iteration(self):
        p = self.doveadm("user", "-a", self.path("master"), "*")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["alice", "bob", "carol", "dave@example.org"])
        p = self.doveadm("user", "-a", self.path("userdb"), "*@example.org")
        self.assertEqual((p.returncode, p.stdout.split()), (0, ["dave@example.org"]), p.stderr)

    def test_auth_lookup(self):
        p = self.doveadm("auth", "lookup", "-a", self.path("master"), "alice")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("quota_class", p.stdout)
        self.assertNotIn(ALICE_PASSWORD, p.stdout + p.stderr)

    def test_auth_login(self):
        p = self.doveadm("auth", "login", "-a", self.path("login"), "-m", self.path("master"),
                         "alice", ALICE_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("auth succeeded", p.stdout)
        self.assertIn("uid=5000", p.stdout)
        self.assertIn("home=/var/vmail/example.com/alice", p.stdout)
        self.assertIn("auth_mech=PLAIN", p.stdout)

    def test_auth_login_wrong_password(self):
        p = self.doveadm("auth", "login", "-a", self.path("login"), "-m", self.path("master"),
                         "alice", WRONG_PASSWORD)
        self.assertEqual(p.returncode, EX_NOPERM, p.stdout + p.stderr)
        self.assertNotIn("uid=5000", p.stdout)

    def test_auth_login_through_client_socket_fails(self):
        p = self.doveadm("auth", "login", "-a", self.path("client"), "-m", self.path("master"),
                         "alice", ALICE_PASSWORD)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("uid=5000", p.stdout)

    def test_auth_login_master_on_userdb_socket_fails(self):
        p = self.doveadm("auth", "login", "-a", self.path("login"), "-m", self.path("userdb"),
                         "alice", ALICE_PASSWORD)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("uid=5000", p.stdout)

    def test_cache_flush(self):
        p = self.doveadm("auth", "cache", "flush", "-a", self.path("master"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
