# The pam passdb through the real libpam under pam_wrapper: pam_matrix users,
# service names from %s, the privilege split (main process not root, workers
# root), and the faults: a module that hangs, one that crashes, one that asks
# for more than the password, a system error. Plus pam_unix against a
# throwaway system account when the tests run as root.

import os
import pwd
import secrets
import shutil
import subprocess
import time
import unittest

from harness import (ALICE_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, DaemonTestCase,
                     passwd_line, require_binaries, toml_str, write_file)
from pam_support import PamDaemon, faulty, pam_config, pam_missing, write_services

TESTSASLAUTHD = shutil.which("testsaslauthd") or (
    "/usr/sbin/testsaslauthd" if os.path.exists("/usr/sbin/testsaslauthd") else None)


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return kids


def named(pids, name):
    out = []
    for p in pids:
        try:
            if proc_status(p)["Name"] == [name]:
                out.append(p)
        except OSError:
            pass
    return out


def workers_of(pid, expect=None):
    """The PAM workers of a posternd: its own, and those its spawner started
    (waiting up to 5 s for `expect` of them: a new worker names itself just
    after it starts)."""
    deadline = time.monotonic() + 5
    while True:
        kids = children(pid)
        found = named(kids, "posternd-pam")
        for spawner in named(kids, "posternd-pamspn"):
            found += named(children(spawner), "posternd-pam")
        if expect is None or len(found) == expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@require_binaries
@unittest.skipIf(pam_missing(), pam_missing() or "")
class PamTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.matrix = self.path("matrix")
        write_file(self.matrix, f"alice:{ALICE_PASSWORD}:smtp\nalice:{ALICE_PASSWORD}:imap\n"
                                f"carol:{NEW_PASSWORD}:smtp\n", 0o644)
        self.svc = self.path("pam.d")
        self.sock = self.path("auth")

    def start(self, services, **kw):
        write_services(self.svc, self.matrix, services)
        d = PamDaemon(self.tmp, pam_config(self.sock, **kw), self.svc)
        self.daemons.append(d)
        return d.start()

    def auth(self, user, password, req_id=1, service="smtp"):
        c = self.connect(self.sock)
        c.auth_plain(req_id, user, password, service=service)
        return c.reply(timeout=30)

    def assert_temp_fail(self, fields):
        self.assert_fail(fields, 1)
        self.assertIn("code=temp_fail", fields)

    def assert_plain_fail(self, fields):
        self.assert_fail(fields, 1)
        self.assertNotIn("code=temp_fail", fields)

    def test_matrix_users_and_privilege_split(self):
        d = self.start({"smtp": "matrix"}, workers=3)
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assert_plain_fail(self.auth("alice", WRONG_PASSWORD))
        self.assert_plain_fail(self.auth("nosuchuser", WRONG_PASSWORD))
        # While PAM works, the main process runs as nobody, with no way back...
        st = proc_status(d.proc.pid)
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual([int(x) for x in st["Uid"]], [nobody] * 4)
        self.assertNotIn("0", st["Groups"])
        # ...and its PAM workers (and their spawner) are separate root processes.
        kids = children(d.proc.pid)
        self.assertEqual(len(named(kids, "posternd-pam")), 3, kids)
        self.assertEqual(len(named(kids, "posternd-pamspn")), 1, kids)
        self.assertEqual(len(kids), 4, kids)
        for k in kids:
            self.assertEqual(proc_status(k)["Uid"][0], "0")
        # The main process never mapped a PAM module: PAM runs only in workers.
        with open(f"/proc/{d.proc.pid}/maps", encoding="ascii", errors="replace") as f:
            maps = f.read()
        self.assertNotIn("pam_matrix", maps)
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")

    def test_service_name_from_request(self):
        # pam_matrix uses a user's first line only: a file of its own.
        write_file(self.matrix, f"carol:{NEW_PASSWORD}:postern-smtp\n"
                                f"alice:{ALICE_PASSWORD}:postern-imap\n", 0o644)
        d = self.start({"postern-smtp": "matrix"}, service="postern-%s")
        self.assert_ok(self.auth("carol", NEW_PASSWORD, service="smtp"), 1, "carol")
        # pam_matrix's third column: carol may use postern-smtp only.
        write_services(self.svc, self.matrix, {"postern-imap": "matrix"})
        self.assert_plain_fail(self.auth("carol", NEW_PASSWORD, service="imap"))
        self.assert_ok(self.auth("alice", ALICE_PASSWORD, service="imap"), 1, "alice")
        # A service= that would escape the service directory is refused
        # before PAM sees it.
        self.assert_plain_fail(self.auth("alice", ALICE_PASSWORD, service="../../etc/x"))
        self.assertIn("refusing PAM service name", d.stderr())

    def test_hanging_module_is_killed_and_pool_keeps_working(self):
        d = self.start({"smtp": "matrix", "hang": faulty("hang")}, service="%s", workers=1,
                       timeout=1)
        started = time.monotonic()
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD, service="hang"))
        self.assertLess(time.monotonic() - started, 5.5)
        self.assertIn("did not answer within", d.stderr())
        # The single worker is still there and serves the next request.
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD, service="hang"))
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assertEqual(len(workers_of(d.proc.pid, 1)), 1)
        self.assertTrue(d.alive())

    def test_crashing_module_is_temp_fail_and_daemon_unaffected(self):
        d = self.start({"smtp": "matrix", "crash": faulty("crash")}, service="%s", workers=1)
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD, service="crash"))
        self.assertRegex(d.stderr(), r"PAM process died from signal 6")
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD, service="crash"))
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assertTrue(d.alive())

    def test_conversation_asking_more_than_the_password(self):
        d = self.start({"two": faulty(f"twoprompts password={ALICE_PASSWORD}"),
                        "one": faulty(f"password={ALICE_PASSWORD}"),
                        "echo": f"auth required {__import__('pam_support').PAM_MATRIX} "
                                f"passdb={self.matrix} echo\n"},
                       service="%s")
        # The same module with one prompt succeeds...
        self.assert_ok(self.auth("alice", ALICE_PASSWORD, service="one"), 1, "alice")
        # ...with a second prompt it is refused an answer: a plain failure.
        self.assert_plain_fail(self.auth("alice", ALICE_PASSWORD, service="two"))
        self.assertIn("asked for more than the password", d.stderr())
        # An echo-on prompt (pam_matrix echo) gets no answer either.
        self.assert_plain_fail(self.auth("alice", ALICE_PASSWORD, service="echo"))

    def test_rhost_and_tty_items(self):
        self.start({"items": faulty(f"rhost=127.0.0.1 tty=postern password={ALICE_PASSWORD}"),
                    "items2": faulty(f"rhost=192.0.2.9 password={ALICE_PASSWORD}")},
                   service="%s")
        # auth_plain sends rip=127.0.0.1.
        self.assert_ok(self.auth("alice", ALICE_PASSWORD, service="items"), 1, "alice")
        self.assert_plain_fail(self.auth("alice", ALICE_PASSWORD, service="items2"))

    def test_hung_pam_process_does_not_outlive_the_daemon(self):
        d = self.start({"hang": faulty("hang")}, service="%s", workers=1, timeout=60)
        c = self.connect(self.sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD, service="hang")
        time.sleep(0.5)
        worker = workers_of(d.proc.pid, 1)[0]
        pam_child = children(worker)
        self.assertEqual(len(pam_child), 1)
        d.stop()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}")
                                                  and proc_status(p)["State"][0] != "Z"
                                                  for p in [worker] + pam_child):
            time.sleep(0.05)
        for p in [worker] + pam_child:
            self.assertFalse(os.path.exists(f"/proc/{p}") and proc_status(p)["State"][0] != "Z",
                             f"process {p} survived posternd")

    def test_system_error_is_temp_fail(self):
        self.start({"smtp": faulty("syserr")})
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD))

    def test_missing_service_file_is_temp_fail(self):
        self.start({"smtp": "matrix"}, service="%s")
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD, service="nosuchservice"))

    def test_session_and_setcred(self):
        self.start({"smtp": (f"auth required {__import__('pam_support').PAM_MATRIX} "
                             f"passdb={self.matrix}\n"
                             f"account required {__import__('pam_support').PAM_MATRIX} "
                             f"passdb={self.matrix}\n"
                             f"session required {__import__('pam_support').TEST_MODULE}\n")},
                   session=True, setcred=True)
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")

    def test_dead_worker_is_replaced(self):
        d = self.start({"smtp": "matrix"}, workers=1)
        [worker] = workers_of(d.proc.pid, 1)
        os.kill(worker, 9)
        # The request that finds the worker gone fails temporarily...
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD))
        deadline = time.monotonic() + 5
        while "replaces worker" not in d.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(f"replaces worker {worker}", d.stderr())
        # ...and the spawner's new root worker serves the next ones.
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        [fresh] = workers_of(d.proc.pid, 1)
        self.assertNotEqual(fresh, worker)
        self.assertEqual(proc_status(fresh)["Uid"][0], "0")
        # Again, to show the replacement is itself replaceable.
        os.kill(fresh, 9)
        self.assert_temp_fail(self.auth("alice", ALICE_PASSWORD))
        deadline = time.monotonic() + 5
        while f"replaces worker {fresh}" not in d.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assert_ok(self.auth("alice", ALICE_PASSWORD), 1, "alice")
        self.assertTrue(d.alive())

    @unittest.skipUnless(TESTSASLAUTHD, "testsaslauthd not installed (package sasl2-bin)")
    def test_saslauthd_listener_with_pam(self):
        mux = self.path("mux")
        self.start({"smtp": "matrix"}, mux=mux)
        p = subprocess.run([TESTSASLAUTHD, "-u", "alice", "-p", ALICE_PASSWORD, "-s", "smtp",
                            "-f", mux], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), '0: OK "Success."')


PAM_UNIX_SKIP = None
if os.geteuid() != 0:
    PAM_UNIX_SKIP = "pam_unix with a throwaway system account needs the tests to run as root"
elif not shutil.which("useradd") or not shutil.which("chpasswd"):
    PAM_UNIX_SKIP = "useradd/chpasswd not available"
else:
    PAM_UNIX = next((p for p in ("/lib/x86_64-linux-gnu/security/pam_unix.so",
                                 "/usr/lib/x86_64-linux-gnu/security/pam_unix.so")
                     if os.path.exists(p)), None)
    if not PAM_UNIX:
        PAM_UNIX_SKIP = "pam_unix.so not found"


@require_binaries
@unittest.skipIf(pam_missing(), pam_missing() or "")
@unittest.skipIf(PAM_UNIX_SKIP, PAM_UNIX_SKIP or "")
class PamUnixTest(DaemonTestCase):
    """pam_unix reads /etc/shadow: only the root workers can do that."""

    def setUp(self):
        super().setUp()
        self.account = "ptest" + secrets.token_hex(4)
        self.password = "Unix-Pa55-" + secrets.token_hex(6)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.account], check=True,
                       capture_output=True, timeout=30)
        self.addCleanup(subprocess.run, ["userdel", self.account], capture_output=True,
                        timeout=30)
        subprocess.run(["chpasswd"], input=f"{self.account}:{self.password}\n", text=True,
                       check=True, capture_output=True, timeout=30)

    def test_system_account(self):
        import harness
        harness.SECRETS.append(self.password)
        svc = self.path("pam.d")
        write_services(svc, None, {"smtp": f"auth required {PAM_UNIX} nodelay\n"
                                           f"account required {PAM_UNIX}\n"})
        sock = self.path("auth")
        d = PamDaemon(self.tmp, pam_config(sock), svc)
        self.daemons.append(d)
        d.start()
        c = self.connect(sock)
        c.auth_plain(1, self.account, self.password)
        self.assert_ok(c.reply(timeout=30), 1, self.account)
        c.auth_plain(2, self.account, WRONG_PASSWORD)
        fields = c.reply(timeout=30)
        self.assert_fail(fields, 2)
        self.assertNotIn("code=temp_fail", fields)
        self.assertNotEqual(proc_status(d.proc.pid)["Uid"][0], "0")


if __name__ == "__main__":
    unittest.main()
