# The [auth] weak_schemes policy on a passwd-file: a user whose stored hash
# uses a scheme Dovecot 2.4 calls weak (MD5-CRYPT, {CRYPT} holding DES or
# $1$ data, PLAIN-MD5...) and one with a strong hash, under allow, warn and
# refuse; refuse with rehash_scheme lets the weak user in once and upgrades
# the hash; rehash_log records each upgrade. SQL rehash: test_sql.py.

import os
import re
import subprocess
import time
import unittest

from harness import (DaemonTestCase, make_config, passwd_line, register_secret, require_binaries,
                     sha512_crypt, write_file)

WEAK_PASSWORD = "Weak-md5-Pa55-9c1e"
STRONG_PASSWORD = "Strong-sha-Pa55-4a7d"
for _secret in (WEAK_PASSWORD, STRONG_PASSWORD):
    register_secret(_secret)


def openssl_passwd(flag, password):
    p = subprocess.run(["openssl", "passwd", flag, password], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return p.stdout.strip()


@require_binaries
class WeakSchemePolicyTest(DaemonTestCase):

    def start(self, policy, rehash=None, rehash_log=None):
        users = self.path("users")
        md5 = openssl_passwd("-1", WEAK_PASSWORD)
        register_secret(md5)
        write_file(users,
                   passwd_line("weak", "{MD5-CRYPT}" + md5) +
                   passwd_line("weakcrypt", "{CRYPT}" + md5) +       # {CRYPT} holding MD5-crypt data
                   passwd_line("strong", "{SHA512-CRYPT}" + sha512_crypt(STRONG_PASSWORD)))
        if os.geteuid() == 0:
            os.chown(users, 65534, 65534)     # the daemon (nobody) replaces the file on a rehash
        os.chmod(self.tmp, 0o777)
        auth = f'[auth]\nweak_schemes = "{policy}"\n'
        if rehash:
            auth += f'rehash_scheme = "{rehash}"\n'
        if rehash_log:
            auth += f'rehash_log = "{rehash_log}"\n'
        self.sock = self.path("auth")
        self.users = users
        return self.start_daemon(make_config(self.sock, users).replace("[auth]\n", auth, 1))

    def login(self, user, password, req_id=1):
        c = self.connect(self.sock)
        c.auth_plain(req_id, user, password)
        return c.reply(timeout=15)

    def wait_log(self, d, pattern, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, d.stderr())) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def test_allow(self):
        d = self.start("allow")
        for user, pw in (("weak", WEAK_PASSWORD), ("weakcrypt", WEAK_PASSWORD), ("strong", STRONG_PASSWORD)):
            self.assertEqual(self.login(user, pw)[0], "OK", user)
        self.assertNotIn("weak password scheme", d.stderr())

    def test_warn_once_per_user(self):
        d = self.start("warn")
        for i in range(3):
            self.assertEqual(self.login("weak", WEAK_PASSWORD, i + 1)[0], "OK")
        self.assertEqual(self.login("weakcrypt", WEAK_PASSWORD)[0], "OK")
        self.assertEqual(self.login("strong", STRONG_PASSWORD)[0], "OK")
        log = d.stderr()
        self.assertEqual(len(re.findall(r'user "weak" logged in with a weak password scheme \(MD5-CRYPT\)', log)), 1, log)
        self.assertEqual(len(re.findall(r'user "weakcrypt" logged in with a weak password scheme \(CRYPT\)', log)), 1, log)
        self.assertNotRegex(log, r'user "strong" logged in with a weak')
        # A wrong password is no login: no warning for it.
        self.assertEqual(self.login("weak", STRONG_PASSWORD)[0], "FAIL")

    def test_refuse(self):
        d = self.start("refuse")
        r = self.login("weak", WEAK_PASSWORD)
        self.assert_fail(r, 1)
        self.assertNotIn("code=temp_fail", r)
        self.assert_fail(self.login("weakcrypt", WEAK_PASSWORD), 1)
        self.assert_ok(self.login("strong", STRONG_PASSWORD), 1, "strong")
        self.assertRegex(d.stderr(), r'user "weak": weak password scheme MD5-CRYPT refused \(weak_schemes = "refuse"\)')
        self.assertIn("{MD5-CRYPT}", open(self.users).read())

    def test_refuse_with_rehash_upgrades(self):
        log_path = self.path("rehash.log")
        d = self.start("refuse", rehash="SHA512-CRYPT", rehash_log=log_path)
        self.assert_ok(self.login("weakcrypt", WEAK_PASSWORD), 1, "weakcrypt")
        self.assertTrue(self.wait_log(d, r'rehashed user "weakcrypt" from CRYPT to SHA512-CRYPT'), d.stderr())
        # Same rank as the target, but weak: upgraded all the same.
        line = next(l for l in open(self.users) if l.startswith("weakcrypt:"))
        self.assertIn("{SHA512-CRYPT}$6$", line)
        self.assert_ok(self.login("weakcrypt", WEAK_PASSWORD), 1, "weakcrypt")
        time.sleep(1)  # a second rehash would have been logged by now
        self.assertEqual(len(re.findall(r'rehashed user "weakcrypt"', d.stderr())), 1, d.stderr())
        with open(log_path, encoding="utf-8") as f:
            rows = [l.rstrip("\n").split("\t") for l in f]
        self.assertEqual(len(rows), 1, rows)
        when, user, old, new = rows[0]
        self.assertLess(abs(int(when) - time.time()), 60)
        self.assertEqual((user, old, new), ("weakcrypt", "CRYPT", "SHA512-CRYPT"))


if __name__ == "__main__":
    unittest.main()
