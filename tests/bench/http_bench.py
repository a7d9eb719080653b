#!/usr/bin/env python3
# Benchmark of the http passdb and of OAuth2 token introspection: posternd
# against tests/integration/http_support.PanelServer (the Python
# standard-library stand-in for a panel API and an identity provider, run in
# its own process so its CPU is measured apart). AUTH PLAIN over a unix
# socket with tests/bench/loadgen at 1 and 32 clients; prints auths/s and
# p50/p99 latency per case, then the CPU the test server and posternd used
# per 1,000 logins over the measured seconds. (Dovecot has no http passdb
# without Lua: no comparison here.)
#
# Cases:
#   http/verify             driver = "http", every login a verify request
#   oauth2/introspect-miss  driver = "oauth2", cache_ttl = 0: every login
#                           introspects its token at the provider
#   oauth2/introspect-hit   driver = "oauth2", cache_ttl = 60s, 20 tokens:
#                           after the warm-up every token is answered from
#                           the cache
#
#   python3 tests/bench/http_bench.py [BUILD_DIR]       (default BUILD_DIR: build)
#   BENCH_SUITE=http bash tests/bench/run.sh [BUILD_DIR]   (the same)
#
# Environment:
#   BENCH_DURATION=5   measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_REPEAT=1     runs per case; the summary shows medians
#   BENCH_KEEP=1       keep the temp dir (configs, logs)
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_common  # noqa: E402
from bench_common import LOADS  # noqa: E402

USERS = 1000
HIT_TOKENS = 20  # few enough that the warm-up puts them all in the cache
# The test server in a process of its own: users with passwords and one
# access token each; prints its URL, serves until stdin closes.
SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from http_support import PanelServer
n = int(sys.argv[2])
users = {f"user{i:04d}@example.com": {"password": f"pw-{i:04d}-c1d2", "stored": f"{{PLAIN}}pw-{i:04d}-c1d2"}
         for i in range(n)}
p = PanelServer(users, nodelay=True)
p.tokens = {f"tok-{i:04d}-9e8f": {"user": f"user{i:04d}@example.com", "exp": int(time.time()) + 86400}
            for i in range(n)}
p.start()
print(p.url, flush=True)
sys.stdin.read()
p.stop()
"""


def main():
    build, loadgen = bench_common.find_build(sys.argv, "http_bench")
    duration = os.environ.get("BENCH_DURATION", "5")
    warmup = os.environ.get("BENCH_WARMUP", "1")
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    tmp = tempfile.mkdtemp(prefix="postern-httpbench-")
    os.chmod(tmp, 0o755)
    bench_common.print_header("postern http passdb / OAuth2 introspection benchmark")
    print(f"test server: Python ThreadingHTTPServer (http_support.PanelServer), {USERS} users; "
          f"{warmup}s warm-up + {duration}s measured per run, {repeat} run(s) per case, medians\n")
    creds = {"password": os.path.join(tmp, "creds-password"), "token": os.path.join(tmp, "creds-token"),
             "few-tokens": os.path.join(tmp, "creds-few-tokens")}
    with open(creds["password"], "w", encoding="ascii") as f:
        f.write("".join(f"user{i:04d}@example.com:pw-{i:04d}-c1d2\n" for i in range(USERS)))
    with open(creds["token"], "w", encoding="ascii") as f:
        f.write("".join(f"user{i:04d}@example.com:tok-{i:04d}-9e8f\n" for i in range(USERS)))
    with open(creds["few-tokens"], "w", encoding="ascii") as f:
        f.write("".join(f"user{i:04d}@example.com:tok-{i:04d}-9e8f\n" for i in range(HIT_TOKENS)))
    secret = os.path.join(tmp, "client.secret")
    with open(secret, "w", encoding="ascii") as f:
        f.write("introspection-client-secret\n")
    os.chmod(secret, 0o600)
    server = subprocess.Popen([sys.executable, "-c", SERVER, os.path.join(SRC, "tests", "integration"), str(USERS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    url = server.stdout.readline().strip()
    base = url.replace("/api/auth", "/realms/mail")
    oauth2 = (f'[[passdb]]\ndriver = "oauth2"\nintrospection_url = "{base}/introspect"\nclient_id = "postern"\n'
              f'client_secret_file = "{secret}"\ntimeout = "5s"\n')
    cases = {
        "http/verify": ("password", f'[[passdb]]\ndriver = "http"\nurl = "{url}"\ntimeout = "5s"\n'
                                    'max_connections = 32\n'),
        "oauth2/introspect-miss": ("token", oauth2 + 'cache_ttl = "0s"\n'),
        "oauth2/introspect-hit": ("few-tokens", oauth2 + 'cache_ttl = "60s"\n'),
    }
    results, failed, procs = [], False, []
    try:
        for name, (cred, dbs) in cases.items():
            proc, sock = bench_common.start_postern(build, tmp, name.replace("/", "-"), dbs)
            procs.append(proc)
            for _ in range(repeat):
                for conns, inflight in LOADS:
                    label = f"postern/{name}/{conns}"
                    if not bench_common.measured_run(loadgen, sock, conns, inflight, duration, warmup, creds[cred],
                                                     label, results, {"db": server.pid, "auth": proc.pid}):
                        failed = True
            bench_common.stop_pid(procs.pop())
    finally:
        while procs:
            bench_common.stop_pid(procs.pop())
        server.stdin.close()
        bench_common.stop_pid(server)
    return bench_common.finish(tmp, bench_common.medians(results), "case/clients", failed, "the test HTTP server")


if __name__ == "__main__":
    sys.exit(main())
