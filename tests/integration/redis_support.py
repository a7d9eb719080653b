# A throwaway redis-server for the cluster tests and benchmark: Debian's
# redis-server on a free loopback port and a unix socket in its own
# directory, no persistence; killed and started again on the same port.

import os
import shutil
import signal
import subprocess
import time

from harness import free_tcp_port, write_file

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def redis_missing():
    """Why the Redis tests cannot run here, or None."""
    for tool in (REDIS_SERVER, REDIS_CLI):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found (Debian package redis-server)"
    return None


def start_for_test(test, password):
    """A RedisServer in test.tmp with `password`, killed at the test's end,
    and the password in a file of mode 0600 beside it (for [cluster]
    password_file, which keeps it out of postern.conf): (server, path)."""
    server = RedisServer(test.tmp, password=password).start()
    test.addCleanup(server.kill)
    path = os.path.join(test.tmp, "redis.pass")
    write_file(path, password + "\n", mode=0o600)
    return server, path


class RedisServer:
    """tls=(ca, cert, key): the TCP port speaks TLS only (rediss://);
    redis-cli still reaches the server through the plain unix socket."""

    def __init__(self, workdir, password=None, tls=None):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_tcp_port()
        self.socket = os.path.join(self.dir, "redis.sock")
        self.password = password
        self.tls = tls
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None

    def url(self, db=0, with_password=True):
        cred = f":{self.password}@" if self.password and with_password else ""
        return f"{'rediss' if self.tls else 'redis'}://{cred}127.0.0.1:{self.port}/{db}"

    def start(self):
        if self.tls:
            ca, crt, key = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", crt, "--tls-key-file", key,
                     "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        else:
            ports = ["--port", str(self.port)]
        argv = [REDIS_SERVER, *ports, "--bind", "127.0.0.1", "--unixsocket", self.socket,
                "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--logfile", self.log_path, "--daemonize", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.tail()}")
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except subprocess.SubprocessError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer: {self.tail()}")

    def tail(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def cli(self, *args, raw=False):
        """One redis-cli command through the unix socket; its output."""
        argv = [REDIS_CLI, "-s", self.socket]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        if raw:
            argv.append("--raw")
        out = subprocess.run(argv + list(args), capture_output=True, timeout=10, check=True)
        return out.stdout.decode("utf-8", "replace")

    def keys(self):
        """Every key, as bytes (names may hold anything)."""
        argv = [REDIS_CLI, "-s", self.socket, "--raw", "--scan"]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        out = subprocess.run(argv, capture_output=True, timeout=10, check=True).stdout
        return [k for k in out.split(b"\n") if k]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    stop = kill
