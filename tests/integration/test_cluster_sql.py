# [cluster] in front of one shared SQL database (PostfixAdmin tables in
# MariaDB and PostgreSQL, each a throwaway server on loopback): three
# posternd instances with their caches on share one Redis; a password changed
# with `postern user passwd` through one instance's configuration is refused
# by all three within a second, and the new one is taken.

import time
import unittest

import databases
from databases import mailbox_insert, sql_file
from harness import (ALICE_PASSWORD, NEW_PASSWORD, AuthClient, DaemonTestCase, make_config, register_secret,
                     require_binaries, run_cli, toml_str)
from redis_support import redis_missing, start_for_test

USER = "shared@example.com"
REDIS_PASSWORD = "Redis-Sql-Pa55-41c2"
register_secret(REDIS_PASSWORD)


def load(server):
    sql = "INSERT INTO domain (domain, description, active) VALUES ('example.com', 'test', '1');\n"
    sql += mailbox_insert(server, USER, "{PLAIN}" + ALICE_PASSWORD)
    server.sql(sql, databases.DB_NAME)


DATABASES = databases.ServerSet(load)


def setUpModule():
    if not redis_missing():
        DATABASES.start()


def tearDownModule():
    DATABASES.destroy()


@require_binaries
@unittest.skipIf(redis_missing(), redis_missing() or "")
class SharedSqlTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.redis, self.password_file = start_for_test(self, REDIS_PASSWORD)

    def attempt(self, sock, password, rip):
        c = AuthClient(sock)
        try:
            c.handshake()
            c.auth_plain(1, USER, password, f"rip={rip}")
            return c.reply(timeout=10)[0]
        finally:
            c.close()

    def check_driver(self, driver):
        server = DATABASES.get(driver)
        path = sql_file(self.path(f"{driver}.conf.ext"), server)
        socks, daemons = [], []
        for i in range(3):
            sock = self.path(f"{driver}-auth{i}")
            extra = (f"\n[cache]\nenabled = true\nttl = 3600\n"
                     f"\n[cluster]\nredis = [\"{self.redis.url(with_password=False)}\"]\n"
                     f"password_file = {toml_str(self.password_file)}\n"
                     f"\n[[passdb]]\ndriver = \"sql\"\nargs = {toml_str(path)}\n"
                     f"\n[[userdb]]\ndriver = \"sql\"\nargs = {toml_str(path)}\n")
            d = self.start_daemon(make_config(sock, None, extra=extra), name=f"posternd-{driver}{i}")
            socks.append(sock)
            daemons.append(d)
        deadline = time.monotonic() + 10
        while not all("penalty and cache invalidation shared" in d.stderr() for d in daemons):
            self.assertLess(time.monotonic(), deadline, "an instance never reached Redis")
            time.sleep(0.02)
        for i in range(3):  # each instance caches the verified password
            for _ in range(2):
                self.assertEqual(self.attempt(socks[i], ALICE_PASSWORD, "192.0.2.20"), "OK")
            self.assertIn("cache hit: verified password", daemons[i].stderr())
        changed = time.monotonic()
        out = run_cli(["user", "passwd", "-c", daemons[0].config_path, USER], stdin_text=NEW_PASSWORD + "\n")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.addCleanup(server.sql, f"UPDATE mailbox SET password = '{{PLAIN}}{ALICE_PASSWORD}' "
                                    f"WHERE username = '{USER}'", databases.DB_NAME)
        for i in range(3):
            while self.attempt(socks[i], ALICE_PASSWORD, f"192.0.2.{30 + i}") != "FAIL":
                self.assertLess(time.monotonic() - changed, 1.0, f"instance {i} still took the old password")
                time.sleep(0.01)
        self.assertLess(time.monotonic() - changed, 1.0)
        for i in range(3):
            self.assertEqual(self.attempt(socks[i], NEW_PASSWORD, "192.0.2.40"), "OK")

    def test_password_change_refused_everywhere_mysql(self):
        self.check_driver("mysql")

    def test_password_change_refused_everywhere_pgsql(self):
        self.check_driver("pgsql")


if __name__ == "__main__":
    unittest.main()
