# Real Postfix smtpd authenticating through posternd, driven by swaks. The
# instance is private (own config, queue and data directories, loopback ports)
# and is built from contrib/postfix/main.cf and contrib/postfix/master.cf, so
# the snippets admins copy are exercised as written.

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (ALICE_PASSWORD, MASTER_PASSWORD, REPO_ROOT, SECRETS, WRONG_PASSWORD, Daemon, bob_hash,
                     bob_password, free_tcp_port, make_config, passwd_line, require_binaries,
                     toml_str, write_file)

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
        private = os.path.join(self.queue, "private")
        os.makedirs(private, mode=0o700, exist_ok=True)
        os.chown(private, pf.pw_uid, 0)
        self.auth_socket = os.path.join(private, "auth")
        self.write_main_cf(cert, key)
        self.write_master_cf()
        self.master_pid = None

    def write_main_cf(self, cert, key):
        contrib = read_main_cf(os.path.join(CONTRIB, "main.cf"))
        keys = dict(contrib)
        for needed in ("smtpd_sasl_type", "smtpd_sasl_path", "smtpd_relay_restrictions"):
            if needed not in keys:
                raise AssertionError(f"contrib/postfix/main.cf lacks {needed}")
        lines = ["# private test instance (test_postfix.py)",
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
        for port in (self.smtp_port, self.submission_port):
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


@require_binaries
@unittest.skipIf(postfix_missing(), postfix_missing() or "")
class PostfixTest(unittest.TestCase):
    """One posternd and one Postfix instance shared by all tests of the class
    (starting Postfix takes seconds)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-it-postfix-")
        os.chmod(cls.tmp, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        gen = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                              "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                              "-days", "2"], capture_output=True, text=True, timeout=60)
        if gen.returncode != 0:
            raise AssertionError(f"openssl failed: {gen.stderr}")
        cls.pf = PostfixInstance(os.path.join(cls.tmp, "postfix"), free_tcp_port(),
                                 free_tcp_port(), cert, key)
        users = os.path.join(cls.tmp, "users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("bob", "{SHA512-CRYPT}" + bob_hash()))
        masters = os.path.join(cls.tmp, "masters")
        write_file(masters, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD))
        config = make_config(cls.pf.auth_socket, users,
                             extra=f'[[master_passdb]]\ndriver = "passwd-file"\npath = {toml_str(masters)}\n')
        config = config.replace("[auth]\n", '[auth]\nmaster_user_separator = "*"\n', 1)
        cls.daemon = Daemon(cls.tmp, config)
        cls.addClassCleanup(cls.check_daemon_log)
        cls.daemon.start()
        cls.addClassCleanup(cls.stop_postfix)
        cls.pf.start()

    @classmethod
    def stop_postfix(cls):
        left = cls.pf.stop()
        if left:
            raise AssertionError(f"Postfix processes still running: {left}")

    @classmethod
    def check_daemon_log(cls):
        cls.daemon.stop()
        text = cls.daemon.stderr()
        for secret in SECRETS:
            if secret in text:
                raise AssertionError(f"password {secret!r} appears in {cls.daemon.log_path}")

    def setUp(self):
        # The daemon is shared: if an earlier test killed it, say so instead
        # of letting every later test fail with a confusing SMTP transcript.
        if not self.daemon.alive():
            self.fail(f"posternd died (exit {self.daemon.proc.returncode}); stderr:\n"
                      f"{self.daemon.stderr()[-3000:]}")

    def swaks(self, port, *args, tls=False):
        cmd = [SWAKS, "--server", f"127.0.0.1:{port}", "--timeout", "20",
               "--from", "sender@postern-test.invalid", "--helo", "client.postern-test.invalid"]
        if tls:
            cmd.append("--tls")
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr

    def auth(self, mech, user, password, port=None, tls=False):
        return self.swaks(port or self.pf.smtp_port, "--auth", mech, "--auth-user", user,
                          "--auth-password", password, "--to", "rcpt@outside.example",
                          "--quit-after", "AUTH", tls=tls)

    def assert_reply(self, output, code):
        self.assertRegex(output, rf"(?m)^<[-~*]\*?\s+{code}[ -]",
                         f"{output}\n--- maillog ---\n{self.pf.log()}")

    def test_ehlo_offers_plain_and_login(self):
        out = self.swaks(self.pf.smtp_port, "--to", "rcpt@outside.example",
                         "--quit-after", "EHLO")
        self.assertRegex(out, r"250[- ]AUTH( \w+)*")
        auth_line = re.search(r"250[- ]AUTH ([^\r\n]*)", out).group(1).split()
        self.assertIn("PLAIN", auth_line)
        self.assertIn("LOGIN", auth_line)

    def test_plain_right_password(self):
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)

    def test_login_right_password(self):
        self.assert_reply(self.auth("LOGIN", "alice", ALICE_PASSWORD), 235)

    def test_crypt_user(self):
        self.assert_reply(self.auth("PLAIN", "bob", bob_password()), 235)

    def test_plain_wrong_password(self):
        self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD), 535)

    def test_login_wrong_password(self):
        self.assert_reply(self.auth("LOGIN", "alice", WRONG_PASSWORD), 535)

    def test_unknown_user(self):
        self.assert_reply(self.auth("PLAIN", "nosuchuser", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("LOGIN", "nosuchuser", WRONG_PASSWORD), 535)

    def test_master_user_targets(self):
        # "target*master" with the master's password: only for targets the
        # passdb knows.
        self.assert_reply(self.auth("PLAIN", "alice*admin", MASTER_PASSWORD), 235)
        self.assert_reply(self.auth("LOGIN", "bob*admin", MASTER_PASSWORD), 235)
        self.assert_reply(self.auth("PLAIN", "nosuchuser*admin", MASTER_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "alice*admin", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("PLAIN", "alice*admin", ALICE_PASSWORD), 535)

    def test_relay_without_auth_denied(self):
        out = self.swaks(self.pf.smtp_port, "--to", "rcpt@outside.example",
                         "--quit-after", "RCPT")
        self.assert_reply(out, 554)
        self.assertIn("Relay access denied", out)

    def test_relay_with_auth_accepted(self):
        out = self.swaks(self.pf.smtp_port, "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", ALICE_PASSWORD, "--to", "rcpt@outside.example")
        self.assert_reply(out, 235)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued", f"{out}\n{self.pf.log()}")

    def test_several_auths_on_one_smtpd(self):
        # smtpd keeps one auth connection open across sessions.
        for _ in range(3):
            self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD), 535)
            self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD), 235)

    def test_submission_from_contrib(self):
        port = self.pf.submission_port
        self.assertIn("-o smtpd_sasl_type=dovecot", self.pf.submission_args)
        # Without TLS the contrib entry (smtpd_tls_auth_only) offers no AUTH.
        out = self.swaks(port, "--to", "rcpt@outside.example", "--quit-after", "EHLO")
        self.assertNotRegex(out, r"250[- ]AUTH")
        # Over TLS: right password relays, wrong one gets 535.
        self.assert_reply(self.auth("PLAIN", "alice", ALICE_PASSWORD, port, tls=True), 235)
        self.assert_reply(self.auth("LOGIN", "bob", bob_password(), port, tls=True), 235)
        self.assert_reply(self.auth("PLAIN", "alice", WRONG_PASSWORD, port, tls=True), 535)
        self.assert_reply(self.auth("LOGIN", "nosuchuser", WRONG_PASSWORD, port, tls=True),
                          535)
        out = self.swaks(port, "--auth", "LOGIN", "--auth-user", "alice", "--auth-password",
                         ALICE_PASSWORD, "--to", "rcpt@outside.example", tls=True)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued", f"{out}\n{self.pf.log()}")
        # Unauthenticated client: rejected by smtpd_client_restrictions.
        out = self.swaks(port, "--to", "rcpt@outside.example", "--quit-after", "RCPT",
                         tls=True)
        self.assert_reply(out, 554)

    def test_postfix_logs_sasl_username(self):
        out = self.swaks(self.pf.smtp_port, "--auth", "PLAIN", "--auth-user", "Alice",
                         "--auth-password", ALICE_PASSWORD, "--to", "rcpt@outside.example")
        self.assert_reply(out, 235)
        deadline = time.monotonic() + 5
        while "sasl_username=alice" not in self.pf.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("sasl_username=alice", self.pf.log())


if __name__ == "__main__":
    unittest.main()
