# Shared by the Postfix integration tests: a private Postfix instance (own
# config, queue and data directories, loopback ports) built from
# contrib/postfix/main.cf and master.cf, so the snippets admins copy are
# exercised as written; swaks as the client; and PostfixTestCase, which
# starts Postfix and the posternd(s) it asks once per test class.

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import REPO_ROOT, SECRETS, Daemon, free_tcp_port, require_binaries, write_file

POSTFIX = shutil.which("postfix") or ("/usr/sbin/postfix" if os.path.exists("/usr/sbin/postfix")
                                      else None)
SWAKS = shutil.which("swaks")
OPENSSL = shutil.which("openssl")
CONTRIB = os.path.join(REPO_ROOT, "contrib", "postfix")

# The Postfix helper services a minimal instance needs, none chrooted.
HELPER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_missing():
    """A skip reason when the private Postfix cannot run here, else None."""
    if os.geteuid() != 0:
        return "the private Postfix instance needs root"
    for name, path in (("postfix", POSTFIX), ("swaks", SWAKS), ("openssl", OPENSSL)):
        if not path:
            return f"{name} not installed"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user"
    return None


def read_main_cf(path):
    """Parameter assignments of a main.cf, continuation lines joined."""
    params = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and params:
                key, value = params[-1]
                params[-1] = (key, value + " " + line.strip())
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: not a parameter line: {line!r}")
            params.append((key.strip(), value.strip()))
    return params


def read_master_service(path, service):
    """The fields and -o options of one service entry of a master.cf."""
    entry = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                if entry is not None:
                    break
                fields = line.split()
                if fields[0] == service:
                    entry = {"fields": fields, "args": []}
            elif entry is not None:
                entry["args"].extend(line.split())
    if entry is None:
        raise ValueError(f"{path}: no {service} service")
    return entry


class PostfixInstance:
    """A private Postfix under base/: conf, queue, data, maillog."""

    def __init__(self, base, smtp_port, submission_port, cert, key):
        self.base = base
        self.conf = os.path.join(base, "conf")
        self.queue = os.path.join(base, "queue")
        self.data = os.path.join(base, "data")
        self.maillog = os.path.join(base, "log", "maillog")
        self.smtp_port = smtp_port
        self.submission_port = submission_port
        pf = pwd.getpwnam("postfix")
        for d in (self.conf, self.queue, os.path.dirname(self.maillog)):
            os.makedirs(d, mode=0o755, exist_ok=True)
        os.makedirs(self.data, mode=0o700, exist_ok=True)
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        self.private = os.path.join(self.queue, "private")
        os.makedirs(self.private, mode=0o700, exist_ok=True)
        os.chown(self.private, pf.pw_uid, 0)
        self.auth_socket = os.path.join(self.private, "auth")
        self.write_main_cf(cert, key)
        self.write_master_cf()
        self.extra_ports = []
        self.master_pid = None

    def write_main_cf(self, cert, key):
        contrib = read_main_cf(os.path.join(CONTRIB, "main.cf"))
        keys = dict(contrib)
        for needed in ("smtpd_sasl_type", "smtpd_sasl_path", "smtpd_relay_restrictions"):
            if needed not in keys:
                raise AssertionError(f"contrib/postfix/main.cf lacks {needed}")
        lines = ["# private test instance (postfix_support.py)",
                 "compatibility_level = 3.6",
                 f"queue_directory = {self.queue}",
                 f"data_directory = {self.data}",
                 "mail_owner = postfix",
                 "setgid_group = postdrop",
                 "myhostname = postern-test.invalid",
                 "mydomain = postern-test.invalid",
                 "myorigin = $myhostname",
                 "mydestination =",
                 "relay_domains = relay.postern-test.invalid",
                 "local_recipient_maps =",
                 "alias_maps =",
                 "alias_database =",
                 "inet_interfaces = 127.0.0.1",
                 "inet_protocols = ipv4",
                 "default_transport = discard:",
                 "relay_transport = discard:",
                 "local_transport = discard:",
                 f"maillog_file = {self.maillog}",
                 f"maillog_file_prefixes = {os.path.dirname(self.maillog)}",
                 f"smtpd_tls_cert_file = {cert}",
                 f"smtpd_tls_key_file = {key}",
                 "smtpd_tls_security_level = may",
                 "",
                 "# --- from contrib/postfix/main.cf, unchanged ---"]
        # smtpd_sasl_path = private/auth stays relative: every Postfix daemon
        # runs with the queue directory as its working directory (and chroot
        # root when chrooted), so it names QUEUE/private/auth here too.
        overridden = {"smtpd_relay_restrictions"}
        lines += [f"{k} = {v}" if k not in overridden else f"# (overridden below) {k} = {v}"
                  for k, v in contrib]
        lines += ["",
                  "# --- test overrides ---",
                  "# 127.0.0.1 is in mynetworks: with the contrib relay restrictions",
                  "# it could relay without AUTH, so relay control moves to the",
                  "# recipient restrictions where only SASL permits.",
                  "smtpd_relay_restrictions =",
                  "smtpd_recipient_restrictions = permit_sasl_authenticated, "
                  "reject_unauth_destination",
                  ""]
        write_file(os.path.join(self.conf, "main.cf"), "\n".join(lines))

    def write_master_cf(self):
        sub = read_master_service(os.path.join(CONTRIB, "master.cf"), "submission")
        fields = list(sub["fields"])
        if fields[7] != "smtpd" or fields[1] != "inet":
            raise AssertionError(f"contrib submission entry is not an inet smtpd: {fields}")
        fields[0] = f"127.0.0.1:{self.submission_port}"
        fields[4] = "n"   # chroot: off in the test instance
        # master.cf continuation lines: keep "-o name=value" pairs together.
        args = sub["args"]
        pairs = []
        i = 0
        while i < len(args):
            if args[i] == "-o" and i + 1 < len(args):
                pairs.append(f"-o {args[i + 1]}")
                i += 2
            else:
                pairs.append(args[i])
                i += 1
        submission = "  ".join(fields) + "\n" + "".join(f"  {p}\n" for p in pairs)
        text = (f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd\n" + submission +
                HELPER_SERVICES)
        write_file(os.path.join(self.conf, "master.cf"), text)
        self.submission_args = pairs

    def add_smtpd(self, port, **options):
        """One more smtpd on 127.0.0.1:port with -o name=value options (in
        the order given); start() waits for it too."""
        with open(os.path.join(self.conf, "master.cf"), "a", encoding="utf-8") as f:
            f.write(f"127.0.0.1:{port} inet n - n - - smtpd\n" +
                    "".join(f"  -o {k}={v}\n" for k, v in options.items()))
        self.extra_ports.append(port)

    def add_sasl_config(self, name, text):
        """A Cyrus SASL application config; returns its path. Debian's
        Postfix reads $config_directory/sasl/<smtpd_sasl_path>.conf."""
        sasl_dir = os.path.join(self.conf, "sasl")
        os.makedirs(sasl_dir, mode=0o755, exist_ok=True)
        path = os.path.join(sasl_dir, f"{name}.conf")
        write_file(path, text, 0o644)
        return path

    def postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.conf, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def log(self):
        try:
            with open(self.maillog, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        check = self.postfix("check")
        if check.returncode != 0:
            raise AssertionError(f"postfix check failed:\n{check.stdout}{check.stderr}\n"
                                 f"{self.log()}")
        started = self.postfix("start")
        if started.returncode != 0:
            raise AssertionError(f"postfix start failed:\n{started.stdout}{started.stderr}\n"
                                 f"{self.log()}")
        self.master_pid = self.read_master_pid()
        for port in (self.smtp_port, self.submission_port, *self.extra_ports):
            self.wait_port(port)

    def read_master_pid(self, timeout=10):
        pid_file = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(pid_file, encoding="ascii") as f:
                    return int(f.read().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        raise AssertionError(f"no {pid_file}; log:\n{self.log()}")

    def wait_port(self, port, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"Postfix not listening on {port}; log:\n{self.log()}")

    def own_pids(self):
        """The master and its children (by /proc parent pid)."""
        if not self.master_pid:
            return []
        pids = [self.master_pid]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.master_pid:
                pids.append(int(entry))
        return pids

    def stop(self):
        pids = self.own_pids()
        self.postfix("stop")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return [p for p in pids if pid_alive(p)]


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False




def make_certificate(directory):
    """A throwaway self-signed certificate for smtpd's TLS; (cert, key)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    gen = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                          "-days", "2"], capture_output=True, text=True, timeout=60)
    if gen.returncode != 0:
        raise AssertionError(f"openssl failed: {gen.stderr}")
    return cert, key


@require_binaries
@unittest.skipIf(postfix_missing(), postfix_missing() or "")
class PostfixTestCase(unittest.TestCase):
    """Base class: one private Postfix and the posternd(s) it asks, shared by
    all tests of the class (starting Postfix takes seconds). A subclass says
    what differs through hooks, all run before anything starts:
      prepare()       files, users, extra smtpd services (pf.add_smtpd) and
                      Cyrus SASL configs (pf.add_sasl_config);
      daemon_config() the config text of one plain posternd, or
      make_daemons()  the Daemon objects themselves (several, or PamDaemon).
    The daemons start first, then Postfix; at the end Postfix stops (a test
    fails if any of its processes is left), then each daemon, and a daemon
    log holding any SECRETS value fails the class."""

    tmp_prefix = "postern-it-postfix-"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.tmp_prefix)
        os.chmod(cls.tmp, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cert, key = make_certificate(cls.tmp)
        cls.pf = PostfixInstance(os.path.join(cls.tmp, "postfix"), free_tcp_port(),
                                 free_tcp_port(), cert, key)
        cls.prepare()
        cls.daemons = list(cls.make_daemons())
        cls.daemon = cls.daemons[0]
        for d in cls.daemons:
            cls.addClassCleanup(cls.check_daemon_log, d)
            d.start()
        cls.addClassCleanup(cls.stop_postfix)
        cls.pf.start()

    @classmethod
    def prepare(cls):
        """Hook: everything Postfix and the daemons need before they start."""

    @classmethod
    def daemon_config(cls):
        """Hook: the posternd config (listening on cls.pf.auth_socket)."""
        raise NotImplementedError(f"{cls.__name__} gives no daemon_config() or make_daemons()")

    @classmethod
    def make_daemons(cls):
        """Hook: the daemons to start, not yet started; the first is cls.daemon."""
        return [Daemon(cls.tmp, cls.daemon_config())]

    @classmethod
    def stop_postfix(cls):
        left = cls.pf.stop()
        if left:
            raise AssertionError(f"Postfix processes still running: {left}")

    @classmethod
    def check_daemon_log(cls, daemon):
        daemon.stop()
        text = daemon.stderr()
        for secret in SECRETS:
            if secret in text:
                raise AssertionError(f"password {secret!r} appears in {daemon.log_path}")

    def setUp(self):
        # The daemons are shared: if an earlier test killed one, say so instead
        # of letting every later test fail with a confusing SMTP transcript.
        for d in self.daemons:
            if not d.alive():
                self.fail(f"posternd died (exit {d.proc.returncode}); {d.log_path}:\n"
                          f"{d.stderr()[-3000:]}")

    def swaks(self, port, *args, tls=False):
        """swaks against 127.0.0.1:port; stdout and stderr together."""
        cmd = [SWAKS, "--server", f"127.0.0.1:{port}", "--timeout", "20",
               "--from", "sender@postern-test.invalid", "--helo", "client.postern-test.invalid"]
        if tls:
            cmd.append("--tls")
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr

    def auth(self, mech, user, password, port=None, tls=False):
        """An SMTP AUTH on port (the plain smtpd by default), quitting after
        it; returns the transcript."""
        return self.swaks(port or self.pf.smtp_port, "--auth", mech, "--auth-user", user,
                          "--auth-password", password, "--to", "rcpt@outside.example",
                          "--quit-after", "AUTH", tls=tls)

    def logs(self):
        """The maillog and each daemon's log tail, for failure messages."""
        parts = [f"--- maillog ---\n{self.pf.log()}"]
        parts += [f"--- {os.path.basename(d.log_path)} ---\n{d.stderr()[-3000:]}"
                  for d in self.daemons]
        return "\n".join(parts)

    def assert_reply(self, output, code):
        """The server answered code somewhere in a swaks transcript."""
        self.assertRegex(output, rf"(?m)^<[-~*]\*?\s+{code}[ -]", f"{output}\n{self.logs()}")
