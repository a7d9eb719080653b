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
#   BENCH_KEEP=1              keep the temp dir (configs, logs)
#
# Half of the mailboxes store {PLAIN} passwords (the database path dominates),
# half bare $6$ hashes read with default_pass_scheme = SHA512-CRYPT (hashing
# dominates; all share one hash, verification costs the same). Dovecot's auth
# service reads the very same dovecot-sql.conf.ext (its MySQL lookups run in
# auth-worker processes, PostgreSQL ones asynchronously in the auth process).

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import databases  # noqa: E402

MAILBOXES = 10000
LOADS = [(1, 1), (32, 1)]  # connections, in flight per connection
DOMAIN = "bench.example"
STARTUP_TIMEOUT = 15


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


def write_sql_conf(tmp, server, pool):
    sqlconf = os.path.join(tmp, f"{server.driver}.conf.ext")
    with open(sqlconf, "w", encoding="ascii") as f:
        f.write(f"driver = {server.driver}\n"
                f"connect = {server.connect_string(maxconns=pool)}\n"
                "default_pass_scheme = SHA512-CRYPT\n"
                "password_query = SELECT m.username AS user, m.password FROM mailbox m "
                "JOIN domain d ON d.domain = m.domain WHERE m.username = '%u' "
                "AND m.active = '1' AND d.active = '1'\n")
    os.chmod(sqlconf, 0o644)
    return sqlconf


def wait_socket(proc, sock, log_name):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc)
            raise RuntimeError(f"server did not start; see {log_name}")
        time.sleep(0.05)


def dovecot_missing(driver):
    if not shutil.which("dovecot"):
        return "dovecot-core not installed"
    if not os.path.exists(f"/usr/lib/dovecot/modules/auth/libdriver_{driver}.so"):
        return f"dovecot-{driver} not installed"
    return None


def start_dovecot(tmp, server, sqlconf):
    base = os.path.join(tmp, f"dovecot-{server.driver}")
    os.makedirs(os.path.join(base, "run"), exist_ok=True)
    os.makedirs(os.path.join(base, "state"), exist_ok=True)
    os.chmod(base, 0o755)
    sock = os.path.join(base, "auth")
    extra = ""
    if os.geteuid() != 0:
        import grp
        import pwd
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        extra = (f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
                 f"default_login_user = {user}\n")
    conf = os.path.join(base, "dovecot.conf")
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"""# Private Dovecot running only its auth service, for comparison.
base_dir = {base}/run
state_dir = {base}/state
instance_name = postern-sqlbench-{os.getpid()}-{server.driver}
protocols =
ssl = no
log_path = {base}/dovecot.log
{extra}auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = no
auth_username_format = %u
service auth {{
  unix_listener auth-client {{
    path = {sock}
    mode = 0666
  }}
}}
passdb {{
  driver = sql
  args = {sqlconf}
}}
""")
    log = open(os.path.join(base, "dovecot.stderr"), "wb")
    proc = subprocess.Popen(["dovecot", "-c", conf, "-F"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log, start_new_session=True)
    wait_socket(proc, sock, os.path.join(base, "dovecot.log"))
    return proc, sock


def start_postern(build, tmp, server, pool, sqlconf):
    sock = os.path.join(tmp, f"{server.driver}.sock")
    conf = os.path.join(tmp, f"{server.driver}.toml")
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"""[log]
level = "warning"

[auth]
mechanisms = ["PLAIN"]
failure_delay = 0
username_format = "%u"

[[listener]]
type = "unix"
path = "{sock}"
mode = "0666"
role = "client"

[[passdb]]
driver = "sql"
args = "{sqlconf}"
pool_size = {pool}
""")
    log = open(os.path.join(tmp, f"posternd-{server.driver}.log"), "wb")
    proc = subprocess.Popen([os.path.join(build, "posternd"), "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    wait_socket(proc, sock, log.name)
    return proc, sock


def stop_pid(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if not os.path.isdir(build) and os.path.isdir(os.path.join(SRC, build)):
        build = os.path.join(SRC, build)
    build = os.path.abspath(build)
    loadgen = os.path.join(build, "tests", "bench", "loadgen")
    for exe in (os.path.join(build, "posternd"), loadgen):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"sql_bench: {exe} not built")
    duration = os.environ.get("BENCH_DURATION", "5")
    warmup = os.environ.get("BENCH_WARMUP", "1")
    drivers = os.environ.get("BENCH_DRIVERS", "mysql pgsql").split()
    schemes = os.environ.get("BENCH_SCHEMES", "PLAIN SHA512-CRYPT").split()
    pool = int(os.environ.get("BENCH_POOL", "8"))
    servers = os.environ.get("BENCH_SERVERS", "postern dovecot").split()
    tmp = tempfile.mkdtemp(prefix="postern-sqlbench-")
    os.chmod(tmp, 0o755)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               os.uname().machine)
    print(f"postern sql benchmark  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}, load average "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"PostfixAdmin schema, {MAILBOXES} mailboxes; pool_size {pool}; "
          f"{warmup}s warm-up + {duration}s measured per run\n")
    results = []
    failed = False
    for driver in drivers:
        cls = databases.MariaDB if driver == "mysql" else databases.PostgreSQL
        missing = databases.mariadb_missing() if driver == "mysql" else databases.postgres_missing()
        if missing:
            print(f"{driver}: skipped ({missing})")
            continue
        server = cls()
        proc = None
        try:
            t0 = time.monotonic()
            server.start()
            server.setup_postfixadmin()
            load_mailboxes(server, tmp)
            print(f"{driver}: server ready with {MAILBOXES} mailboxes in {time.monotonic() - t0:.1f}s")
            sqlconf = write_sql_conf(tmp, server, pool)
            for srv in servers:
                if srv == "dovecot":
                    why = dovecot_missing(driver)
                    if why:
                        print(f"dovecot/{driver}: skipped ({why})")
                        continue
                    proc, sock = start_dovecot(tmp, server, sqlconf)
                else:
                    proc, sock = start_postern(build, tmp, server, pool, sqlconf)
                for scheme in schemes:
                    for conns, inflight in LOADS:
                        label = f"{srv}/{driver}/{scheme}/{conns}x{inflight}"
                        p = subprocess.run([loadgen, "--socket", sock, "--connections", str(conns),
                                            "--inflight", str(inflight), "--duration", duration,
                                            "--warmup", warmup, "--users",
                                            os.path.join(tmp, f"creds-{scheme}"), "--label", label],
                                           capture_output=True, text=True, timeout=300)
                        out = [l for l in p.stdout.splitlines() if not l.startswith("RESULT ")]
                        print("\n".join(out))
                        if p.returncode != 0:
                            print(f"  ^ loadgen exit status {p.returncode}: {p.stderr.strip()[-300:]}")
                            failed = True
                        for line in p.stdout.splitlines():
                            if line.startswith("RESULT "):
                                results.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
                stop_pid(proc)
                proc = None
        finally:
            if proc:
                stop_pid(proc)
            server.destroy()
    print("\nsummary (auths/s, latency ms; ratio = postern / dovecot auths/s)")
    by = {}
    for r in results:
        srv, _, case = r.get("label", "?/?").partition("/")
        by[(srv, case)] = r
    cases = list(dict.fromkeys(case for _, case in by))
    print(f"{'driver/scheme/clients':<28} {'postern/s':>9} {'p50':>8} {'p99':>8} | "
          f"{'dovecot/s':>9} {'p50':>8} {'p99':>8} | ratio")

    def cell(srv, case):
        r = by.get((srv, case))
        if not r:
            return f"{'-':>9} {'-':>8} {'-':>8}"
        return (f"{float(r['auths_per_s']):>9.0f} {float(r['p50_ms']):>8.3f} "
                f"{float(r['p99_ms']):>8.3f}")
    for case in cases:
        p, d = by.get(("postern", case)), by.get(("dovecot", case))
        ratio = (f"{float(p['auths_per_s']) / float(d['auths_per_s']):.2f}"
                 if p and d and float(d["auths_per_s"]) > 0 else "-")
        print(f"{case:<28} {cell('postern', case)} | {cell('dovecot', case)} | {ratio}")
    if os.environ.get("BENCH_KEEP") == "1":
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
