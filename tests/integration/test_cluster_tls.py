# [cluster] over TLS: rediss:// against Debian's redis-server listening with
# TLS only (a throwaway CA and a certificate for 127.0.0.1). Two posternd
# instances share the penalty through it; an instance that does not trust
# the server's certificate never uses it and serves with its local penalty.

import os
import time
import unittest

from harness import (ALICE_PASSWORD, WRONG_PASSWORD, AuthClient, DaemonTestCase, make_config, passwd_line,
                     require_binaries, write_file)
from ldap_support import make_ca
from redis_support import RedisServer, redis_missing

BASE = 0.4    # [penalty] base
SLOW = 0.35   # "delayed": at least this long
FAST = 0.3    # "not delayed": under this
SHARED_LINE = "penalty and cache invalidation shared"


@require_binaries
@unittest.skipIf(redis_missing(), redis_missing() or "")
class ClusterTlsTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        ca_dir = self.path("ca")
        os.makedirs(ca_dir)
        self.ca = make_ca(ca_dir)
        if self.ca is None:
            self.skipTest("openssl not installed: no test CA")
        self.redis = RedisServer(self.tmp, tls=self.ca).start()
        self.addCleanup(self.redis.kill)
        self.users = self.path("users")
        write_file(self.users, passwd_line("ivy", "{PLAIN}" + ALICE_PASSWORD))

    def start_instance(self, i, ca_file):
        sock = self.path(f"auth{i}")
        extra = (f"\n[penalty]\nbase = \"{BASE}s\"\nmax = \"1.6s\"\ndecay = \"60s\"\n"
                 f"\n[cluster]\nredis = [\"{self.redis.url()}\"]\ntls_ca_file = \"{ca_file}\"\n"
                 f"timeout = \"500ms\"\n")
        d = self.start_daemon(make_config(sock, self.users, extra=extra, penalty=True), name=f"posternd{i}")
        return d, sock

    def wait_log(self, d, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in d.stderr():
                return True
            time.sleep(0.02)
        return False

    def attempt(self, sock, password, rip):
        c = AuthClient(sock)
        try:
            c.handshake()
            started = time.monotonic()
            c.auth_plain(1, "ivy", password, f"rip={rip}")
            fields = c.reply(timeout=10)
            return fields[0], time.monotonic() - started
        finally:
            c.close()

    def test_penalty_shared_over_tls(self):
        a, sock_a = self.start_instance(0, self.ca[0])
        b, sock_b = self.start_instance(1, self.ca[0])
        for d in (a, b):
            self.assertTrue(self.wait_log(d, SHARED_LINE), d.stderr()[-3000:])
        rip = "198.51.100.7"
        for i in range(2):
            result, took = self.attempt(sock_a, f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(result, "FAIL")
        # Instance b has seen no failure itself: the count came over TLS.
        result, took = self.attempt(sock_b, f"{WRONG_PASSWORD}x", rip)
        self.assertEqual(result, "FAIL")
        self.assertGreaterEqual(took, SLOW)
        self.assertIn("penalty=address", b.stderr())
        self.assertTrue(self.redis.keys(), "nothing stored in Redis")

    def test_untrusted_certificate_is_not_used(self):
        other = self.path("other-ca")
        os.makedirs(other)
        wrong_ca = make_ca(other)[0]
        d, sock = self.start_instance(0, wrong_ca)
        # The handshake fails: the instance says so and stays local.
        self.assertTrue(self.wait_log(d, "certificate verify failed", timeout=5.0), d.stderr()[-3000:])
        self.assertIn("local penalty and cache only until Redis is back", d.stderr())
        time.sleep(1.0)
        self.assertNotIn(SHARED_LINE, d.stderr())
        self.assertEqual(self.redis.keys(), [])
        result, took = self.attempt(sock, ALICE_PASSWORD, "198.51.100.8")
        self.assertEqual(result, "OK")
        self.assertLess(took, FAST)


if __name__ == "__main__":
    unittest.main()
