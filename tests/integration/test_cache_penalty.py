# The authentication cache, the per-IP penalty, the failure delay with
# jitter, rehash on login, and the fail2ban filter against real log lines.

import os
import re
import shutil
import subprocess
import time
import unittest

from harness import (b64, register_secret, ALICE_PASSWORD, WRONG_PASSWORD, DaemonTestCase, make_config, passwd_line,
                     require_binaries, run_cli, sha512_crypt, write_file, REPO_ROOT)

CACHE_PASSWORD = "Cache-Pa55w0rd-61d4"
CACHE_NEW_PASSWORD = "Cache-N3w-Pa55-0a7e"
REHASH_PASSWORD = "Rehash-Pa55-md5-3c19"
for _secret in (CACHE_PASSWORD, CACHE_NEW_PASSWORD, REHASH_PASSWORD):
    register_secret(_secret)
FAIL2BAN_REGEX = shutil.which("fail2ban-regex")
FILTER = os.path.join(REPO_ROOT, "contrib", "fail2ban", "filter.d", "postern.conf")


def cache_extra(ttl=3600, serve_stale=False):
    return (f"\n[cache]\nenabled = true\nttl = {ttl}\nserve_stale = {'true' if serve_stale else 'false'}\n")


@require_binaries
class CacheTest(DaemonTestCase):

    def start_cached(self, users_text, tag="", **kw):
        users = self.path("users" + tag)
        write_file(users, users_text)
        os.chmod(self.tmp, 0o777)
        sock = self.path("auth" + tag)
        master = self.path("master" + tag)
        extra = cache_extra(**kw) + (f'\n[[listener]]\ntype = "unix"\npath = "{master}"\nrole = "master"\n'
                                     f'mode = "0666"\n')
        d = self.start_daemon(make_config(sock, users, extra=extra), name="posternd" + tag)
        return d, sock, users, master

    def login(self, sock, user, password, req=1):
        c = self.connect(sock)
        c.auth_plain(req, user, password)
        fields = c.reply()
        c.close()
        return fields

    def hits(self, d):
        return d.stderr().count("auth: cache hit: verified password")

    def test_repeat_login_is_answered_from_cache(self):
        h = sha512_crypt(CACHE_PASSWORD)
        if not h:
            self.skipTest("no SHA512-CRYPT generator available")
        d, sock, _, _ = self.start_cached(passwd_line("carol", "{SHA512-CRYPT}" + h))
        self.assertEqual(self.login(sock, "carol", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.hits(d), 0)
        for i in range(5):
            self.assertEqual(self.login(sock, "carol", CACHE_PASSWORD, i + 2)[0], "OK")
        self.assertEqual(self.hits(d), 5)
        # A wrong password is never answered from the entry, and never cached.
        self.assertEqual(self.login(sock, "carol", WRONG_PASSWORD)[0], "FAIL")
        self.assertEqual(self.login(sock, "carol", WRONG_PASSWORD)[0], "FAIL")
        self.assertEqual(self.hits(d), 5)
        # Another user with the same password does not share the entry.
        self.assertEqual(self.login(sock, "carol2", CACHE_PASSWORD)[0], "FAIL")

    def test_failed_login_never_creates_a_positive_entry(self):
        d, sock, _, _ = self.start_cached(passwd_line("dan", "{PLAIN}" + CACHE_PASSWORD))
        for _ in range(3):
            self.assertEqual(self.login(sock, "dan", WRONG_PASSWORD)[0], "FAIL")
        self.assertEqual(self.hits(d), 0)
        self.assertEqual(self.login(sock, "dan", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.login(sock, "dan", WRONG_PASSWORD)[0], "FAIL")

    def test_password_change_refuses_old_password(self):
        d, sock, users, _ = self.start_cached(passwd_line("erin", "{PLAIN}" + CACHE_PASSWORD))
        self.assertEqual(self.login(sock, "erin", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.login(sock, "erin", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.hits(d), 1)
        p = run_cli(["user", "passwd", "-f", users, "erin", "-s", "SSHA256"], stdin_text=CACHE_NEW_PASSWORD + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        deadline = time.monotonic() + 5
        while self.login(sock, "erin", CACHE_PASSWORD)[0] == "OK":
            self.assertLess(time.monotonic(), deadline, "old password still accepted after the change")
            time.sleep(0.2)
        self.assertEqual(self.login(sock, "erin", CACHE_NEW_PASSWORD)[0], "OK")

    def test_cache_flush_through_master_socket(self):
        d, sock, _, master = self.start_cached(passwd_line("fay", "{PLAIN}" + CACHE_PASSWORD) +
                                               passwd_line("gus", "{PLAIN}" + CACHE_PASSWORD))
        for u in ("fay", "gus"):
            self.assertEqual(self.login(sock, u, CACHE_PASSWORD)[0], "OK")
        p = run_cli(["cache", "flush", "-a", master, "fay"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "1 cache entries flushed")
        self.assertEqual(self.login(sock, "gus", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.hits(d), 1)
        self.assertEqual(self.login(sock, "fay", CACHE_PASSWORD)[0], "OK")
        self.assertEqual(self.hits(d), 1)  # fay's entry was gone
        p = run_cli(["cache", "flush", "-a", master])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "2 cache entries flushed")
        p = run_cli(["cache", "flush", "-a", self.path("no-such-socket")])
        self.assertEqual(p.returncode, 2)

    def test_stale_entry_serves_only_when_configured(self):
        for serve_stale in (False, True):
            with self.subTest(serve_stale=serve_stale):
                tag = "-stale" if serve_stale else "-strict"
                d, sock, users, _ = self.start_cached(passwd_line("hal", "{PLAIN}" + CACHE_PASSWORD), tag=tag,
                                                      serve_stale=serve_stale)
                self.assertEqual(self.login(sock, "hal", CACHE_PASSWORD)[0], "OK")
                os.rename(users, users + ".away")
                # The file is re-checked at most once a second, in the
                # background: wait until the daemon has noticed.
                deadline = time.monotonic() + 10
                while "cannot" not in d.stderr() and "No such file" not in d.stderr():
                    self.assertLess(time.monotonic(), deadline, d.stderr())
                    self.login(sock, "nobody-such", WRONG_PASSWORD)
                    time.sleep(0.3)
                fields = self.login(sock, "hal", CACHE_PASSWORD)
                if serve_stale:
                    self.assertEqual(fields[0], "OK", fields)
                else:
                    self.assertEqual(fields[0], "FAIL", fields)
                    self.assertIn("code=temp_fail", fields)
                # A wrong password is never served from a stale entry.
                fields = self.login(sock, "hal", WRONG_PASSWORD)
                self.assertEqual(fields[0], "FAIL")
                self.assertIn("code=temp_fail", fields)
                os.rename(users + ".away", users)
                d.stop()


@require_binaries
class PenaltyTest(DaemonTestCase):

    def start_penalised(self, trusted=False):
        users = self.path("users")
        write_file(users, passwd_line("ivy", "{PLAIN}" + ALICE_PASSWORD))
        sock = self.path("auth")
        extra = "\n[penalty]\nbase = \"0.4s\"\nmax = \"1.6s\"\ndecay = \"60s\"\n"
        conf = make_config(sock, users, extra=extra, penalty=True)
        if trusted:
            conf = conf.replace('role = "client"', 'role = "client"\ntrusted = true', 1)
        self.start_daemon(conf)
        return sock

    def timed(self, c, req, user, password, *params):
        started = time.monotonic()
        c.auth_plain(req, user, password, *params)
        fields = c.reply(timeout=10)
        return fields, time.monotonic() - started

    def test_failures_slow_down_the_address_and_success_resets(self):
        sock = self.start_penalised()
        c = self.connect(sock)
        rip = "rip=192.0.2.10"
        for i in range(1, 3):
            fields, _ = self.timed(c, i, "ivy", f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(fields[0], "FAIL")
        # Two failures: the next attempt from that address waits >= base,
        # even with the right password.
        fields, took = self.timed(c, 10, "ivy", ALICE_PASSWORD, rip)
        self.assertEqual(fields[0], "OK")
        self.assertGreaterEqual(took, 0.35)
        # The success cleared it.
        fields, took = self.timed(c, 11, "ivy", f"{WRONG_PASSWORD}x", rip)
        self.assertEqual(fields[0], "FAIL")
        self.assertLess(took, 0.35)
        # Another address (and another /64 in IPv6) is not affected.
        for i in range(3):
            self.timed(c, 20 + i, "ivy", f"{WRONG_PASSWORD}{i}", "rip=2001:db8:1:2::5")
        _, took_same64 = self.timed(c, 30, "ivy", WRONG_PASSWORD, "rip=2001:db8:1:2::99")
        _, took_other = self.timed(c, 31, "ivy", WRONG_PASSWORD, "rip=198.51.100.7")
        self.assertGreaterEqual(took_same64, 0.35, "same /64 must share the penalty")
        self.assertLess(took_other, 0.35)

    def test_repeating_the_same_wrong_password_does_not_escalate(self):
        sock = self.start_penalised()
        c = self.connect(sock)
        for i in range(6):
            fields, took = self.timed(c, i + 1, "ivy", WRONG_PASSWORD, "rip=192.0.2.20")
            self.assertEqual(fields[0], "FAIL")
            self.assertLess(took, 0.35, f"attempt {i + 1} was delayed")

    def test_no_penalty_only_from_trusted_listener(self):
        for trusted in (False, True):
            with self.subTest(trusted=trusted):
                sock = self.start_penalised(trusted=trusted)
                c = self.connect(sock)
                for i in range(3):
                    self.timed(c, i + 1, "ivy", f"{WRONG_PASSWORD}{i}", "rip=192.0.2.30", "no-penalty")
                _, took = self.timed(c, 9, "ivy", WRONG_PASSWORD, "rip=192.0.2.30", "no-penalty")
                if trusted:
                    self.assertLess(took, 0.35)
                else:
                    self.assertGreaterEqual(took, 0.35, "an untrusted client escaped the penalty with no-penalty")
                for d in self.daemons:
                    d.stop()
                if os.path.exists(sock):
                    os.unlink(sock)


@require_binaries
class FailureDelayTest(DaemonTestCase):

    def test_unknown_user_and_wrong_password_wait_the_same_delay(self):
        d, sock = self.start_standard(failure_delay=0.5)
        c = self.connect(sock)
        for i, user in enumerate(("alice", "nobody-such", "alice", "nobody-such")):
            started = time.monotonic()
            c.auth_plain(i + 1, user, WRONG_PASSWORD)
            fields = c.reply(timeout=10)
            took = time.monotonic() - started
            self.assertEqual(fields[0], "FAIL")
            self.assertGreaterEqual(took, 0.49)
        # Both go through the same log line shape; only the reason differs.
        log = d.stderr()
        self.assertIn('result=fail user="alice" service=smtp rip=127.0.0.1 mech=PLAIN reason=password_mismatch', log)
        self.assertIn('result=fail user="nobody-such" service=smtp rip=127.0.0.1 mech=PLAIN reason=unknown_user', log)

    def test_jitter_keeps_delays_within_bounds(self):
        users = self.standard_users()
        sock = self.path("auth")
        conf = make_config(sock, users, failure_delay=0.4).replace(
            "failure_delay = 0.4", "failure_delay = 0.4\nfailure_delay_jitter = 0.2")
        self.start_daemon(conf)
        c = self.connect(sock)
        took = []
        for i in range(6):
            started = time.monotonic()
            c.auth_plain(i + 1, "alice", WRONG_PASSWORD)
            self.assertEqual(c.reply(timeout=10)[0], "FAIL")
            took.append(time.monotonic() - started)
        self.assertGreaterEqual(min(took), 0.19)
        self.assertLess(max(took), 2.0)


@require_binaries
class RehashTest(DaemonTestCase):

    def md5_crypt(self, password):
        p = run_cli(["pw", "-s", "MD5-CRYPT"], stdin_text=password + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def start_rehash(self, writable):
        users = self.path("users")
        write_file(users, passwd_line("jo", self.md5_crypt(REHASH_PASSWORD)))
        # The daemon (nobody when started as root) must own the file to
        # replace it with the same owner.
        if os.geteuid() == 0:
            os.chown(users, 65534, 65534)
        os.chmod(self.tmp, 0o777 if writable else 0o755)
        sock = self.path("auth")
        conf = make_config(sock, users).replace("[auth]", '[auth]\nrehash_scheme = "SSHA512"')
        d = self.start_daemon(conf)
        return d, sock, users

    def test_weak_hash_is_upgraded_after_login(self):
        d, sock, users = self.start_rehash(writable=True)
        c = self.connect(sock)
        c.auth_plain(1, "jo", WRONG_PASSWORD)
        self.assertEqual(c.reply()[0], "FAIL")
        time.sleep(0.3)
        self.assertIn("{MD5-CRYPT}", open(users).read(), "a failed login must not rehash")
        c.auth_plain(2, "jo", REHASH_PASSWORD)
        self.assertEqual(c.reply()[0], "OK")
        deadline = time.monotonic() + 15
        while "{SSHA512}" not in open(users).read():
            self.assertLess(time.monotonic(), deadline, d.stderr())
            time.sleep(0.1)
        self.assertIn('rehashed user "jo" from MD5-CRYPT to SSHA512', d.stderr())
        time.sleep(1.2)
        c.auth_plain(3, "jo", REHASH_PASSWORD)
        self.assertEqual(c.reply()[0], "OK")

    def test_failed_write_keeps_the_old_hash(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the daemon must run as an unprivileged user that cannot write the directory")
        d, sock, users = self.start_rehash(writable=False)
        before = open(users).read()
        c = self.connect(sock)
        c.auth_plain(1, "jo", REHASH_PASSWORD)
        self.assertEqual(c.reply()[0], "OK")
        deadline = time.monotonic() + 15
        while "not written; the old hash stays" not in d.stderr():
            self.assertLess(time.monotonic(), deadline, d.stderr())
            time.sleep(0.1)
        self.assertEqual(open(users).read(), before)
        c.auth_plain(2, "jo", REHASH_PASSWORD)
        self.assertEqual(c.reply()[0], "OK")


@require_binaries
@unittest.skipUnless(FAIL2BAN_REGEX, "fail2ban-regex not installed (package fail2ban; tests/run.sh installs it)")
class Fail2banTest(DaemonTestCase):

    def test_filter_matches_failures_and_nothing_else(self):
        d, sock = self.start_standard()
        c = self.connect(sock)
        c.auth_plain(1, "alice", WRONG_PASSWORD, "rip=203.0.113.5")
        c.reply()
        c.auth_plain(2, "nobody-such", WRONG_PASSWORD, "rip=2001:db8::7")
        c.reply()
        # A hostile name that tries to plant another address in the line.
        c.auth_plain(3, 'x" service=smtp rip=198.51.100.66 ', WRONG_PASSWORD, "rip=203.0.113.9")
        c.reply()
        c.auth_plain(4, "alice", ALICE_PASSWORD, "rip=203.0.113.5")
        c.reply()
        c.auth(5, "PLAIN", "rip=203.0.113.77 service=fake rip=198.51.100.99", resp=None)
        self.assertEqual(c.reply()[0], "CONT")
        c.send_line("CONT", "5", b64("*"))
        self.assertEqual(c.reply()[0], "FAIL")
        d.stop()
        # As syslog would store the daemon's stderr under systemd.
        lines = [f"Nov 22 21:30:0{i % 10} mailhost posternd[{d.proc.pid}]: {l}"
                 for i, l in enumerate(d.stderr().splitlines())]
        log = self.path("mail.log")
        write_file(log, "\n".join(lines) + "\n")
        # Installed next to fail2ban's own common.conf, as in /etc/fail2ban/filter.d.
        filter_dir = self.path("filter.d")
        os.makedirs(filter_dir)
        shutil.copy(FILTER, filter_dir)
        shutil.copy("/etc/fail2ban/filter.d/common.conf", filter_dir)
        p = subprocess.run([FAIL2BAN_REGEX, "--print-all-matched", "-v", log, os.path.join(filter_dir, "postern.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"Failregex: 3 total")
        # The hosts fail2ban would ban: "|      HOST  DATE" under the regex.
        banned = re.findall(r"^\|\s+(\S+)\s+\w{3} \w{3} +\d+ ", p.stdout, re.M)
        self.assertEqual(banned, ["203.0.113.5", "2001:db8::7", "203.0.113.9"])
        self.assertIn("reason=aborted", log_text := open(log).read())
        self.assertIn("rip=203.0.113.77\\x20service=fake", log_text)


if __name__ == "__main__":
    unittest.main()
