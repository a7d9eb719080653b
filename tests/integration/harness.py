# Shared helpers for the posternd integration tests: locating the binaries,
# starting a daemon on a throwaway config, and a small auth-client protocol
# client (auth-protocol.md section 3). Python 3.11 standard library only.

import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import warnings

BUILD_DIR = os.environ.get("POSTERN_BUILD", "/work/main/build")
POSTERND = os.path.join(BUILD_DIR, "posternd")
POSTERN = os.path.join(BUILD_DIR, "postern")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EX_CONFIG = 78
READY_LINE = "posternd: ready"
START_TIMEOUT = 10.0   # seconds until "posternd: ready"
STOP_TIMEOUT = 5.0     # seconds between SIGTERM and SIGKILL
IO_TIMEOUT = 5.0       # seconds to wait for a reply line

# Passwords used by the tests. Every one is distinctive enough that finding
# it in a daemon's stderr can only mean it was logged.
ALICE_PASSWORD = "Alice-Pa55w0rd-7f3c"
BOB_PASSWORD = "Bob-crypt-S3cret-91ad"
SLOW_PASSWORD = "Slow-crypt-S3cret-4e21"
LONGNAME_PASSWORD = "Long-name-Pa55-c0de"
WRONG_PASSWORD = "Wrong-Pa55word-x9q2"
NEW_PASSWORD = "Changed-Pa55w0rd-b8e7"
PW_CLI_PASSWORD = "Cli-hashed-Pa55-3d5f"
SCRAM_PASSWORD = "Carol-Scram-Pa55-5e0a"    # test_mechs.py: a stored SCRAM-SHA-256 user
MASTER_PASSWORD = "Master-Admin-Pa55-71c4"  # test_mechs.py: the master user
SECRETS = [ALICE_PASSWORD, BOB_PASSWORD, SLOW_PASSWORD, LONGNAME_PASSWORD,
           WRONG_PASSWORD, NEW_PASSWORD, PW_CLI_PASSWORD, SCRAM_PASSWORD, MASTER_PASSWORD]
# The load tests' users (tests/integration/test_load_faults.py).
LOAD_PASSWORDS = [f"Load-Pa55w0rd-{i:03d}-k4" for i in range(100)]
SECRETS += LOAD_PASSWORDS

# Every daemon's stderr and every CLI run's output is copied here when set
# (tests/run.sh sets it); tests/integration/check_secrets.py greps it all.
LOG_DIR = os.environ.get("POSTERN_LOG_DIR")
# Reports that fail a test when a daemon prints them (sanitizer builds).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


def register_secret(value):
    """A password or hash made at run time: added to SECRETS and recorded
    for the final log check."""
    if value and value not in SECRETS:
        SECRETS.append(value)
    if value and LOG_DIR:
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, "secrets.list"), "a", encoding="utf-8") as f:
            f.write(value + "\n")


def save_log(name, text):
    """Keeps text under LOG_DIR (no-op when unset)."""
    if not LOG_DIR:
        return
    os.makedirs(LOG_DIR, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with open(os.path.join(LOG_DIR, safe), "a", encoding="utf-8", errors="replace") as f:
        f.write(text)

# Known-good SHA512-CRYPT hash of "password" (tests/fixtures/schemes-vectors.tsv),
# used only if neither Python's crypt module nor doveadm can make one.
FALLBACK_CRYPT_PASSWORD = "password"
FALLBACK_CRYPT_HASH = ("$6$naQVrfolIC4MrT4j$xnRRg66QvA86BeSMuTrFfiNZQ5MSbfsJAnpo"
                       "T3bST7iUlAzUNJztRlZHSG385g.spXwTutXEh3aNa6MgpVcwC/")


def _asan_runtime():
    """Path of the ASan runtime posternd links (a sanitizer build), else None."""
    try:
        out = subprocess.run(["ldd", POSTERND], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split("(")[0].strip() or None
    return None


# Set in a sanitizer build: it must come first in LD_PRELOAD when a test
# preloads another library (pam_wrapper), and memory figures grow.
ASAN_RUNTIME = _asan_runtime()


def binaries_missing():
    """A skip reason when the daemon has not been built, else None."""
    for path in (POSTERND, POSTERN):
        if not os.access(path, os.X_OK):
            return f"{path} not built (set POSTERN_BUILD to the meson build directory)"
    return None


def require_binaries(test_case_class):
    """Class decorator: skip the whole class when the binaries are missing."""
    reason = binaries_missing()
    if reason:
        return unittest.skip(reason)(test_case_class)
    return test_case_class


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text.encode("ascii"), validate=True)


SCRAM_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}


class ScramClient:
    """The client side of RFC 5802, step by step, so tests can misbehave."""

    def __init__(self, mech, user, password, nonce="pyclientnonce0123", gs2="n,,"):
        self.hashname = SCRAM_HASHES[mech]
        self.user, self.password, self.gs2 = user, password, gs2
        self.bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={nonce}"

    def first(self):
        return self.gs2 + self.bare

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(self.hashname, self.password.encode(), unb64(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hashname).digest()
        stored = hashlib.new(self.hashname, client_key).digest()
        without = f"c={b64(self.gs2)},r={attrs['r']}"
        auth_message = f"{self.bare},{server_first},{without}".encode()
        sig = hmac.new(stored, auth_message, self.hashname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", self.hashname).digest()
        self.expected_v = "v=" + b64(hmac.new(server_key, auth_message, self.hashname).digest())
        return f"{without},p={b64(proof)}"


def scram_login(client, req_id, mech, user, password, *params):
    """A whole SCRAM exchange on a handshaken AuthClient; returns the reply
    to the client's final message (CONT with the server signature, or FAIL)
    and, after a good signature, the OK."""
    sc = ScramClient(mech, user, password)
    client.auth(req_id, mech, *params, resp=b64(sc.first()))
    first = client.reply_for(req_id, timeout=30)
    if first[0] != "CONT":
        return first
    client.send_line("CONT", str(req_id), b64(sc.final(unb64(first[2]).decode())))
    reply = client.reply_for(req_id, timeout=30)
    if reply[0] != "CONT" or unb64(reply[2]).decode() != sc.expected_v:
        return reply
    client.send_line("CONT", str(req_id), "")
    return client.reply_for(req_id, timeout=30)


def plain_payload(user, password, authzid=""):
    """The PLAIN message authzid NUL authcid NUL passwd (RFC 4616)."""
    def raw(x):
        return x if isinstance(x, bytes) else x.encode("utf-8")
    return raw(authzid) + b"\0" + raw(user) + b"\0" + raw(password)


def sha512_crypt(password, rounds=None):
    """A {SHA512-CRYPT} hash of password, or None if nothing can make one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # deprecated in 3.11, gone in 3.13
        salt = crypt.mksalt(crypt.METHOD_SHA512, rounds=rounds)
        hashed = crypt.crypt(password, salt)
        if hashed and hashed.startswith("$6$"):
            return hashed
    except ImportError:
        pass
    doveadm = shutil.which("doveadm")
    if doveadm:
        cmd = [doveadm, "-c", "/dev/null", "pw", "-s", "SHA512-CRYPT", "-p", password]
        if rounds:
            cmd[5:5] = ["-r", str(rounds)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        out = proc.stdout.strip()
        if proc.returncode == 0 and out.startswith("{SHA512-CRYPT}"):
            return out[len("{SHA512-CRYPT}"):]
    return None


TESTSASLAUTHD = shutil.which("testsaslauthd") or (
    "/usr/sbin/testsaslauthd" if os.path.exists("/usr/sbin/testsaslauthd") else None)
SASLPASSWD2 = shutil.which("saslpasswd2") or (
    "/usr/sbin/saslpasswd2" if os.path.exists("/usr/sbin/saslpasswd2") else None)


def saslpasswd2(path, user, password, realm=None, delete=False):
    """Adds (or with delete, removes) user in the sasldb2 file at path with
    the real saslpasswd2 (sasl2-bin); SASLPASSWD2 is None when missing."""
    cmd = [SASLPASSWD2, "-f", path]
    if delete:
        cmd.append("-d")
    else:
        cmd += ["-p", "-c"]
    if realm is not None:
        cmd += ["-u", realm]
    cmd.append(user)
    p = subprocess.run(cmd, input=b"" if delete else password.encode("utf-8"),
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"saslpasswd2 failed: {p.stderr!r}")


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_stopped(pid, timeout=5.0):
    """True once every thread of `pid` is stopped (state T) after a SIGSTOP,
    which the kernel delivers to each thread asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = [open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[0]
                      for t in os.listdir(f"/proc/{pid}/task")]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if states and all(st == "T" for st in states):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def passwd_line(user, stored, uid=1000, gid=1000, home=None, extra=""):
    home = home if home is not None else f"/home/{user}"
    return f"{user}:{stored}:{uid}:{gid}::{home}::{extra}\n"


def write_file(path, text, mode=None):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def toml_str(value):
    """A TOML basic string for value (paths from mkdtemp need no escapes,
    but stay correct anyway)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_config(socket_path=None, users_path=None, *, failure_delay=0,
                mechanisms=("PLAIN", "LOGIN"), tcp_address=None, mode="0666",
                level="debug", extra="", penalty=False):
    mechs = ", ".join(toml_str(m) for m in mechanisms)
    lines = [
        "[log]",
        f"level = {toml_str(level)}",
        "",
        "[auth]",
        f"mechanisms = [{mechs}]",
        f"failure_delay = {failure_delay}",
        "",
    ]
    if not penalty:
        # Tests fail logins from 127.0.0.1 on purpose; the per-IP penalty
        # would slow them down. Tests of the penalty pass penalty=True.
        lines += ["[penalty]", "enabled = false", ""]
    if socket_path:
        lines += ["[[listener]]", 'type = "unix"', f"path = {toml_str(socket_path)}",
                  f"mode = {toml_str(mode)}", 'role = "client"', ""]
    if tcp_address:
        lines += ["[[listener]]", 'type = "tcp"', f"address = {toml_str(tcp_address)}",
                  'role = "client"', ""]
    if users_path:
        lines += ["[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users_path)}", "",
                  "[[userdb]]", 'driver = "passwd-file"', f"path = {toml_str(users_path)}", ""]
    return "\n".join(lines) + extra


class Daemon:
    """One posternd process on a config file; stderr goes to a log file."""

    def __init__(self, workdir, config_text, name="posternd"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, f"{name}.conf")
        self.log_path = os.path.join(workdir, f"{name}.stderr")
        write_file(self.config_path, config_text)
        self.proc = None

    def start(self, wait_ready=True, **popen_kw):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([POSTERND, "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, start_new_session=True, **popen_kw)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.stderr():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"posternd exited with {self.proc.returncode} before "
                                     f"ready; stderr:\n{self.stderr()}")
            time.sleep(0.02)
        raise AssertionError(f"posternd not ready after {timeout}s; stderr:\n{self.stderr()}")

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Closed(Exception):
    """The server closed the connection."""


class AuthClient:
    """A line-oriented auth-client protocol connection (unix path or (host, port))."""

    def __init__(self, address, timeout=IO_TIMEOUT):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""
        self.eof = False
        self.server_lines = []
        self.stashed = []
        self.send_failed = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # The server already closed: tests that expect a close see it on
            # the next read, the others fail there with Closed.
            self.send_failed = True

    def send_line(self, *fields):
        self.send("\t".join(fields) + "\n")

    def readline(self, timeout=IO_TIMEOUT):
        """The next line without its LF, as str; raises Closed on EOF and
        socket.timeout when nothing complete arrives in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                raise Closed(self.buf)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"no complete line within {timeout}s (have {self.buf!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "surrogateescape")

    def read_fields(self, timeout=IO_TIMEOUT):
        return self.readline(timeout).split("\t")

    def read_handshake(self):
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if line == "DONE":
                self.server_lines = lines
                return lines

    def handshake(self, minor=0, cpid=None):
        self.read_handshake()
        self.send_line("VERSION", "1", str(minor))
        self.send_line("CPID", str(cpid if cpid is not None else os.getpid()))
        return self

    def wait_closed(self, timeout=IO_TIMEOUT):
        """True if the server closes the connection within timeout; lines
        that arrive before the close are kept in self.lines_before_close."""
        self.lines_before_close = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.lines_before_close.append(self.readline(remaining))
            except Closed:
                return True
            except socket.timeout:
                return False
            except (BrokenPipeError, ConnectionResetError):
                return True

    def auth(self, req_id, mech, *params, resp=None, service="smtp"):
        fields = ["AUTH", str(req_id), mech, f"service={service}", *params]
        if resp is not None:
            fields.append(f"resp={resp}")
        self.send_line(*fields)

    def auth_plain(self, req_id, user, password, *params, service="smtp"):
        self.auth(req_id, "PLAIN", "nologin", "lip=127.0.0.1", "rip=127.0.0.1",
                  "secured", *params, resp=b64(plain_payload(user, password)),
                  service=service)

    def reply(self, timeout=IO_TIMEOUT):
        """The next reply line split into fields (replies set aside by
        reply_for come first)."""
        if self.stashed:
            return self.stashed.pop(0)
        return self.read_fields(timeout)

    def reply_for(self, req_id, timeout=IO_TIMEOUT):
        """The next reply whose id field is req_id; replies for other ids
        are set aside for later reply()/reply_for() calls."""
        for i, fields in enumerate(self.stashed):
            if len(fields) > 1 and fields[1] == str(req_id):
                return self.stashed.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            fields = self.read_fields(max(0.01, deadline - time.monotonic()))
            if len(fields) > 1 and fields[1] == str(req_id):
                return fields
            self.stashed.append(fields)


class MasterClient(AuthClient):
    """An auth-master protocol connection."""

    def master_handshake(self, send_version=True):
        self.server_lines = [self.readline(), self.readline()]
        if send_version:
            self.send_line("VERSION", "1", "1")
        return self

    def spid(self):
        return self.server_lines[1].split("\t")[1]


def fields_dict(fields):
    """key=value / bare key parameters of a reply (from the third field on)."""
    out = {}
    for f in fields[2:]:
        key, sep, value = f.partition("=")
        out[key] = value if sep else ""
    return out


class DaemonTestCase(unittest.TestCase):
    """Base class: a temp dir, daemons that are always stopped, and a check
    that no daemon logged any test password."""

    # Where the temp dir is made (None: the system's); the Dovecot 2.4 tests
    # put it inside the Debian 13 root so the root's programs see the sockets.
    tmp_parent = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-it-", dir=self.tmp_parent)
        os.chmod(self.tmp, 0o755)
        self.daemons = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        logs = []
        for d in self.daemons:
            d.stop()
            logs.append((d.log_path, d.stderr()))
            save_log(f"{self.id()}.{os.path.basename(d.log_path)}", d.stderr())
        shutil.rmtree(self.tmp, ignore_errors=True)
        for path, text in logs:
            for secret in SECRETS:
                if secret in text:
                    raise AssertionError(f"password {secret!r} appears in {path}")
            for mark in SANITIZER_MARKS:
                if mark in text:
                    raise AssertionError(f"sanitizer report in {path}:\n{text[-4000:]}")

    def start_daemon(self, config_text, name="posternd", wait_ready=True, **popen_kw):
        d = Daemon(self.tmp, config_text, name)
        self.daemons.append(d)
        return d.start(wait_ready, **popen_kw)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def standard_users(self, extra=""):
        """alice ({PLAIN}), bob ({SHA512-CRYPT}); returns the users path."""
        users = self.path("users")
        write_file(users,
                   "# test users\n\n" +
                   passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("bob", "{SHA512-CRYPT}" + bob_hash()) +
                   extra)
        return users

    def start_standard(self, failure_delay=0, extra_users="", **kw):
        sock = self.path("auth")
        users = self.standard_users(extra_users)
        d = self.start_daemon(make_config(sock, users, failure_delay=failure_delay, **kw))
        return d, sock

    def connect(self, address, minor=0):
        c = AuthClient(address)
        self.addCleanup(c.close)
        return c.handshake(minor)

    def assert_ok(self, fields, req_id, user):
        self.assertEqual(fields[:2], ["OK", str(req_id)], fields)
        self.assertIn(f"user={user}", fields[2:], fields)

    def assert_fail(self, fields, req_id):
        self.assertEqual(fields[:2], ["FAIL", str(req_id)], fields)


_bob_hash = None
_bob_password = None


def bob_hash():
    """SHA512-CRYPT hash of bob's password, made once per run."""
    global _bob_hash, _bob_password
    if _bob_hash is None:
        h = sha512_crypt(BOB_PASSWORD)
        if h:
            _bob_hash, _bob_password = h, BOB_PASSWORD
        else:
            _bob_hash, _bob_password = FALLBACK_CRYPT_HASH, FALLBACK_CRYPT_PASSWORD
        register_secret(_bob_hash)
    return _bob_hash


def bob_password():
    bob_hash()
    return _bob_password


def run_cli(args, stdin_text=None, timeout=30):
    proc = subprocess.run([POSTERN, *args], input=stdin_text, capture_output=True,
                          text=True, timeout=timeout, stdin=None if stdin_text is not None
                          else subprocess.DEVNULL)
    # `postern pw` prints the hash it was asked for on stdout: that is its
    # product, not a log, so only its stderr is kept.
    out = "" if args[:1] == ["pw"] else proc.stdout
    save_log("cli.log", f"$ postern {' '.join(args[:2])} ... (exit {proc.returncode})\n"
             f"{out}{proc.stderr}")
    return proc


HEX32 = re.compile(r"^[0-9a-f]{32}$")
