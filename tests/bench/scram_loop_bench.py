#!/usr/bin/env python3
# Does SCRAM key derivation stall the event loop? One connection sends cheap
# AUTH PLAIN logins one after another (a {PLAIN} passwd-file user) and
# records each one's latency, while 64 SCRAM-SHA-256 logins are in flight on
# other connections against users whose passwords a backend stores in
# cleartext: sasldb, MySQL and PostgreSQL (PostfixAdmin tables, {PLAIN}
# rows). Each such login makes posternd derive SCRAM keys (PBKDF2, 4096
# iterations). Where that runs on the hashing pool the PLAIN p99 stays near
# a round trip; where it runs on the event loop every PLAIN login waits
# behind the derivations queued before it.
#
#   python3 tests/bench/scram_loop_bench.py BUILD_DIR [OTHER_BUILD_DIR]
#
# Prints, per backend and build: PLAIN logins measured, p50/p99/max latency
# in ms, and SCRAM logins/s completed meanwhile; with two builds, the ratio
# of their PLAIN p99s. OTHER_BUILD_DIR is typically a build of an older
# commit (git worktree add /tmp/old REV && meson setup /tmp/old/b ...).
#
# Environment: BENCH_DURATION=5 (measured seconds per run),
# BENCH_BACKENDS="sasldb mysql pgsql", BENCH_SCRAM_INFLIGHT=64.
# The SCRAM client caches the salted password per (salt, iterations), so its
# own cost is a few HMACs per login and the server's PBKDF2 dominates.

import asyncio
import base64
import hashlib
import hmac
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import databases  # noqa: E402

FAST_USER, FAST_PASSWORD = "fast@bench.example", "fast-bench-pw-1"
SCRAM_USERS = [(f"s{i:03d}@bench.example", f"scram-bench-pw-{i:03d}") for i in range(64)]
DOMAIN = "bench.example"
SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


# --- protocol clients -------------------------------------------------------

def read_handshake(f):
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("server closed during handshake")
        if line.rstrip("\n") == "DONE":
            return


def plain_prober(sock_path, duration, out):
    """Sequential PLAIN logins on one connection; latencies in seconds."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("r", encoding="utf-8", newline="\n")
    s.sendall(f"VERSION\t1\t0\nCPID\t{os.getpid()}\n".encode())
    read_handshake(f)
    resp = b64(f"\0{FAST_USER}\0{FAST_PASSWORD}")
    lat = []
    end = time.monotonic() + duration
    i = 0
    while time.monotonic() < end:
        i += 1
        t0 = time.perf_counter()
        s.sendall(f"AUTH\t{i}\tPLAIN\tservice=smtp\tnologin\tresp={resp}\n".encode())
        line = f.readline()
        lat.append(time.perf_counter() - t0)
        if not line.startswith(f"OK\t{i}\t"):
            raise RuntimeError(f"PLAIN login failed: {line!r}")
    out.put(lat)


async def scram_worker(sock_path, users, stop_at, counter, salted_cache):
    reader, writer = await asyncio.open_unix_connection(sock_path)
    writer.write(f"VERSION\t1\t0\nCPID\t{os.getpid()}\n".encode())
    while (await reader.readline()).decode().rstrip("\n") != "DONE":
        pass
    req = 0
    while time.monotonic() < stop_at:
        user, password = users[req % len(users)]
        req += 1
        nonce = os.urandom(12).hex()
        bare = f"n={user},r={nonce}"
        writer.write(f"AUTH\t{req}\tSCRAM-SHA-256\tservice=smtp\tnologin\tresp={b64('n,,' + bare)}\n".encode())
        line = (await reader.readline()).decode().rstrip("\n").split("\t")
        if line[0] != "CONT":
            raise RuntimeError(f"SCRAM first step failed: {line}")
        server_first = base64.b64decode(line[2]).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        key = (password, attrs["s"], attrs["i"])
        salted = salted_cache.get(key)
        if salted is None:
            salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            salted_cache[key] = salted
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without = f"c={b64('n,,')},r={attrs['r']}"
        auth_message = f"{bare},{server_first},{without}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored, auth_message, "sha256").digest()))
        writer.write(f"CONT\t{req}\t{b64(without + ',p=' + b64(proof))}\n".encode())
        line = (await reader.readline()).decode().rstrip("\n").split("\t")
        if line[0] != "CONT":
            raise RuntimeError(f"SCRAM final step failed for {user}: {line}")
        writer.write(f"CONT\t{req}\t\n".encode())
        line = (await reader.readline()).decode().rstrip("\n").split("\t")
        if line[0] != "OK":
            raise RuntimeError(f"SCRAM login failed for {user}: {line}")
        counter[0] += 1
    writer.close()


def scram_load(sock_path, duration, inflight, out):
    async def main():
        counter = [0]
        cache = {}
        stop_at = time.monotonic() + duration
        await asyncio.gather(*(scram_worker(sock_path, SCRAM_USERS[i::inflight] or SCRAM_USERS, stop_at,
                                            counter, cache) for i in range(inflight)))
        return counter[0]
    out.put(asyncio.run(main()))


# --- servers ----------------------------------------------------------------

def write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def backend_passdb(tmp, backend, servers):
    if backend == "sasldb":
        db = os.path.join(tmp, "sasldb2")
        if not os.path.exists(db):
            for user, pw in SCRAM_USERS:
                local = user.split("@")[0]
                subprocess.run([SASLPASSWD2, "-f", db, "-p", "-c", "-u", DOMAIN, local], input=pw.encode(),
                               check=True, capture_output=True, timeout=30)
            os.chmod(db, 0o644)
        return f'driver = "sasldb"\npath = "{db}"\n'
    server = servers[backend]
    conf = os.path.join(tmp, f"{backend}.conf.ext")
    write(conf, f"driver = {backend}\nconnect = {server.connect_string()}\n"
                "default_pass_scheme = PLAIN\n"
                "password_query = SELECT username AS user, password FROM mailbox "
                "WHERE username = '%u' AND active = '1'\n")
    return f'driver = "sql"\nargs = "{conf}"\npool_size = 8\n'


def start_posternd(build, tmp, name, passdb):
    sock = os.path.join(tmp, f"{name}.sock")
    users = os.path.join(tmp, "users")
    write(users, f"{FAST_USER}:{{PLAIN}}{FAST_PASSWORD}::::::\n")
    conf = os.path.join(tmp, f"{name}.toml")
    write(conf, f"""[log]
level = "warning"
[auth]
mechanisms = ["PLAIN", "SCRAM-SHA-256"]
failure_delay = 0
[penalty]
enabled = false
[[listener]]
type = "unix"
path = "{sock}"
mode = "0666"
role = "client"
[[passdb]]
driver = "passwd-file"
path = "{users}"
[[passdb]]
{passdb}""")
    log = open(os.path.join(tmp, f"{name}.log"), "wb")
    proc = subprocess.Popen([os.path.join(build, "posternd"), "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 15
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"posternd did not start; see {log.name}")
        time.sleep(0.05)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(build, tmp, backend, servers, duration, inflight):
    name = f"{backend}-{abs(hash(build)) % 10000}"
    proc = start_posternd(build, tmp, name, backend_passdb(tmp, backend, servers))
    try:
        sock = os.path.join(tmp, f"{name}.sock")
        q_plain, q_scram = multiprocessing.Queue(), multiprocessing.Queue()
        # Warm-up: the SCRAM client's salted-password cache and the pools.
        warm = multiprocessing.Process(target=scram_load, args=(sock, 1.0, inflight, q_scram))
        warm.start()
        q_scram.get(timeout=120)
        warm.join()
        loader = multiprocessing.Process(target=scram_load, args=(sock, duration + 1.0, inflight, q_scram))
        loader.start()
        time.sleep(0.5)
        prober = multiprocessing.Process(target=plain_prober, args=(sock, duration, q_plain))
        prober.start()
        lat = q_plain.get(timeout=duration + 120)
        scram_done = q_scram.get(timeout=duration + 120)
        prober.join()
        loader.join()
    finally:
        stop(proc)
    lat.sort()
    ms = [x * 1000 for x in lat]
    return {"n": len(ms), "p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "max": ms[-1], "scram_per_s": scram_done / (duration + 1.0)}


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: scram_loop_bench.py BUILD_DIR [OTHER_BUILD_DIR]", file=sys.stderr)
        return 2
    builds = [os.path.abspath(b) for b in sys.argv[1:]]
    duration = float(os.environ.get("BENCH_DURATION", "5"))
    inflight = int(os.environ.get("BENCH_SCRAM_INFLIGHT", "64"))
    backends = os.environ.get("BENCH_BACKENDS", "sasldb mysql pgsql").split()
    tmp = tempfile.mkdtemp(prefix="postern-scrambench-")
    os.chmod(tmp, 0o755)
    servers = {}
    try:
        for backend, cls, missing in (("mysql", databases.MariaDB, databases.mariadb_missing),
                                      ("pgsql", databases.PostgreSQL, databases.postgres_missing)):
            if backend not in backends:
                continue
            if missing():
                print(f"{backend}: skipped ({missing()})")
                backends.remove(backend)
                continue
            s = cls()
            s.start()
            s.setup_postfixadmin()
            rows = ",\n".join(
                f"('{u}', '{{PLAIN}}{p}', '', '{DOMAIN}/{u.split('@')[0]}/', 0, '{u.split('@')[0]}', '{DOMAIN}', '1')"
                for u, p in SCRAM_USERS)
            s.sql(f"INSERT INTO domain (domain, description, active) VALUES ('{DOMAIN}', 'bench', '1');\n"
                  "INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active) "
                  f"VALUES {rows};\n", databases.DB_NAME)
            servers[backend] = s
        print(f"PLAIN latency on one connection while {inflight} SCRAM-SHA-256 logins run on others "
              f"({duration:g} s per run, {os.cpu_count()} cores)")
        print(f"{'backend':8} {'build':40} {'PLAIN n':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'SCRAM/s':>8}")
        for backend in backends:
            p99 = []
            for build in builds:
                r = measure(build, tmp, backend, servers, duration, inflight)
                p99.append(r["p99"])
                print(f"{backend:8} {build[-40:]:40} {r['n']:8d} {r['p50']:8.2f} {r['p99']:8.2f} "
                      f"{r['max']:8.2f} {r['scram_per_s']:8.0f}", flush=True)
            if len(p99) == 2 and p99[1] > 0:
                print(f"{backend:8} PLAIN p99, first build / second build: {p99[0] / p99[1]:.1f}", flush=True)
    finally:
        for s in servers.values():
            s.destroy()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
