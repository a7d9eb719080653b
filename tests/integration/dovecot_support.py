# A private Dovecot IMAP server for the tests (dovecot -F with a throwaway
# configuration, a base_dir and a log of its own, a loopback port): started,
# waited for until it greets, stopped with every process below it by pid.
# Used where Dovecot is posternd's client (test_imap.py) and where it is the
# server posternd's imap passdb logs in to (test_imap_passdb.py).

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None)
IMAP_BINARY = "/usr/lib/dovecot/imap"
START_TIMEOUT = 15.0


def dovecot_missing():
    """Why a private Dovecot IMAP server cannot run here, or None."""
    if not DOVECOT or not os.access(IMAP_BINARY, os.X_OK):
        return "Dovecot IMAP not installed (apt-get install dovecot-imapd)"
    if os.geteuid() != 0:
        return "a private Dovecot instance needs root (it changes to the mail user's uid)"
    for user in ("dovenull", "dovecot"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"system user {user} missing (created by dovecot-core)"
    return None


def descendants(pid):
    """Pids of every process below pid (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class DovecotProcess:
    """dovecot -F -c CONF, its output in BASE/dovecot.stdout and its log in
    BASE/dovecot.log (the configuration's log_path); `port` is the IMAP port
    whose greeting says it is ready."""

    def __init__(self, base, conf, port):
        self.base, self.conf, self.port = base, conf, port
        self.proc = None
        self.out = None

    def start(self):
        self.out = open(os.path.join(self.base, "dovecot.stdout"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out, start_new_session=True)
        self.wait_for_greeting()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        text = ""
        for name in ("dovecot.stdout", "dovecot.log"):
            try:
                with open(os.path.join(self.base, name), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def wait_for_greeting(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"dovecot did not greet on port {self.port}:\n{self.log()}")

    def stop(self):
        # The master's children (auth, log, anvil, login and mail processes)
        # can outlive it briefly: note them first, stop them all by pid.
        if self.proc is None:
            return
        pids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        self.out.close()
