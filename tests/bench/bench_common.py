# What the Python benchmarks (sql_bench.py, ldap_bench.py) share: the build
# directory and load generator, a private Dovecot auth service and a posternd
# started on one passdb (and userdb), one loadgen run, and the summary table
# with the postern / Dovecot ratio.

import os
import shutil
import signal
import statistics
import subprocess
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTUP_TIMEOUT = 15
LOADS = [(1, 1), (32, 1)]  # connections, in flight per connection


def find_build(argv, name):
    """(build dir, loadgen path) from argv[1] (default: build), or exits."""
    build = argv[1] if len(argv) > 1 else "build"
    if not os.path.isdir(build) and os.path.isdir(os.path.join(SRC, build)):
        build = os.path.join(SRC, build)
    build = os.path.abspath(build)
    loadgen = os.path.join(build, "tests", "bench", "loadgen")
    for exe in (os.path.join(build, "posternd"), loadgen):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{name}: {exe} not built")
    return build, loadgen


def print_header(title):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               os.uname().machine)
    print(f"{title}  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}, load average "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")


def stop_pid(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_socket(proc, sock, log_name):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc)
            raise RuntimeError(f"server did not start; see {log_name}")
        time.sleep(0.05)


def dovecot_missing(module):
    """Why Dovecot's auth with `module` (libdriver_mysql, libauthdb_ldap...) cannot run, or None."""
    if not shutil.which("dovecot"):
        return "dovecot-core not installed"
    if not os.path.exists(f"/usr/lib/dovecot/modules/auth/{module}.so"):
        return f"{module}.so missing (its dovecot package is not installed)"
    return None


def start_dovecot(base, name, dbs, extra=""):
    """Dovecot 2.3 running only its auth service in `base`; `dbs` is the
    passdb/userdb blocks. Returns (process, auth-client socket)."""
    os.makedirs(os.path.join(base, "run"), exist_ok=True)
    os.makedirs(os.path.join(base, "state"), exist_ok=True)
    os.chmod(base, 0o755)
    sock = os.path.join(base, "auth")
    if os.geteuid() != 0:
        import grp
        import pwd
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        extra += (f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
                  f"default_login_user = {user}\n")
    conf = os.path.join(base, "dovecot.conf")
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"""# Private Dovecot running only its auth service, for comparison.
base_dir = {base}/run
state_dir = {base}/state
instance_name = postern-bench-{os.getpid()}-{name}
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
{dbs}""")
    log = open(os.path.join(base, "dovecot.stderr"), "wb")
    proc = subprocess.Popen(["dovecot", "-c", conf, "-F"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log, start_new_session=True)
    wait_socket(proc, sock, os.path.join(base, "dovecot.log"))
    return proc, sock


def start_postern(build, tmp, name, dbs):
    """posternd with PLAIN on a unix socket and the [[passdb]]/[[userdb]]
    tables `dbs`. Returns (process, socket)."""
    sock = os.path.join(tmp, f"{name}.sock")
    conf = os.path.join(tmp, f"{name}.toml")
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

{dbs}""")
    log = open(os.path.join(tmp, f"posternd-{name}.log"), "wb")
    proc = subprocess.Popen([os.path.join(build, "posternd"), "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    wait_socket(proc, sock, log.name)
    return proc, sock


def run_loadgen(loadgen, sock, conns, inflight, duration, warmup, creds, label, results):
    """One measured run; prints its lines, appends its RESULT to `results`.
    Returns False when the load generator reported a failure."""
    p = subprocess.run([loadgen, "--socket", sock, "--connections", str(conns), "--inflight", str(inflight),
                        "--duration", duration, "--warmup", warmup, "--users", creds, "--label", label],
                       capture_output=True, text=True, timeout=300)
    print("\n".join(l for l in p.stdout.splitlines() if not l.startswith("RESULT ")), flush=True)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            results.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    if p.returncode != 0:
        print(f"  ^ loadgen exit status {p.returncode}: {p.stderr.strip()[-300:]}")
        return False
    return True


def process_tree_cpu(pid):
    """CPU seconds (user + system) used so far by process `pid`, its live
    descendants and the children it has reaped: a database server's
    connection processes (PostgreSQL) or threads (MariaDB) all count."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            stats[int(entry)] = fields  # fields[1] = ppid, [11..14] = utime stime cutime cstime
    children = {}
    for p, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(p)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            f = stats[p]
            total += int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if p == pid else 0)
        todo.extend(children.get(p, []))
    return total / tick


def measured_run(loadgen, sock, conns, inflight, duration, warmup, creds, label, results, pids):
    """run_loadgen, and the CPU that `pids` (name -> pid) used over the
    measured seconds (sampled at the end of the warm-up), added to the
    RESULT as <name>_cpu_ms_per_1k: milliseconds of CPU per 1,000 logins."""
    start = {}
    timer = threading.Timer(float(warmup), lambda: start.update((n, process_tree_cpu(p)) for n, p in pids.items()))
    timer.start()
    before = len(results)
    ok = run_loadgen(loadgen, sock, conns, inflight, duration, warmup, creds, label, results)
    timer.join()
    if len(results) > before and start:
        r = results[-1]
        requests = int(r.get("requests", "0"))
        for name, pid in pids.items():
            used = process_tree_cpu(pid) - start[name]
            r[f"{name}_cpu_ms_per_1k"] = f"{used * 1e6 / requests:.1f}" if requests else "0"
    return ok


def print_cpu(summary, first_column, db_words):
    """CPU per 1,000 logins (from measured_run) of the directory or database
    server ("db") and the auth server, for each server measured (postern,
    a baseline build when there is one, Dovecot), per case."""
    print(f"\nCPU per 1,000 logins, ms (medians): {db_words} and the auth server")
    by = {tuple(r["label"].split("/", 1)): r for r in summary}
    cases = list(dict.fromkeys(case for _, case in by))
    servers = ["postern"] + (["baseline"] if any(srv == "baseline" for srv, _ in by) else []) + ["dovecot"]
    width = max([len(first_column)] + [len(c) for c in cases])
    print(f"{first_column:<{width}} " + " | ".join(f"{srv + ' db':>11} {'auth':>7}" for srv in servers))

    def cpu(srv, case, key):
        r = by.get((srv, case))
        return f"{float(r[key]):.0f}" if r and key in r else "-"
    for case in cases:
        print(f"{case:<{width}} " + " | ".join(
            f"{cpu(srv, case, 'db_cpu_ms_per_1k'):>11} {cpu(srv, case, 'auth_cpu_ms_per_1k'):>7}" for srv in servers))


def medians(results):
    """One result per label: the median of each number over the repeats."""
    by = {}
    for r in results:
        by.setdefault(r["label"], []).append(r)
    out = []
    for label, runs in by.items():
        m = {"label": label}
        for key in runs[0]:
            if key == "label":
                continue
            try:
                m[key] = str(statistics.median(float(r[key]) for r in runs if key in r))
            except ValueError:
                m[key] = runs[0][key]
        out.append(m)
    return out


def finish(tmp, results, first_column, failed, db_words=None):
    """Prints the summary (and with `db_words` the CPU table), removes `tmp`
    (unless BENCH_KEEP=1); the exit status."""
    print_summary(results, first_column)
    if db_words:
        print_cpu(results, first_column, db_words)
    remove_tmp(tmp)
    return 1 if failed else 0


def remove_tmp(tmp):
    """Removes the run's temp dir, or says where it is with BENCH_KEEP=1."""
    if os.environ.get("BENCH_KEEP") == "1":
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def print_summary(results, first_column):
    """One row per case (label after "postern/" or "dovecot/"): both servers'
    auths/s, p50, p99 and the ratio postern / dovecot."""
    print("\nsummary (auths/s, latency ms; ratio = postern / dovecot auths/s)")
    by = {}
    for r in results:
        srv, _, case = r.get("label", "?/?").partition("/")
        by[(srv, case)] = r
    cases = list(dict.fromkeys(case for _, case in by))
    width = max([len(first_column)] + [len(c) for c in cases])
    print(f"{first_column:<{width}} {'postern/s':>9} {'p50':>8} {'p99':>8} | "
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
        print(f"{case:<{width}} {cell('postern', case)} | {cell('dovecot', case)} | {ratio}")
    if any(srv == "baseline" for srv, _ in by):
        print("\nbaseline build (BENCH_BASELINE), same runs; ratio = postern / baseline auths/s")
        for case in cases:
            p, b = by.get(("postern", case)), by.get(("baseline", case))
            ratio = (f"{float(p['auths_per_s']) / float(b['auths_per_s']):.2f}"
                     if p and b and float(b["auths_per_s"]) > 0 else "-")
            print(f"{case:<{width}} {cell('baseline', case)} | {ratio}")
