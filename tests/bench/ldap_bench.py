#!/usr/bin/env python3
# Benchmark of the ldap passdb: posternd and Dovecot 2.3's auth service (its
# ldap driver, Debian dovecot-ldap) on the very same dovecot-ldap.conf.ext
# in front of the same throwaway slapd (tests/integration/ldap_support.py:
# iRedMail-like layout, mail addresses as login names). AUTH PLAIN over a
# unix socket with tests/bench/loadgen; prints auths/s and p50/p99 latency
# per mode, stored scheme and number of concurrent clients (1 and 32), and
# the ratio postern / Dovecot; then the CPU that slapd and each auth server
# used per 1,000 logins over the measured seconds.
#
#   python3 tests/bench/ldap_bench.py [BUILD_DIR]      (default BUILD_DIR: build)
#   BENCH_SUITE=ldap bash tests/bench/run.sh [BUILD_DIR]   (the same)
#
# Environment:
#   BENCH_DURATION=5          measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_MODES="lookup bind" lookup: fetch userPassword as the service DN and
#                             verify it; bind: search the user's DN, then bind as it
#   BENCH_SCHEMES="PLAIN SSHA"
#   BENCH_POOL=8              pool_size of the ldap passdb (lookup and bind pools each)
#   BENCH_PIPELINE=8          pipeline of the ldap passdb (searches outstanding per lookup connection)
#   BENCH_SERVERS="postern dovecot"
#   BENCH_REPEAT=1            runs per case (the servers take turns); the summary shows medians
#   BENCH_KEEP=1              keep the temp dir (configs, logs)
#
# Half of the entries store the password in cleartext (read as {PLAIN}
# through default_pass_scheme = PLAIN), half as {SSHA} (salted SHA-1, as
# slappasswd writes it). In lookup mode the authentication server verifies
# the value; in bind mode slapd does.

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)

import bench_common  # noqa: E402
from bench_common import LOADS  # noqa: E402

USERS_PER_SCHEME = 1000
SCHEMES = ("PLAIN", "SSHA")


def make_users(ldap_support):
    users, creds = [], {s: [] for s in SCHEMES}
    for k, scheme in enumerate(SCHEMES):
        for j in range(USERS_PER_SCHEME):
            i = k * USERS_PER_SCHEME + j
            pw = ldap_support.user_password(i)
            # Cleartext as slapd keeps it (no {SCHEME}: slapd compares such a
            # value as it is on a bind; lookups read it as {PLAIN} through
            # default_pass_scheme = PLAIN).
            stored = pw if scheme == "PLAIN" else ldap_support.ssha(pw)
            mail = f"user{i:04d}@example.com"
            users.append(ldap_support.User(i, scheme, stored, [mail]))
            creds[scheme].append(f"{mail}:{pw}")
    return users, creds


def main():
    build, loadgen = bench_common.find_build(sys.argv, "ldap_bench")
    os.environ.setdefault("POSTERN_BUILD", build)
    import ldap_support  # noqa: E402  (reads POSTERN_BUILD)

    duration = os.environ.get("BENCH_DURATION", "5")
    warmup = os.environ.get("BENCH_WARMUP", "1")
    modes = os.environ.get("BENCH_MODES", "lookup bind").split()
    schemes = os.environ.get("BENCH_SCHEMES", " ".join(SCHEMES)).split()
    pool = int(os.environ.get("BENCH_POOL", "8"))
    pipeline = int(os.environ.get("BENCH_PIPELINE", "8"))
    servers = os.environ.get("BENCH_SERVERS", "postern dovecot").split()
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    missing = ldap_support.slapd_missing()
    if missing:
        print(f"ldap_bench: skipped ({missing})")
        return 0
    tmp = tempfile.mkdtemp(prefix="postern-ldapbench-")
    os.chmod(tmp, 0o755)
    bench_common.print_header("postern ldap benchmark")
    print(f"slapd (mdb), {USERS_PER_SCHEME} entries per scheme; pool_size {pool}, pipeline {pipeline}; "
          f"{warmup}s warm-up + {duration}s measured per run, {repeat} run(s) per case, medians\n")
    users, creds = make_users(ldap_support)
    for scheme, lines in creds.items():
        with open(os.path.join(tmp, f"creds-{scheme}"), "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
    slapd = ldap_support.Slapd(tmp, users)
    results = []
    failed = False
    procs = []
    try:
        t0 = time.monotonic()
        slapd.start()
        print(f"slapd ready with {len(users)} entries in {time.monotonic() - t0:.1f}s", flush=True)
        for mode in modes:
            conf = os.path.join(tmp, f"dovecot-ldap-{mode}.conf.ext")
            with open(conf, "w", encoding="ascii") as f:
                f.write(ldap_support.ldap_conf(slapd, auth_bind=(mode == "bind")))
            os.chmod(conf, 0o644)
            # Both servers run side by side (an idle one costs nothing) and
            # each case is measured on one right after the other, so both
            # see the same machine noise.
            socks = {}
            for srv in servers:
                if srv == "dovecot":
                    why = bench_common.dovecot_missing("libauthdb_ldap")
                    if why:
                        print(f"dovecot/{mode}: skipped ({why})")
                        continue
                    socks[srv] = bench_common.start_dovecot(
                        os.path.join(tmp, f"dovecot-{mode}"), f"ldap-{mode}",
                        f"passdb {{\n  driver = ldap\n  args = {conf}\n}}\n")
                else:
                    socks[srv] = bench_common.start_postern(
                        build, tmp, f"ldap-{mode}",
                        f'[[passdb]]\ndriver = "ldap"\nargs = "{conf}"\npool_size = {pool}\n'
                        f'pipeline = {pipeline}\n')
                procs.append(socks[srv][0])
            cases = [(s, c, i) for _ in range(repeat) for s in schemes for c, i in LOADS]
            for scheme, conns, inflight in cases:
                for srv, (proc, sock) in socks.items():
                    label = f"{srv}/{mode}/{scheme}/{conns}"
                    if not bench_common.measured_run(loadgen, sock, conns, inflight, duration, warmup,
                                                     os.path.join(tmp, f"creds-{scheme}"), label, results,
                                                     {"db": slapd.proc.pid, "auth": proc.pid}):
                        failed = True
            while procs:
                bench_common.stop_pid(procs.pop())
    finally:
        while procs:
            bench_common.stop_pid(procs.pop())
        slapd.stop()
    return bench_common.finish(tmp, bench_common.medians(results), "mode/scheme/clients", failed, "slapd")


if __name__ == "__main__":
    sys.exit(main())
