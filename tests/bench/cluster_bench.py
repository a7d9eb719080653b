#!/usr/bin/env python3
# Benchmark of [cluster]: posternd with the per-address penalty kept in
# process ("local") and shared through a throwaway redis-server on loopback
# ("shared": counters read from Redis, kept in the read cache), AUTH PLAIN over a unix socket
# with tests/bench/loadgen at 1x1 and 32x8 against 1000 {PLAIN} users; the
# penalty is on for every request (loadgen's rip=127.0.0.1 is taken out of
# exempt). Then the time from `postern user passwd` on one instance to the
# first refusal of the old password by another instance (caches on, one
# shared passwd-file; the other instance polls every 5 ms).
#
#   python3 tests/bench/cluster_bench.py [BUILD_DIR]      (default BUILD_DIR: build)
#
# Environment:
#   BENCH_DURATION=5   measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_REPEAT=5     rounds per case (local, then shared); medians, and the cost per round
#   BENCH_CHANGES=5    password changes timed
#   BENCH_KEEP=1       keep the temp dir

import os
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_common  # noqa: E402
from redis_support import RedisServer, redis_missing  # noqa: E402

NUSERS = 1000


def base_tables(users, extra):
    return f"""[penalty]
exempt = []

[[passdb]]
driver = "passwd-file"
path = "{users}"
{extra}"""


def cluster_table(redis):
    return f"""
[cluster]
redis = ["{redis.url()}"]
"""


def auth_once(sock, user, password):
    """One AUTH PLAIN on a fresh connection: "OK" or "FAIL"."""
    from harness import AuthClient
    c = AuthClient(sock)
    try:
        c.handshake()
        c.auth_plain(1, user, password, "rip=192.0.2.1")
        return c.reply(timeout=10)[0]
    finally:
        c.close()


def time_password_change(build, tmp, redis, changes):
    """Two instances with caches on; seconds from the start of
    `postern user passwd` on A to B's first refusal of the old password."""
    users = os.path.join(tmp, "change-users")
    with open(users, "w", encoding="ascii") as f:
        f.write("carl:{PLAIN}Old-Pa55-0:1000:1000::/home/carl::\n")
    extra = '\n[cache]\nenabled = true\nttl = 3600\n' + cluster_table(redis)
    procs, socks = [], []
    for name in ("change-a", "change-b"):
        p, s = bench_common.start_postern(build, tmp, name, base_tables(users, extra))
        procs.append(p)
        socks.append(s)
    time.sleep(0.5)  # both subscribed
    took = []
    try:
        for i in range(changes):
            old, new = f"Old-Pa55-{i}", f"Old-Pa55-{i + 1}"
            for _ in range(3):  # cached on B
                assert auth_once(socks[1], "carl", old) == "OK"
            started = time.monotonic()
            cli = subprocess.Popen([os.path.join(build, "postern"), "user", "passwd", "-c",
                                    os.path.join(tmp, "change-a.toml"), "carl"], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cli.stdin.write((new + "\n").encode())
            cli.stdin.close()
            while auth_once(socks[1], "carl", old) == "OK":
                if time.monotonic() - started > 10:
                    raise RuntimeError("the old password was still accepted after 10 s")
                time.sleep(0.005)
            took.append(time.monotonic() - started)
            cli.wait(timeout=10)
    finally:
        for p in procs:
            bench_common.stop_pid(p)
    return took


def main():
    why = redis_missing()
    if why:
        print(f"cluster_bench: skipped: {why}")
        return 0
    build, loadgen = bench_common.find_build(sys.argv, "cluster_bench.py")
    duration = os.environ.get("BENCH_DURATION", "5")
    warmup = os.environ.get("BENCH_WARMUP", "1")
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    tmp = tempfile.mkdtemp(prefix="postern-cluster-bench.")
    os.chmod(tmp, 0o755)  # posternd reads the users file after dropping root
    redis = RedisServer(tmp).start()
    users = os.path.join(tmp, "users")
    creds = os.path.join(tmp, "creds")
    with open(users, "w", encoding="ascii") as u, open(creds, "w", encoding="ascii") as c:
        for i in range(NUSERS):
            u.write(f"user{i}:{{PLAIN}}pw-{i}:1000:1000::/home/user{i}::\n")
            c.write(f"user{i}:pw-{i}\n")
    servers = {}
    failed = False
    results = []
    try:
        for case, extra in (("local", ""), ("shared", cluster_table(redis))):
            servers[case] = bench_common.start_postern(build, tmp, case, base_tables(users, extra))
        time.sleep(0.5)
        bench_common.print_header("PLAIN, penalty local vs shared through Redis (auths/s, latency ms)")
        for conns, inflight in ((1, 1), (32, 8)):
            for _ in range(repeat):
                for case in ("local", "shared"):
                    proc, sock = servers[case]
                    label = f"{case}/PLAIN/{conns}x{inflight}"
                    ok = bench_common.measured_run(loadgen, sock, conns, inflight, duration, warmup, creds, label,
                                                   results, {"posternd": proc.pid, "redis": redis.proc.pid})
                    failed = failed or not ok
        for _, (proc, _) in servers.items():
            bench_common.stop_pid(proc)
        servers.clear()
        print("\nsummary (medians; cpu: ms per 1,000 logins)")
        print(f"{'case':<22} {'auths/s':>9} {'p50':>8} {'p99':>8} {'posternd':>9} {'redis':>7}")
        for r in bench_common.medians(results):
            print(f"{r['label']:<22} {float(r['auths_per_s']):>9.0f} {float(r['p50_ms']):>8.3f} "
                  f"{float(r['p99_ms']):>8.3f} {r.get('posternd_cpu_ms_per_1k', '-'):>9} "
                  f"{r.get('redis_cpu_ms_per_1k', '-'):>7}")
        # Each round runs local then shared right after it: the cost per
        # round cancels the machine's slower minutes out of the ratio.
        for size in ("1x1", "32x8"):
            local = [float(r["auths_per_s"]) for r in results if r["label"] == f"local/PLAIN/{size}"]
            shared = [float(r["auths_per_s"]) for r in results if r["label"] == f"shared/PLAIN/{size}"]
            costs = sorted(100 * (1 - s / l) for l, s in zip(local, shared) if l > 0)
            if costs:
                print(f"shared penalty cost at {size}: median {statistics.median(costs):.1f} % of throughput "
                      f"(rounds: {', '.join(f'{c:.1f}' for c in costs)})")
        took = time_password_change(build, tmp, redis, int(os.environ.get("BENCH_CHANGES", "5")))
        print(f"\npassword change on A to refusal on B: median {statistics.median(took) * 1000:.0f} ms, "
              f"max {max(took) * 1000:.0f} ms over {len(took)} changes (includes starting postern)")
    finally:
        for _, (proc, _) in servers.items():
            bench_common.stop_pid(proc)
        redis.kill()
        bench_common.remove_tmp(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
