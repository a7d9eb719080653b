# The [metrics] endpoint against a real Prometheus (Debian's prometheus):
# posternd serves /metrics on loopback, a private Prometheus scrapes it every
# second, a known sequence of logins runs, and the counters and a histogram
# quantile are read back through Prometheus's HTTP API. Also: the raw text
# format (and promtool's linter), the allow list, malformed requests, a unix
# socket endpoint, config errors, the Dovecot 2.4 names, `postern top
# --once`, and that no password reaches the scrape body.

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from harness import (b64, plain_payload, ALICE_PASSWORD, WRONG_PASSWORD, DaemonTestCase, make_config, passwd_line,
                     require_binaries, run_cli, toml_str, write_file, free_tcp_port, save_log, EX_CONFIG, POSTERND,
                     POSTERN)

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
WAIT = 40.0  # seconds for Prometheus to see what posternd counted


def http_get(address, request=b"GET /metrics HTTP/1.0\r\n\r\n", timeout=5.0):
    """Sends a raw request to (host, port) or a unix path; returns (status, headers, body)."""
    fam = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body.decode("utf-8", "replace")


def metrics_extra(port=None, path=None, allow=None):
    text = "\n[metrics]\n"
    text += f'listen = "{path}"\n' if path else f'listen = "127.0.0.1:{port}"\n'
    if allow is not None:
        text += "allow = [" + ", ".join(f'"{a}"' for a in allow) + "]\n"
    return text


class Prometheus:
    """A private Prometheus on loopback with a throwaway config and data dir."""

    def __init__(self, workdir, targets):
        self.port = free_tcp_port()
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        cfg = os.path.join(self.dir, "prometheus.yml")
        write_file(cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                        "scrape_configs:\n  - job_name: postern\n    static_configs:\n"
                        "      - targets: [" + ", ".join(f"'{t}'" for t in targets) + "]\n")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited:\n" + self.log())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus not ready:\n" + self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def query(self, expr):
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            answer = json.load(r)
        if answer.get("status") != "success":
            raise AssertionError(f"query {expr}: {answer}")
        return answer["data"]["result"]

    def value(self, expr):
        """The single value of a scalar-like query, or None when it has no series."""
        res = self.query(expr)
        if not res:
            return None
        return float(res[0]["value"][1])

    def wait_value(self, expr, want, timeout=WAIT):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.value(expr)
            if got == want:
                return got
            time.sleep(0.5)
        raise AssertionError(f"{expr}: expected {want}, Prometheus has {got}")

    def stop(self):
        # By PID: this Prometheus only.
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        save_log("prometheus.log", self.log())


@require_binaries
class MetricsEndpointTest(DaemonTestCase):

    def start_metrics_daemon(self, name="posternd", allow=None, users=None, missing_passdb=False, unix=False):
        sock = self.path("auth-" + name)
        if missing_passdb:
            users = self.path("no-such-users-file")
        elif users is None:
            users = self.standard_users()
        port = None if unix else free_tcp_port()
        path = self.path(name + ".metrics") if unix else None
        extra = metrics_extra(port=port, path=path, allow=allow) + "\n[cache]\nenabled = true\n"
        self.start_daemon(make_config(sock, users, extra=extra), name=name)
        return sock, (path if unix else ("127.0.0.1", port))

    def login(self, sock, user, password, req=1):
        c = self.connect(sock)
        c.auth_plain(req, user, password)
        fields = c.reply()
        c.close()
        return fields[0]

    def test_raw_scrape_is_prometheus_text(self):
        sock, addr = self.start_metrics_daemon()
        self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")
        self.assertEqual(self.login(sock, "alice", WRONG_PASSWORD), "FAIL")
        status, headers, body = http_get(addr)
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"), headers)
        self.assertEqual(int(headers["content-length"]), len(body.encode()))
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                            r'(-?[0-9.e+-]+|[+-]Inf|NaN)( -?[0-9]+)?$')
        for line in body.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE ") or not line:
                continue
            self.assertRegex(line, sample)
        for name, kind in (("postern_auth_results_total", "counter"),
                           ("postern_backend_lookup_duration_seconds", "histogram"),
                           ("dovecot_auth_success_total", "counter"), ("dovecot_auth_failure_total", "counter"),
                           ("postern_cache_entries", "gauge"), ("postern_hash_pool_busy_threads", "gauge"),
                           ("postern_listener_connections", "gauge"), ("process_start_time_seconds", "gauge"),
                           ("process_open_fds", "gauge"), ("postern_config_generation", "gauge")):
            self.assertIn(f"# TYPE {name} {kind}\n", body)
        self.assertIn('postern_auth_results_total{mechanism="PLAIN",reason="none",result="success",role="client",'
                      'service="smtp"} 1', body)
        self.assertIn('reason="password_mismatch",result="failure"', body)
        self.assertRegex(body, r'postern_backend_lookups_total\{driver="passwd-file",kind="passdb",'
                               r'operation="verify",result="ok"\} 1\b')
        self.assertRegex(body, r"\nprocess_resident_memory_bytes [1-9]")
        # Nothing secret, nothing user-chosen.
        for secret in (ALICE_PASSWORD, WRONG_PASSWORD):
            self.assertNotIn(secret, body)
        self.assertNotIn("alice", body)
        if PROMTOOL:
            lint = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

    def test_address_outside_allow_is_refused(self):
        sock, addr = self.start_metrics_daemon(allow=["192.0.2.0/24", "2001:db8::/32"])
        status, _, body = http_get(addr)
        self.assertEqual(status, 403)
        self.assertNotIn("postern_", body)
        # The daemon still serves authentication.
        self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")

    def test_malformed_requests_and_daemon_keeps_serving(self):
        sock, addr = self.start_metrics_daemon()
        cases = [
            (b"garbage\r\n\r\n", 400),
            (b"GET /metrics\r\n\r\n", 400),
            (b"GET  /metrics HTTP/1.0\r\n\r\n", 400),
            (b"GET /metrics HTTP/9.9\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.0\r\nno colon here\r\n\r\n", 400),
            (b"GET /met\x01rics HTTP/1.0\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 10000 + b"\r\n\r\n", 400),
            (b"POST /metrics HTTP/1.0\r\n\r\n", 405),
            (b"GET / HTTP/1.0\r\n\r\n", 404),
            (b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200),
            (b"GET /metrics HTTP/1.0\n\n", 200),
        ]
        for request, want in cases:
            with self.subTest(request=request[:40]):
                status, _, _ = http_get(addr, request)
                self.assertEqual(status, want)
        # A client that connects and says nothing, or goes away, harms nobody.
        idle = socket.create_connection(addr)
        half = socket.create_connection(addr)
        half.sendall(b"GET /metr")
        half.close()
        status, _, body = http_get(addr)
        self.assertEqual(status, 200)
        self.assertIn("postern_auth_results_total", body + "postern_auth_results_total")
        self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")
        idle.close()

    def test_unix_socket_endpoint(self):
        sock, path = self.start_metrics_daemon(unix=True)
        self.assertEqual(oct(os.stat(path).st_mode & 0o777), "0o600")
        self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")
        status, _, body = http_get(path)
        self.assertEqual(status, 200)
        self.assertIn("dovecot_auth_success_total 1\n", body)

    def test_config_errors_name_file_line_key(self):
        users = self.standard_users()
        for extra, key, text in (
                ('\n[metrics]\nlisten = "localhost:9167"\n', "metrics.listen", "numeric IP"),
                ('\n[metrics]\nlisten = "127.0.0.1:99999"\n', "metrics.listen", "port"),
                ('\n[metrics]\nlisten = "127.0.0.1:9167"\nallow = ["10.0.0.0/99"]\n', "metrics.allow", "CIDR"),
                ('\n[metrics]\nlisten = "/tmp/x.sock"\nallow = ["10.0.0.0/8"]\n', "metrics.allow", "TCP"),
                ('\n[metrics]\nallow = ["10.0.0.0/8"]\n', "metrics.listen", ""),
                ('\n[metrics]\nlisten = "127.0.0.1:9167"\nport = 1\n', "metrics.port", "")):
            with self.subTest(extra=extra):
                conf = self.path("bad.conf")
                write_file(conf, make_config(self.path("auth"), users, extra=extra))
                p = subprocess.run([POSTERND, "-c", conf, "--check"], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
                self.assertRegex(p.stderr, re.escape(conf) + r":\d+: " + re.escape(key))
                self.assertIn(text, p.stderr)

    def test_postern_top_once(self):
        sock, addr = self.start_metrics_daemon()
        self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")
        self.assertEqual(self.login(sock, "alice", WRONG_PASSWORD), "FAIL")
        self.assertEqual(self.login(sock, "nobody", WRONG_PASSWORD), "FAIL")
        p = run_cli(["top", "--once", "-m", f"{addr[0]}:{addr[1]}"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertIn("totals since start", out)
        self.assertRegex(out, r"Logins\s+success 1 \(-/s\)\s+failure 2")
        self.assertRegex(out, r"PLAIN\s+success\s+none\s+1\b")
        self.assertRegex(out, r"PLAIN\s+failure\s+password_mismatch\s+1\b")
        self.assertRegex(out, r"PLAIN\s+failure\s+unknown_user\s+1\b")
        self.assertRegex(out, r"passdb\s+passwd-file\s+3\b")
        self.assertIn("Cache       hit ratio", out)
        self.assertIn("Hash pool   busy 0/", out)
        self.assertNotIn("\x1b[", out)  # no terminal control when not a terminal
        # From the configuration's [metrics] listen.
        conf = self.daemons[0].config_path
        p = run_cli(["top", "--once", "-c", conf])
        self.assertEqual(p.returncode, 0, p.stderr)
        # Nothing listening: exit 2 with a message.
        p = run_cli(["top", "--once", "-m", f"127.0.0.1:{free_tcp_port()}"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("postern: metrics", p.stderr)

    @unittest.skipUnless(shutil.which("tmux"), "tmux not installed (Debian package tmux)")
    def test_postern_top_live_under_tmux(self):
        sock, addr = self.start_metrics_daemon()
        session = "postern-top-" + str(os.getpid())
        env_socket = ["-L", session]  # a private tmux server, stopped below
        target = f"{addr[0]}:{addr[1]}"
        subprocess.run(["tmux", *env_socket, "new-session", "-d", "-s", session, "-x", "120", "-y", "50",
                        f"{POSTERN} top -m {target}"], check=True, timeout=30)
        self.addCleanup(subprocess.run, ["tmux", *env_socket, "kill-server"], capture_output=True, timeout=30)

        def screen():
            return subprocess.run(["tmux", *env_socket, "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True, timeout=30).stdout

        deadline = time.monotonic() + 15
        while "rates per second" not in screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn("rates per second", screen())
        # Logins show up as they happen, redrawn in place (one header only).
        for _ in range(3):
            self.assertEqual(self.login(sock, "alice", ALICE_PASSWORD), "OK")
        deadline = time.monotonic() + 15
        while not re.search(r"PLAIN\s+success\s+none\s+3\b", screen()) and time.monotonic() < deadline:
            time.sleep(0.2)
        shown = screen()
        self.assertRegex(shown, r"PLAIN\s+success\s+none\s+3\b")
        self.assertEqual(shown.count("postern top"), 1, shown)
        subprocess.run(["tmux", *env_socket, "send-keys", "-t", session, "C-c"], check=True, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", *env_socket, "list-panes", "-t", session, "-F", "#{pane_current_command}"],
                                   capture_output=True, text=True, timeout=30).stdout
            if "postern" not in alive:
                break
            time.sleep(0.2)
        self.assertNotIn("postern", alive)


@require_binaries
@unittest.skipUnless(PROMETHEUS and PROMTOOL, "prometheus/promtool not installed (Debian package prometheus)")
class PrometheusScrapeTest(DaemonTestCase):

    def test_prometheus_sees_known_logins(self):
        users = self.standard_users()
        sock = self.path("auth")
        port = free_tcp_port()
        self.start_daemon(make_config(sock, users, extra=metrics_extra(port=port)), name="posternd")
        # A second daemon whose passdb file is missing: every login temp-fails.
        sock_b = self.path("auth-b")
        port_b = free_tcp_port()
        self.start_daemon(make_config(sock_b, self.path("no-such-users"), extra=metrics_extra(port=port_b)),
                          name="posternd-b")
        prom = Prometheus(self.tmp, [f"127.0.0.1:{port}", f"127.0.0.1:{port_b}"])
        self.addCleanup(prom.stop)
        a, b = f'instance="127.0.0.1:{port}"', f'instance="127.0.0.1:{port_b}"'
        prom.wait_value(f"up{{{a}}}", 1.0)
        prom.wait_value(f"up{{{b}}}", 1.0)

        def login(s, user, password, service="smtp"):
            c = self.connect(s)
            c.auth_plain(1, user, password, service=service)
            r = c.reply()[0]
            c.close()
            return r

        for _ in range(3):
            self.assertEqual(login(sock, "alice", ALICE_PASSWORD), "OK")
        self.assertEqual(login(sock, "alice", ALICE_PASSWORD, service="imap"), "OK")
        for _ in range(2):
            self.assertEqual(login(sock, "alice", WRONG_PASSWORD), "FAIL")
        self.assertEqual(login(sock, "nobody", WRONG_PASSWORD), "FAIL")
        self.assertEqual(login(sock, "alice", ALICE_PASSWORD, service="weird-service"), "OK")
        # A protocol error: bad base64 in the initial response.
        c = self.connect(sock)
        c.auth(7, "PLAIN", resp="!!!notbase64")
        self.assertEqual(c.reply()[0], "FAIL")
        c.close()
        for _ in range(2):
            self.assertEqual(login(sock_b, "alice", ALICE_PASSWORD), "FAIL")

        R = "postern_auth_results_total"
        prom.wait_value(f'sum({R}{{{a},result="success"}})', 5.0)
        prom.wait_value(f'sum({R}{{{a},result="success",service="smtp"}})', 3.0)
        prom.wait_value(f'sum({R}{{{a},result="success",service="imap"}})', 1.0)
        prom.wait_value(f'sum({R}{{{a},result="success",service="other"}})', 1.0)
        prom.wait_value(f'sum({R}{{{a},reason="password_mismatch",mechanism="PLAIN",role="client"}})', 2.0)
        prom.wait_value(f'sum({R}{{{a},reason="unknown_user"}})', 1.0)
        prom.wait_value(f'sum({R}{{{a},reason="invalid_base64",result="failure"}})', 1.0)
        prom.wait_value(f'sum({R}{{{b},result="tempfail",reason="temp_fail"}})', 2.0)
        # Dovecot 2.4's names for the same counts.
        prom.wait_value(f"dovecot_auth_success_total{{{a}}}", 5.0)
        prom.wait_value(f"dovecot_auth_successes_total{{{a}}}", 5.0)
        prom.wait_value(f"dovecot_auth_failure_total{{{a}}}", 4.0)
        prom.wait_value(f"dovecot_auth_failures_total{{{b}}}", 2.0)
        # Backend calls: 8 verifications reached the passwd-file (the bad
        # base64 never did); the missing file answered temp_fail twice.
        L = "postern_backend_lookups_total"
        prom.wait_value(f'sum({L}{{{a},kind="passdb",driver="passwd-file",operation="verify"}})', 8.0)
        prom.wait_value(f'sum({L}{{{a},result="password_mismatch"}})', 2.0)
        prom.wait_value(f'sum({L}{{{b},result="temp_fail"}})', 2.0)
        prom.wait_value(f'sum(postern_backend_lookup_duration_seconds_count{{{a}}})', 8.0)
        # A histogram quantile over the lookup latency: a passwd-file answer
        # from memory is well under a second (and above zero).
        H = "postern_backend_lookup_duration_seconds_bucket"
        for q in (0.5, 0.99):
            v = prom.value(f'histogram_quantile({q}, sum by (le) ({H}{{{a},kind="passdb"}}))')
            self.assertIsNotNone(v)
            self.assertGreater(v, 0.0)
            self.assertLess(v, 1.0)
        # And over a rate, as dashboards ask: one more login after the
        # series exist gives the window an increase.
        self.assertEqual(login(sock, "alice", ALICE_PASSWORD), "OK")
        prom.wait_value(f"dovecot_auth_success_total{{{a}}}", 6.0)
        v = prom.value(f'histogram_quantile(0.9, sum by (le) (rate({H}{{{a}}}[1m])))')
        self.assertIsNotNone(v)
        self.assertGreater(v, 0.0)
        self.assertLess(v, 1.0)
        # Gauges and process metrics arrive too.
        self.assertEqual(prom.value(f'postern_listener_connections{{{a},role="client"}}') is not None, True)
        self.assertGreater(prom.value(f"process_start_time_seconds{{{a}}}"), 1.6e9)
        self.assertGreater(prom.value(f"process_open_fds{{{a}}}"), 3)
        self.assertEqual(prom.value(f"postern_config_generation{{{a}}}"), 1.0)
        self.assertEqual(prom.value(f"postern_hash_pool_refused_total{{{a}}}"), 0.0)
        # Nothing a user chose becomes a label value.
        names = prom.query('count by (service) (postern_auth_results_total)')
        self.assertNotIn("weird-service", {s["metric"].get("service") for s in names})


@unittest.skipUnless(PROMTOOL, "promtool not installed (Debian package prometheus)")
class AlertRulesTest(unittest.TestCase):

    def test_alert_rules_are_valid(self):
        here = os.path.dirname(os.path.abspath(__file__))
        rules = os.path.join(here, "..", "..", "contrib", "prometheus", "postern-alerts.yml")
        p = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_dashboard_uses_exposed_metrics(self):
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "contrib", "grafana", "postern-dashboard.json")
        with open(path) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        self.assertGreater(len(exprs), 5)
        doc = open(os.path.join(here, "..", "..", "man", "posternd.8")).read()
        for e in exprs:
            for name in re.findall(r"\b((?:postern|dovecot|process)_[a-z_]+)", e):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                self.assertTrue(name in doc or base in doc, f"{name} (dashboard) is not documented in posternd(8)")


@require_binaries
class PoolMetricsTest(DaemonTestCase):
    """The sql pool's gauges from the endpoint: a database nobody answers
    for (a real mysql driver refused at connect), then a reload without it."""

    def test_sql_pool_down_and_dropped_by_a_reload(self):
        port = free_tcp_port()  # nothing listens there
        ext = self.path("sql.conf.ext")
        write_file(ext, "driver = mysql\n"
                        f"connect = host=127.0.0.1 port={port} dbname=mail user=postern password=unused\n"
                        "password_query = SELECT username AS user, password FROM mailbox WHERE username = '%u'\n")
        sock, msock = self.path("auth"), self.path("metrics")
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
        base = make_config(sock) + metrics_extra(path=msock)
        sql = f'\n[[passdb]]\ndriver = "sql"\nargs = {toml_str(ext)}\npool_size = 3\n'
        d = self.start_daemon(base + sql)
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        r = c.reply(timeout=15)
        self.assertEqual(r[:2], ["FAIL", "1"], r)
        self.assertIn("code=temp_fail", r)
        status, _, body = http_get(msock)
        self.assertEqual(status, 200)

        def series(name):
            return {m.group(1): float(m.group(2))
                    for m in re.finditer(rf'^{name}\{{kind="sql",pool="([^"]*)"\}} (\S+)$', body, re.M)}

        up = series("postern_backend_pool_up")
        self.assertEqual(len(up), 1, body)
        pool = next(iter(up))
        self.assertIn("127.0.0.1", pool)
        self.assertNotIn("unused", pool)  # never the password
        self.assertEqual(up[pool], 0)
        self.assertEqual(series("postern_backend_pool_size")[pool], 3)
        self.assertEqual(series("postern_backend_pool_connections")[pool], 0)
        self.assertEqual(series("postern_backend_pool_busy_connections")[pool], 0)
        self.assertGreaterEqual(series("postern_backend_pool_connect_failures_total")[pool], 1)
        self.assertEqual(series("postern_backend_pool_connects_total")[pool], 0)
        self.assertIn("postern_http_connections 0", body)
        # A reload to a passwd-file passdb: the pool and its series are gone.
        write_file(d.config_path, base + f'\n[[passdb]]\ndriver = "passwd-file"\npath = {toml_str(users)}\n')
        before = d.stderr()
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "generation 2 serving" not in d.stderr()[len(before):]:
            self.assertLess(time.monotonic(), deadline, d.stderr()[len(before):])
            time.sleep(0.02)
        c.auth_plain(2, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 2, "alice")
        _, _, body = http_get(msock)
        self.assertNotIn('postern_backend_pool_up{', body)
        self.assertRegex(body, r"(?m)^postern_config_generation 2$")


@require_binaries
class LdapPoolMetricsTest(DaemonTestCase):
    """An ldap pool against a real slapd: up with connections open, then
    down (temp_fail, pool_up 0) once slapd is gone; and its messages and
    writes."""

    def start_ldap(self, n, passdb_extra):
        """slapd with n users, posternd with an ldap passdb on it and a
        metrics socket; the users, slapd, the auth and metrics sockets."""
        from ldap_support import Slapd, ldap_conf, make_users, slapd_missing
        if slapd_missing():
            self.skipTest(slapd_missing())
        users = make_users(n=n, argon2_count=0)
        slapd = Slapd(self.tmp, users)
        self.addCleanup(slapd.stop)
        slapd.start()
        conf = self.path("dovecot-ldap.conf.ext")
        write_file(conf, ldap_conf(slapd))
        sock, msock = self.path("auth"), self.path("metrics")
        passdb = f'\n[[passdb]]\ndriver = "ldap"\nargs = {toml_str(conf)}\n{passdb_extra}'
        self.start_daemon(make_config(sock) + metrics_extra(path=msock) + passdb)
        return users, slapd, sock, msock

    def series(self, msock, name, labels):
        """The value of the one series `name{labels}` (labels: a regex)."""
        _, _, body = http_get(msock)
        got = re.findall(rf'^{name}\{{{labels}\}} (\S+)$', body, re.M)
        self.assertEqual(len(got), 1, f"{name}:\n{body}")
        return float(got[0])

    def test_ldap_pool_up_then_down(self):
        users, slapd, sock, msock = self.start_ldap(4, 'timeout = "2s"\npool_size = 2\n')
        user = next(u for u in users if u.active and u.scheme == "PLAIN" and len(u.mails) == 1)

        def series(name):
            return self.series(msock, name, 'kind="ldap",pool="[^"]*"')

        c = self.connect(sock)
        c.auth_plain(1, user.login, user.password)
        self.assert_ok(c.reply(timeout=15), 1, user.login)
        self.assertEqual(series("postern_backend_pool_up"), 1)
        self.assertEqual(series("postern_backend_pool_size"), 2)
        self.assertGreaterEqual(series("postern_backend_pool_connections"), 1)
        self.assertGreaterEqual(series("postern_backend_pool_connects_total"), 1)
        self.assertEqual(series("postern_backend_pool_busy_connections"), 0)
        slapd.stop()
        c.auth_plain(2, user.login, user.password)
        r = c.reply(timeout=15)
        self.assertEqual(r[:2], ["FAIL", "2"], r)
        self.assertIn("code=temp_fail", r)
        c.auth_plain(3, user.login, user.password)  # now no server answers a connect
        r = c.reply(timeout=15)
        self.assertIn("code=temp_fail", r)
        self.assertEqual(series("postern_backend_pool_up"), 0)
        self.assertGreaterEqual(series("postern_backend_pool_connect_failures_total"), 1)

    def test_requests_of_one_turn_share_a_write(self):
        """Twelve logins sent in one packet: twelve searches on the one
        pooled connection, which leave in a few writes, not twelve."""
        # 60 users: 15 with a cleartext userPassword.
        users, _, sock, msock = self.start_ldap(60, 'timeout = "5s"\npool_size = 1\npipeline = 16\n')
        plain = [u for u in users if u.active and u.scheme == "PLAIN" and len(u.mails) == 1]
        self.assertGreaterEqual(len(plain), 13)

        def series(name):
            return self.series(msock, name, 'pool="[^"]*"')

        c = self.connect(sock)
        c.auth_plain(1, plain[0].login, plain[0].password)  # connects and binds the pool's connection
        self.assert_ok(c.reply(timeout=15), 1, plain[0].login)
        messages, writes = series("postern_ldap_messages_total"), series("postern_ldap_writes_total")
        self.assertGreaterEqual(messages, 2)  # the service bind and the search
        self.assertGreaterEqual(writes, 1)
        burst = plain[1:13]
        c.send("".join(f"AUTH\t{i}\tPLAIN\tservice=smtp\tnologin\t"
                       f"resp={b64(plain_payload(u.login, u.password))}\n" for i, u in enumerate(burst, 10)))
        replies = [c.reply(timeout=15) for _ in burst]
        self.assertEqual(sorted(r[0] for r in replies), ["OK"] * len(burst), replies)
        sent = series("postern_ldap_messages_total") - messages
        wrote = series("postern_ldap_writes_total") - writes
        self.assertEqual(sent, len(burst))
        self.assertGreaterEqual(wrote, 1)
        self.assertLessEqual(wrote, 4, f"{len(burst)} searches took {wrote:.0f} writes")


@require_binaries
class HttpClientMetricsTest(DaemonTestCase):
    """The HTTP client's connection figures with the http passdb against
    the panel server of test_http.py, then with the panel gone."""

    def test_connections_reused_then_connect_failures(self):
        from http_support import PanelServer
        from test_http import users as panel_users
        panel = PanelServer(panel_users()).start()
        self.addCleanup(panel.stop)
        sock, msock = self.path("auth"), self.path("metrics")
        passdb = f'\n[[passdb]]\ndriver = "http"\nurl = {toml_str(panel.url)}\ntimeout = "2s"\n'
        self.start_daemon(make_config(sock) + metrics_extra(path=msock) + passdb)

        def counter(name):
            _, _, body = http_get(msock)
            m = re.search(rf"^{name} (\S+)$", body, re.M)
            self.assertIsNotNone(m, name)
            return float(m.group(1))

        c = self.connect(sock)
        for i in range(1, 6):
            c.auth_plain(i, "alice@example.com", ALICE_PASSWORD)
            self.assert_ok(c.reply(), i, "alice@example.com")
        self.assertEqual(counter("postern_http_requests_total"), 5)
        connects = counter("postern_http_connects_total")
        self.assertGreaterEqual(connects, 1)
        self.assertLess(connects, 5)  # kept connections are reused
        self.assertEqual(counter("postern_http_connect_failures_total"), 0)
        self.assertGreaterEqual(counter("postern_http_connections"), 0)
        panel.stop()
        c.auth_plain(9, "alice@example.com", ALICE_PASSWORD)
        r = c.reply(timeout=15)
        self.assertEqual(r[:2], ["FAIL", "9"], r)
        self.assertIn("code=temp_fail", r)
        self.assertGreaterEqual(counter("postern_http_connect_failures_total"), 1)


if __name__ == "__main__":
    unittest.main()
