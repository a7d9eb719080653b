# [cluster]: three posternd instances sharing one throwaway redis-server
# (Debian's, on loopback): the penalty of an attacker rotating over the
# instances, the network and account rules (the owner still gets in), cache
# invalidation published by one instance or the CLI and applied by the
# others, the local read cache (own failures count at once, other instances'
# within read_cache), Redis killed and started again under load (no lost reply, no wrong
# OK, no wait beyond penalty + timeout, shared again after), and hostile
# names stored as data.

import os
import threading
import time
import unittest

from harness import (ALICE_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, AuthClient, DaemonTestCase, make_config,
                     passwd_line, register_secret, require_binaries, run_cli, write_file)
from redis_support import redis_missing, start_for_test
from test_metrics import http_get, metrics_extra
from harness import free_tcp_port

BASE = 0.4    # [penalty] base: the second failure makes the next request wait this
SLOW = 0.35   # "delayed": at least this long
FAST = 0.3    # "not delayed": under this
TIMEOUT = 0.2  # [cluster] timeout
REDIS_PASSWORD = "Redis-Acl-Pa55-6b1f"
register_secret(REDIS_PASSWORD)
SHARED_LINE = "penalty and cache invalidation shared"
DOWN_LINE = "local penalty and cache only until Redis is back"
# What the [cluster] documentation lists for an ACL user (the scripts'
# commands included: Redis checks them too).
ACL_COMMANDS = ["ping", "select", "evalsha", "eval", "script|load", "publish", "subscribe", "time", "hmget", "hset",
                "pexpire", "del", "zadd", "zscore", "zremrangebyscore", "zremrangebyrank", "zcard"]


@require_binaries
@unittest.skipIf(redis_missing(), redis_missing() or "")
class ClusterTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.redis, self.password_file = start_for_test(self, REDIS_PASSWORD)
        self.users = self.path("users")
        write_file(self.users, passwd_line("ivy", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("jon", "{PLAIN}" + ALICE_PASSWORD))

    def start_instances(self, n=3, cluster="", cache=False, metrics=False, own_files=False, url=None):
        self.instances = []
        for i in range(n):
            users = self.users
            if own_files:  # a copy per instance, as hosts that each keep one
                users = self.path(f"users{i}")
                with open(self.users, encoding="utf-8") as f:
                    write_file(users, f.read())
            sock, master = self.path(f"auth{i}"), self.path(f"master{i}")
            extra = (f"\n[penalty]\nbase = \"{BASE}s\"\nmax = \"1.6s\"\ndecay = \"60s\"\n"
                     f"\n[cluster]\nredis = [\"{url or self.redis.url(with_password=False)}\"]\n"
                     f"password_file = \"{self.password_file}\"\ntimeout = \"{int(TIMEOUT * 1000)}ms\"\n"
                     f"{cluster}"
                     f"\n[[listener]]\ntype = \"unix\"\npath = \"{master}\"\nrole = \"master\"\nmode = \"0666\"\n")
            if cache:
                extra += "\n[cache]\nenabled = true\nttl = 3600\n"
            port = None
            if metrics:
                port = free_tcp_port()
                extra += metrics_extra(port=port)
            d = self.start_daemon(make_config(sock, users, extra=extra, penalty=True), name=f"posternd{i}")
            self.instances.append({"daemon": d, "sock": sock, "master": master, "metrics": port, "users": users})
        for inst in self.instances:
            self.wait_log(inst["daemon"], SHARED_LINE)
        return self.instances

    def wait_log(self, d, text, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if d.stderr().count(text) >= count:
                return
            time.sleep(0.02)
        self.fail(f"no {text!r} (x{count}) in {d.log_path}:\n{d.stderr()[-3000:]}")

    def attempt(self, inst, user, password, rip, req=1):
        c = AuthClient(inst["sock"])
        try:
            c.handshake()
            started = time.monotonic()
            c.auth_plain(req, user, password, f"rip={rip}")
            fields = c.reply(timeout=10)
            return fields[0], time.monotonic() - started
        finally:
            c.close()

    def test_rotating_over_instances_is_penalised_as_one(self):
        inst = self.start_instances()
        rip = "192.0.2.10"
        for i in range(2):
            result, took = self.attempt(inst[i], "ivy", f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(result, "FAIL")
            self.assertLess(took, FAST)
        # Two failures, on instances 0 and 1: instance 2 makes the third wait.
        result, took = self.attempt(inst[2], "ivy", f"{WRONG_PASSWORD}x", rip)
        self.assertEqual(result, "FAIL")
        self.assertGreaterEqual(took, SLOW)
        self.assertIn("penalty=address", inst[2]["daemon"].stderr())
        # The same wrong password again does not escalate, on any instance
        # (three failures: 2 x base each time, not 4 x base).
        for i in (0, 1):
            result, took = self.attempt(inst[i], "ivy", f"{WRONG_PASSWORD}x", rip)
            self.assertGreaterEqual(took, 2 * BASE - 0.05)
            self.assertLess(took, 3 * BASE, "the same wrong password escalated the penalty")
        # A success (still waiting first) clears the address everywhere.
        result, took = self.attempt(inst[1], "ivy", ALICE_PASSWORD, rip)
        self.assertEqual(result, "OK")
        self.assertGreaterEqual(took, SLOW)
        result, took = self.attempt(inst[2], "ivy", f"{WRONG_PASSWORD}y", rip)
        self.assertLess(took, FAST)
        # no-penalty from an untrusted listener changes nothing; exempt
        # addresses are never counted.
        for i in range(3):
            self.attempt(inst[i], "ivy", f"{WRONG_PASSWORD}e{i}", "127.0.0.1")
        _, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}e9", "127.0.0.1")
        self.assertLess(took, FAST)

    def test_network_rule_catches_a_spread_over_a_24(self):
        inst = self.start_instances(cluster="network_threshold = 3\naccount_threshold = 0\n")
        for i in range(4):  # four addresses of 198.51.100.0/24, one failure each
            result, took = self.attempt(inst[i % 3], "ivy", f"{WRONG_PASSWORD}{i}", f"198.51.100.{i + 1}")
            self.assertEqual(result, "FAIL")
            self.assertLess(took, FAST)
        result, took = self.attempt(inst[1], "jon", f"{WRONG_PASSWORD}n", "198.51.100.77")
        self.assertGreaterEqual(took, SLOW)
        self.assertIn("penalty=network", inst[1]["daemon"].stderr())
        _, took = self.attempt(inst[1], "jon", f"{WRONG_PASSWORD}n", "198.51.101.77")
        self.assertLess(took, FAST, "another /24 was slowed down")

    def test_spraying_an_account_slows_strangers_not_the_owner(self):
        inst = self.start_instances(cluster="network_threshold = 0\naccount_threshold = 3\n")
        owner = "203.0.113.5"
        result, _ = self.attempt(inst[0], "ivy", ALICE_PASSWORD, owner)
        self.assertEqual(result, "OK")
        # Distributed guessing: one failure each from many addresses.
        for i in range(6):
            result, took = self.attempt(inst[i % 3], "ivy", f"{WRONG_PASSWORD}{i}", f"10.{i}.0.1")
            self.assertEqual(result, "FAIL")
        # A stranger on the account waits; the owner does not, and gets in.
        result, took = self.attempt(inst[2], "ivy", f"{WRONG_PASSWORD}s", "10.99.0.1")
        self.assertGreaterEqual(took, SLOW)
        self.assertIn("penalty=account", inst[2]["daemon"].stderr())
        for i in range(3):
            result, took = self.attempt(inst[i], "ivy", ALICE_PASSWORD, owner)
            self.assertEqual(result, "OK")
            self.assertLess(took, FAST, "the owner was delayed on their own account")
        # Other accounts are not slowed down for strangers.
        _, took = self.attempt(inst[1], "jon", f"{WRONG_PASSWORD}s", "10.98.0.1")
        self.assertLess(took, FAST)

    def test_password_change_is_refused_everywhere_within_a_second(self):
        inst = self.start_instances(cache=True)
        for i in range(3):  # each instance caches ivy's verified password
            for _ in range(2):
                result, _ = self.attempt(inst[i], "ivy", ALICE_PASSWORD, "192.0.2.50")
                self.assertEqual(result, "OK")
        for i in range(3):
            self.assertIn("cache hit: verified password", inst[i]["daemon"].stderr())
        # One instance's CACHE-FLUSH reaches the other two.
        out = run_cli(["cache", "flush", "-a", inst[0]["master"], "ivy"])
        self.assertEqual(out.returncode, 0, out.stderr)
        for i in (1, 2):
            self.wait_log(inst[i]["daemon"], "cache invalidation from another instance", timeout=1.0)
        # postern user passwd (with the shared configuration): published too.
        conf = inst[0]["daemon"].config_path
        changed = time.monotonic()
        out = run_cli(["user", "passwd", "-c", conf, "ivy"], stdin_text=NEW_PASSWORD + "\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        for i in range(3):
            self.wait_log(inst[i]["daemon"], "cache invalidation from another instance", count=1 if i == 0 else 2,
                          timeout=1.0)
        # Refused everywhere within a second of the change (polled).
        for i in range(3):
            while True:
                result, _ = self.attempt(inst[i], "ivy", ALICE_PASSWORD, f"192.0.2.{60 + i}")
                if result == "FAIL":
                    break
                self.assertLess(time.monotonic() - changed, 1.0, f"instance {i} still took the old password")
                time.sleep(0.01)
        self.assertLess(time.monotonic() - changed, 1.0)
        for i in range(3):
            result, _ = self.attempt(inst[i], "ivy", NEW_PASSWORD, "192.0.2.52")
            self.assertEqual(result, "OK")

    def test_passwd_file_edit_seen_by_one_instance_is_published(self):
        inst = self.start_instances(cache=True, own_files=True)
        for i in range(3):
            result, _ = self.attempt(inst[i], "ivy", ALICE_PASSWORD, "192.0.2.70")
            self.assertEqual(result, "OK")
        # Edited in place on the first host only: jon's line changes, ivy's not.
        write_file(inst[0]["users"], passwd_line("ivy", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("jon", "{PLAIN}" + NEW_PASSWORD))
        time.sleep(1.1)  # past the file's re-check interval
        # A lookup starts the re-read (it is answered from the table before).
        self.attempt(inst[0], "ivy", ALICE_PASSWORD, "192.0.2.71")
        self.wait_log(inst[0]["daemon"], "reloaded 2 users", timeout=2.0)
        result, _ = self.attempt(inst[0], "jon", NEW_PASSWORD, "192.0.2.71")
        self.assertEqual(result, "OK")
        for i in (1, 2):
            self.wait_log(inst[i]["daemon"], "cache invalidation from another instance (1 user(s))", timeout=1.0)
        self.assertNotIn("cache invalidation from another instance", inst[0]["daemon"].stderr())
        # The other hosts' files did not change: nothing more is published.
        time.sleep(1.1)
        for i in (1, 2):
            for _ in range(2):
                result, _ = self.attempt(inst[i], "jon", ALICE_PASSWORD, "192.0.2.72")
                self.assertEqual(result, "OK")
        time.sleep(0.3)
        for i in range(3):
            self.assertLessEqual(inst[i]["daemon"].stderr().count("cache invalidation from another instance"),
                                 0 if i == 0 else 1)

    def test_metrics_count_reads_and_invalidations(self):
        inst = self.start_instances(n=2, metrics=True)

        def metrics(i):
            _, _, body = http_get(("127.0.0.1", inst[i]["metrics"]))
            out = {}
            for line in body.splitlines():
                if line.startswith("postern_cluster_"):
                    name, value = line.rsplit(" ", 1)
                    out[name] = float(value)
            return out

        for _ in range(5):
            self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, "192.0.2.80")[0], "OK")
        m = metrics(0)
        self.assertEqual(m['postern_cluster_up'], 1.0)
        # The first login reads Redis, the next ones find the counters fresh.
        self.assertGreaterEqual(m['postern_cluster_penalty_reads_total{source="redis"}'], 1)
        self.assertGreaterEqual(m['postern_cluster_penalty_reads_total{source="cache"}'], 1)
        self.assertEqual(sum(v for k, v in m.items() if k.startswith("postern_cluster_penalty_reads_total")), 5)
        out = run_cli(["cache", "flush", "-a", inst[0]["master"], "ivy"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.wait_log(inst[1]["daemon"], "cache invalidation from another instance", timeout=1.0)
        self.assertEqual(metrics(0)['postern_cluster_invalidations_total{direction="sent"}'], 1)
        self.assertEqual(metrics(0)['postern_cluster_invalidations_total{direction="received"}'], 0)
        self.assertEqual(metrics(1)['postern_cluster_invalidations_total{direction="received"}'], 1)

    def test_failures_while_redis_is_away_count_everywhere_when_it_returns(self):
        inst = self.start_instances(n=2)
        rip = "192.0.2.90"
        self.redis.kill()
        for inst_ in inst:
            self.wait_log(inst_["daemon"], DOWN_LINE)
        for i in range(2):  # counted by instance 0 alone while Redis is away
            result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(result, "FAIL")
        # Instance 1 knows nothing of them yet.
        _, took = self.attempt(inst[1], "ivy", ALICE_PASSWORD, "192.0.2.91")
        self.assertLess(took, FAST)
        self.redis.start()
        for inst_ in inst:
            self.wait_log(inst_["daemon"], SHARED_LINE, count=2, timeout=15.0)
        self.wait_log(inst[0]["daemon"], "2 failure(s) counted while Redis was away sent", timeout=2.0)
        # Now instance 1 makes the address wait as if it had seen them.
        result, took = self.attempt(inst[1], "ivy", f"{WRONG_PASSWORD}x", rip)
        self.assertEqual(result, "FAIL")
        self.assertGreaterEqual(took, SLOW)
        self.assertIn("penalty=address", inst[1]["daemon"].stderr())

    def test_redis_down_and_back_under_load(self):
        inst = self.start_instances(cluster="network_threshold = 0\naccount_threshold = 0\n", metrics=True)

        def cluster_up(i):
            _, _, body = http_get(("127.0.0.1", inst[i]["metrics"]))
            for line in body.splitlines():
                if line.startswith("postern_cluster_up"):
                    return float(line.split()[-1])
            return None

        self.assertEqual(cluster_up(0), 1.0)
        stop = threading.Event()
        problems = []
        counts = {"ok": 0, "fail": 0}

        def load(k):
            n = 0
            while not stop.is_set():
                n += 1
                good = n % 2 == 0
                # Fresh addresses: no penalty applies, so every answer must
                # come within the Redis timeout plus slack.
                rip = f"10.{k}.{n // 250}.{n % 250 + 1}"
                try:
                    result, took = self.attempt(inst[n % 3], "ivy", ALICE_PASSWORD if good else
                                                f"{WRONG_PASSWORD}{n}", rip)
                except Exception as e:  # a lost reply
                    problems.append(f"worker {k} request {n}: {e!r}")
                    continue
                if result != ("OK" if good else "FAIL"):
                    problems.append(f"worker {k} request {n}: {result} for a {'right' if good else 'wrong'} password")
                if took > TIMEOUT + 0.5:
                    problems.append(f"worker {k} request {n}: took {took:.3f} s")
                counts["ok" if good else "fail"] += 1

        workers = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for w in workers:
            w.start()
        try:
            time.sleep(0.5)
            self.redis.kill()
            for i in range(3):
                self.wait_log(inst[i]["daemon"], DOWN_LINE)
            time.sleep(1.0)
            self.assertEqual(cluster_up(0), 0.0)
            self.redis.start()
            for i in range(3):
                self.wait_log(inst[i]["daemon"], SHARED_LINE, count=2)
            time.sleep(0.5)
        finally:
            stop.set()
            for w in workers:
                w.join()
        self.assertEqual(problems, [])
        self.assertGreater(counts["ok"], 10)
        self.assertGreater(counts["fail"], 10)
        for i in range(3):
            self.assertEqual(inst[i]["daemon"].stderr().count(DOWN_LINE), 1, "the outage was logged more than once")
        self.assertEqual(cluster_up(1), 1.0)
        # Shared again: failures on two instances slow the third.
        for i in range(2):
            self.attempt(inst[i], "ivy", f"{WRONG_PASSWORD}r{i}", "192.0.2.99")
        _, took = self.attempt(inst[2], "ivy", f"{WRONG_PASSWORD}r", "192.0.2.99")
        self.assertGreaterEqual(took, SLOW)

    def test_read_cache_counts_own_failures_at_once(self):
        # A long read_cache: the second and third attempts take the counter
        # from the cache; the failures this instance recorded are in it.
        inst = self.start_instances(n=2, cluster="network_threshold = 0\naccount_threshold = 0\nread_cache = \"5s\"\n")
        rip = "192.0.2.30"
        for i in range(2):
            result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(result, "FAIL")
            self.assertLess(took, FAST)
        result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}h", rip)
        self.assertGreaterEqual(took, SLOW, "failures on this instance waited for the cache to expire")
        self.assertIn("penalty=address", inst[0]["daemon"].stderr())
        # The other instance has nothing cached for the address: it reads Redis.
        _, took = self.attempt(inst[1], "ivy", f"{WRONG_PASSWORD}j", rip)
        self.assertGreaterEqual(took, 2 * BASE - 0.05)

    def test_known_address_renewed_once_per_window_not_per_login(self):
        # known_address_ttl 4 s: a known address's login time is renewed at
        # most once in 2 s (half the ttl); read_cache 50 ms: many reads.
        inst = self.start_instances(n=1, cluster="known_address_ttl = \"4s\"\nread_cache = \"50ms\"\n")
        rip = "192.0.2.40"

        def score(after=None, timeout=2.0):
            # The login time Redis holds for the address (sent without
            # waiting: polled), once it is newer than `after`.
            deadline = time.monotonic() + timeout
            while True:
                # The account's one known address group (its name is
                # posternd's, not the address as typed).
                out = self.redis.cli("ZRANGE", "postern:k:ivy", "0", "-1", "WITHSCORES", raw=True).split()
                out = out[1] if len(out) == 2 else ""
                if out and (after is None or int(out) > after):
                    return int(out)
                if time.monotonic() > deadline:
                    return int(out) if out else None
                time.sleep(0.02)

        self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
        first = score()
        self.assertIsNotNone(first, "the first login did not make the address known")
        logins = 0
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:  # over several read_cache lifetimes
            self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
            logins += 1
            time.sleep(0.02)
        self.assertGreater(logins, 5)
        self.assertEqual(score(after=first, timeout=0.2), first,
                         f"{logins} logins within the window renewed the known address")
        time.sleep(2.0)  # past the window: the next login renews it
        self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
        renewed = score(after=first)
        self.assertGreater(renewed, first, "a login past the window did not renew the known address")

    def test_read_cache_other_instances_failures_arrive_within_its_lifetime(self):
        read_cache = 0.5
        inst = self.start_instances(n=2, cluster="network_threshold = 0\naccount_threshold = 0\n"
                                    f"read_cache = \"{int(read_cache * 1000)}ms\"\n")
        rip = "192.0.2.40"
        # Instance 0 caches one failure; instance 1 adds the second.
        result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}p", rip)
        self.assertEqual(result, "FAIL")
        self.assertLess(took, FAST)
        result, took = self.attempt(inst[1], "ivy", f"{WRONG_PASSWORD}q", rip)
        self.assertEqual(result, "FAIL")
        self.assertLess(took, FAST)
        changed = time.monotonic()
        # Instance 0 again with its own wrong password (a repeat: not counted
        # again locally) waits once its cached counter has expired.
        while True:
            started = time.monotonic()
            self.assertLess(started - changed, read_cache + 0.3,
                            "instance 0 did not see instance 1's failure within read_cache")
            result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}p", rip)
            self.assertEqual(result, "FAIL")
            if took >= SLOW:
                break
            time.sleep(0.02)
        self.assertIn("penalty=address", inst[0]["daemon"].stderr())

    def test_counters_at_rest_cost_no_reads_and_failures_elsewhere_end_the_rest(self):
        # read_cache 50 ms: steady logins whose counters are at rest do not
        # read them again; instance 1's failures end instance 0's rest at
        # once (announced), not a minute later.
        inst = self.start_instances(n=2, metrics=True, cluster="network_threshold = 0\n"
                                    "read_cache = \"50ms\"\n")

        def redis_reads(i):
            _, _, body = http_get(("127.0.0.1", inst[i]["metrics"]))
            for line in body.splitlines():
                if line.startswith('postern_cluster_penalty_reads_total{source="redis"}'):
                    return float(line.rsplit(" ", 1)[1])
            self.fail(f"no redis reads metric:\n{body}")

        rip = "192.0.2.50"
        self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
        time.sleep(0.1)  # the login's own write to Redis, read back once
        self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
        before = redis_reads(0)
        logins = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # 20 read_cache lifetimes
            self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
            logins += 1
            time.sleep(0.02)
        self.assertGreater(logins, 10)
        self.assertEqual(redis_reads(0) - before, 0, f"{logins} logins at rest read Redis")
        # Two failures on instance 1: instance 0's next attempt waits at once.
        for i in range(2):
            result, took = self.attempt(inst[1], "ivy", f"{WRONG_PASSWORD}{i}", rip)
            self.assertEqual(result, "FAIL")
            self.assertLess(took, FAST)
        time.sleep(0.1)  # the announcement's way through Redis
        result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}1", rip)
        self.assertEqual(result, "FAIL")
        self.assertGreaterEqual(took, SLOW, "instance 0 kept its counter at rest after instance 1's failures")
        self.assertIn("penalty=address", inst[0]["daemon"].stderr())

    def test_acl_user_limited_to_the_prefix(self):
        # An ACL user with the keys and channels under the prefix and the
        # commands postern sends, nothing else: everything works, no
        # command is refused (a refusal of a command nobody waits for is
        # logged), and the other keys are out of its reach.
        acl_password = "Acl-User-Pa55-93c2"
        register_secret(acl_password)
        self.redis.cli("ACL", "SETUSER", "postern", "on", f">{acl_password}", "resetkeys", "~postern:*",
                       "resetchannels", "&postern:*", "-@all", *[f"+{c}" for c in ACL_COMMANDS])
        url = f"redis://postern:{acl_password}@127.0.0.1:{self.redis.port}/0"
        inst = self.start_instances(n=2, metrics=True, url=url, cluster="network_threshold = 0\n")
        rip = "192.0.2.60"
        self.assertEqual(self.attempt(inst[0], "ivy", ALICE_PASSWORD, rip)[0], "OK")
        for i in range(2):
            self.assertEqual(self.attempt(inst[1], "ivy", f"{WRONG_PASSWORD}{i}", rip)[0], "FAIL")
        time.sleep(0.1)
        result, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}1", rip)
        self.assertEqual(result, "FAIL")
        self.assertGreaterEqual(took, SLOW, "the failures on instance 1 did not reach instance 0")
        out = run_cli(["cache", "flush", "-a", inst[0]["master"], "ivy"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.wait_log(inst[1]["daemon"], "cache invalidation from another instance", timeout=1.0)
        for i in inst:
            log = i["daemon"].stderr()
            self.assertNotIn("answered a command with an error", log)
            self.assertNotIn("not heard", log)
            self.assertNotIn(DOWN_LINE, log)
        self.assertTrue(any(k.startswith(b"postern:") for k in self.redis.keys()))
        self.assertFalse([k for k in self.redis.keys() if not k.startswith(b"postern:")])

    def test_subscriber_refused_is_logged(self):
        # The channels forbidden to the ACL user: the penalty is still
        # shared (commands go through), and the log says what is missing.
        acl_password = "Acl-User-Pa55-1e7d"
        register_secret(acl_password)
        self.redis.cli("ACL", "SETUSER", "postern", "on", f">{acl_password}", "~postern:*", "resetchannels",
                       "+@all")
        url = f"redis://postern:{acl_password}@127.0.0.1:{self.redis.port}/0"
        inst = self.start_instances(n=1, url=url)
        self.wait_log(inst[0]["daemon"], "cache invalidations and failures are not heard until it subscribes",
                      timeout=15.0)
        self.assertIn("NOPERM", inst[0]["daemon"].stderr())
        # The failure script's announcement is refused too, and logged once.
        for i in range(3):
            self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}{i}", "192.0.2.61")
        self.wait_log(inst[0]["daemon"], "answered a command with an error", timeout=2.0)
        self.assertEqual(inst[0]["daemon"].stderr().count("answered a command with an error"), 1)
        _, took = self.attempt(inst[0], "ivy", f"{WRONG_PASSWORD}x", "192.0.2.61")
        self.assertGreaterEqual(took, SLOW)

    def test_hostile_names_are_data(self):
        inst = self.start_instances()
        self.redis.cli("SET", "canary", "still-here")
        hostile = ["FLUSHALL", "*1\r\n$8\r\nFLUSHALL\r\n", "x:*:y", "a:b", "{tag}*?[]", "%s%n", "ü" * 100,
                   "y" * 256, "EVAL \"redis.call('flushall')\" 0", "user\x00nul"]
        for n, name in enumerate(hostile):
            for i in range(3):
                result, _ = self.attempt(inst[i], name, f"{WRONG_PASSWORD}{n}{i}", f"2001:db8:{n}::{i + 1}")
                self.assertEqual(result, "FAIL")
        self.assertEqual(self.redis.cli("GET", "canary").strip(), "still-here")
        keys = set(self.redis.keys())
        # Names a valid user name can be (no control bytes) have their own
        # account key, byte for byte; the others were never sent.
        for name in ("FLUSHALL", "x:*:y", "a:b", "{tag}*?[]", "%s%n", "y" * 256):
            self.assertIn(f"postern:u:{name.lower()}".encode(), keys, name)
        for i in range(3):
            self.assertTrue(inst[i]["daemon"].alive())


if __name__ == "__main__":
    unittest.main()
