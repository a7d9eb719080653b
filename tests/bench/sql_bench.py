#!/usr/bin/env python3
# Benchmark of the sql passdb: posternd in front of a throwaway MariaDB and
# PostgreSQL (tests/integration/databases.py) holding PostfixAdmin's schema
# with 10,000 mailboxes and PostfixAdmin's recommended password_query
# (mailbox joined with domain, both active). AUTH PLAIN over a unix socket
# with tests/bench/loadgen; prints auths/s and p50/p99 latency per driver,
# password scheme and number of concurrent clients (1 and 32).
#
#   python3 tests/bench/sql_bench.py [BUILD_DIR]        (default BUILD_DIR: build)
#
# Environment:
#   BENCH_DURATION=5          measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_DRIVERS="mysql pgsql"
#   BENCH_SCHEMES="PLAIN SHA512-CRYPT"
#   BENCH_POOL=8              pool_size of the sql passdb (and Dovecot's maxconns)
#   BENCH_SERVERS="postern dovecot"   Dovecot 2.3's auth service on the same file,
#                             when dovecot-core and dovecot-mysql/-pgsql are installed
#   BENCH_BASELINE=DIR        also a posternd from the build DIR (an older
#                             commit, say), in the same rotation: its auths/s
#                             and the database's CPU per login beside this build's
#   BENCH_PASSWORD_QUERY=...  another password_query for every server, e.g. one
#                             that reads no table ("SELECT '%u' AS user, NULL AS
#                             password, 'Y' AS nopassword"): what any statement
#                             costs the database, the floor under the join
#   BENCH_REPEAT=3            runs per case; the servers take turns, the summary shows medians
#   BENCH_LOADS="1x1 32x1"    connections x in flight per connection
#   BENCH_KEEP=1              keep the temp dir (configs, logs)
#
# Beside auths/s and latency, each run reads from /proc the CPU time that the
# database server (all its processes) and the auth server used over the
# measured seconds: the summary gives both per 1,000 logins. A last short run
# at 32 clients, with posternd logging at info level, prints the connection
# pool's wait summary (how many statements queued for a connection, mean and
# longest wait).
#
# Half of the mailboxes store {PLAIN} passwords (the database path dominates),
# half bare $6$ hashes read with default_pass_scheme = SHA512-CRYPT (hashing
# dominates; all share one hash, verification costs the same). Dovecot's auth
# service reads the very same dovecot-sql.conf.ext (its MySQL lookups run in
# auth-worker processes, PostgreSQL ones asynchronously in the auth process).

import os
import subprocess
import sys
import tempfile
import time
import warnings

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import databases  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402
from bench_common import LOADS  # noqa: E402

MAILBOXES = 10000
DOMAIN = "bench.example"


def crypt_hash(password):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
            return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
        except ImportError:
            pass
    p = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True, text=True)
    return p.stdout.strip()


def load_mailboxes(server, tmp):
    half = MAILBOXES // 2
    crypt_pw = "bench-crypt-pw"
    hashed = crypt_hash(crypt_pw)
    creds = {"PLAIN": [], "SHA512-CRYPT": []}
    rows = []
    for i in range(MAILBOXES):
        if i < half:
            local, pw = f"p{i:05d}", f"pw{i:05d}-{os.urandom(4).hex()}"
            stored = "{PLAIN}" + pw
            creds["PLAIN"].append(f"{local}@{DOMAIN}:{pw}")
        else:
            local, pw, stored = f"c{i:05d}", crypt_pw, hashed
            creds["SHA512-CRYPT"].append(f"{local}@{DOMAIN}:{pw}")
        rows.append(f"('{local}@{DOMAIN}', '{stored}', '', '{DOMAIN}/{local}/', 0, '{local}', "
                    f"'{DOMAIN}', '1')")
    sql = f"INSERT INTO domain (domain, description, active) VALUES ('{DOMAIN}', 'bench', '1');\n"
    for k in range(0, len(rows), 1000):
        sql += ("INSERT INTO mailbox (username, password, name, maildir, quota, local_part, "
                "domain, active) VALUES " + ",\n".join(rows[k:k + 1000]) + ";\n")
    server.sql(sql, databases.DB_NAME)
    for scheme, lines in creds.items():
        with open(os.path.join(tmp, f"creds-{scheme}"), "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")


POSTFIXADMIN_QUERY = ("SELECT m.username AS user, m.password FROM mailbox m JOIN domain d ON d.domain = m.domain "
                      "WHERE m.username = '%u' AND m.active = '1' AND d.active = '1'")


def write_sql_conf(tmp, server, pool):
    sqlconf = os.path.join(tmp, f"{server.driver}.conf.ext")
    with open(sqlconf, "w", encoding="ascii") as f:
        f.write(f"driver = {server.driver}\n"
                f"connect = {server.connect_string(maxconns=pool)}\n"
                "default_pass_scheme = SHA512-CRYPT\n"
                "password_query = " + os.environ.get("BENCH_PASSWORD_QUERY", POSTFIXADMIN_QUERY) + "\n")
    os.chmod(sqlconf, 0o644)
    return sqlconf


def start_dovecot(tmp, server, sqlconf):
    return bench_common.start_dovecot(os.path.join(tmp, f"dovecot-{server.driver}"), f"sql-{server.driver}",
                                      f"passdb {{\n  driver = sql\n  args = {sqlconf}\n}}\n")


def start_postern(build, tmp, server, pool, sqlconf, name=""):
    return bench_common.start_postern(build, tmp, f"{name}{server.driver}", f"""[[passdb]]
driver = "sql"
args = "{sqlconf}"
pool_size = {pool}
""")


def pool_wait(build, tmp, conf_name, loadgen, creds, duration):
    """A short extra run at 32 clients with posternd logging at info level
    (the measured runs log warnings only), for the connection pool's wait
    summary that posternd logs at shutdown. Returns that line or a note."""
    conf = os.path.join(tmp, f"{conf_name}.toml")
    info_conf = os.path.join(tmp, f"{conf_name}-info.toml")
    with open(conf, encoding="ascii") as f:
        text = f.read().replace('level = "warning"', 'level = "info"', 1)
    sock = os.path.join(tmp, f"{conf_name}-info.sock")
    text = text.replace(os.path.join(tmp, f"{conf_name}.sock"), sock)
    with open(info_conf, "w", encoding="ascii") as f:
        f.write(text)
    log_path = os.path.join(tmp, f"posternd-{conf_name}-info.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(build, "posternd"), "-c", info_conf], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    try:
        bench_common.wait_socket(proc, sock, log_path)
        subprocess.run([loadgen, "--socket", sock, "--connections", "32", "--inflight", "1", "--duration",
                        duration, "--warmup", "0", "--users", creds, "--label", "pool-wait"],
                       capture_output=True, timeout=120)
    finally:
        bench_common.stop_pid(proc)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = [l.strip() for l in f if "waited for a free connection" in l]
    return lines[-1] if lines else "(no pool summary in the log)"


def main():
    build, loadgen = bench_common.find_build(sys.argv, "sql_bench")
    duration = os.environ.get("BENCH_DURATION", "5")
    warmup = os.environ.get("BENCH_WARMUP", "1")
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    drivers = os.environ.get("BENCH_DRIVERS", "mysql pgsql").split()
    schemes = os.environ.get("BENCH_SCHEMES", "PLAIN SHA512-CRYPT").split()
    loads = [tuple(int(n) for n in l.split("x")) for l in os.environ["BENCH_LOADS"].split()] \
        if os.environ.get("BENCH_LOADS") else LOADS
    pool = int(os.environ.get("BENCH_POOL", "8"))
    servers = os.environ.get("BENCH_SERVERS", "postern dovecot").split()
    baseline = os.environ.get("BENCH_BASELINE")
    if baseline:
        baseline = os.path.abspath(baseline)
        if not os.access(os.path.join(baseline, "posternd"), os.X_OK):
            sys.exit(f"sql_bench: BENCH_BASELINE={baseline} has no posternd")
        servers.insert(1, "baseline")
    tmp = tempfile.mkdtemp(prefix="postern-sqlbench-")
    os.chmod(tmp, 0o755)
    bench_common.print_header("postern sql benchmark")
    print(f"PostfixAdmin schema, {MAILBOXES} mailboxes; pool_size {pool}; "
          f"{warmup}s warm-up + {duration}s measured per run; {repeat} runs per case, servers "
          f"alternating, medians")
    print(f"password_query = {os.environ.get('BENCH_PASSWORD_QUERY', POSTFIXADMIN_QUERY)}\n")
    results = []
    waits = []
    failed = False
    for driver in drivers:
        cls = databases.MariaDB if driver == "mysql" else databases.PostgreSQL
        missing = databases.mariadb_missing() if driver == "mysql" else databases.postgres_missing()
        if missing:
            print(f"{driver}: skipped ({missing})")
            continue
        server = cls()
        procs = {}
        try:
            t0 = time.monotonic()
            server.start()
            server.setup_postfixadmin()
            load_mailboxes(server, tmp)
            print(f"{driver}: server ready with {MAILBOXES} mailboxes in {time.monotonic() - t0:.1f}s")
            sqlconf = write_sql_conf(tmp, server, pool)
            # Both auth servers run side by side (the idle one costs nothing)
            # and take turns, so that a slow spell of the machine hits both.
            for srv in servers:
                if srv == "dovecot":
                    why = bench_common.dovecot_missing(f"libdriver_{driver}")
                    if why:
                        print(f"dovecot/{driver}: skipped ({why})")
                        continue
                    procs[srv] = start_dovecot(tmp, server, sqlconf)
                elif srv == "baseline":
                    procs[srv] = start_postern(baseline, tmp, server, pool, sqlconf, "baseline")
                else:
                    procs[srv] = start_postern(build, tmp, server, pool, sqlconf)
            for k in range(repeat):
                order = list(procs) if k % 2 == 0 else list(reversed(procs))
                for scheme in schemes:
                    for conns, inflight in loads:
                        for srv in order:
                            proc, sock = procs[srv]
                            label = f"{srv}/{driver}/{scheme}/{conns}x{inflight}"
                            creds = os.path.join(tmp, f"creds-{scheme}")
                            pids = {"db": server.proc.pid, "auth": proc.pid}
                            if not bench_common.measured_run(loadgen, sock, conns, inflight, duration, warmup,
                                                             creds, label, results, pids):
                                failed = True
            if "postern" in procs and "PLAIN" in schemes:
                waits.append((driver, pool_wait(build, tmp, driver, loadgen, os.path.join(tmp, "creds-PLAIN"),
                                                duration)))
        finally:
            for proc, _ in procs.values():
                bench_common.stop_pid(proc)
            server.destroy()
    status = bench_common.finish(tmp, bench_common.medians(results), "driver/scheme/clients", failed,
                                 "the database server (all its processes)")
    for driver, line in waits:
        print(f"pool wait, postern/{driver}/PLAIN/32x1: {line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
