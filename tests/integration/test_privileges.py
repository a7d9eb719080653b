# Privilege drop, checked on the running daemon's credentials in /proc, and the
# socket's owner and mode as configured.

import os
import pwd
import grp
import stat
import unittest

from harness import (ALICE_PASSWORD, DaemonTestCase, make_config, require_binaries)


def proc_caps(pid):
    """Effective and permitted capability sets as integers."""
    caps = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm"):
                caps[key] = int(value.strip(), 16)
    return caps


def proc_ids(pid):
    """(real, effective, saved, fs) uids and gids, and supplementary groups."""
    uids = gids = groups = None
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Uid:"):
                uids = [int(x) for x in line.split()[1:]]
            elif line.startswith("Gid:"):
                gids = [int(x) for x in line.split()[1:]]
            elif line.startswith("Groups:"):
                groups = [int(x) for x in line.split()[1:]]
    return uids, gids, groups


@require_binaries
@unittest.skipUnless(os.geteuid() == 0, "privilege drop needs the tests to run as root")
class PrivilegeDropTest(DaemonTestCase):

    def test_root_without_user_runs_as_nobody(self):
        d, sock = self.start_standard()
        nobody = pwd.getpwnam("nobody")
        uids, gids, groups = proc_ids(d.proc.pid)
        self.assertEqual(uids, [nobody.pw_uid] * 4)
        self.assertEqual(gids, [nobody.pw_gid] * 4)
        self.assertEqual(groups, [nobody.pw_gid])
        self.assertEqual(proc_caps(d.proc.pid), {"CapEff": 0, "CapPrm": 0})
        # Still serving after the drop (the users file is world-readable).
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_configured_user_group_and_socket_owner_mode(self):
        users = self.standard_users()
        sock = self.path("auth")
        conf = make_config(sock, users).replace(
            'mode = "0666"', 'mode = "0660"\nuser = "daemon"\ngroup = "mail"')
        conf = '[daemon]\nuser = "daemon"\ngroup = "mail"\n' + conf
        d = self.start_daemon(conf)
        uids, gids, groups = proc_ids(d.proc.pid)
        daemon_uid = pwd.getpwnam("daemon").pw_uid
        mail_gid = grp.getgrnam("mail").gr_gid
        self.assertEqual(uids, [daemon_uid] * 4)
        self.assertEqual(gids, [mail_gid] * 4)
        self.assertEqual(groups, [mail_gid])
        self.assertEqual(proc_caps(d.proc.pid), {"CapEff": 0, "CapPrm": 0})
        st = os.stat(sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual((st.st_uid, st.st_gid), (daemon_uid, mail_gid))

    def test_root_as_daemon_user_is_refused(self):
        users = self.standard_users()
        conf = '[daemon]\nuser = "root"\n' + make_config(self.path("auth"), users)
        d = self.start_daemon(conf, wait_ready=False)
        rc = d.proc.wait(10)
        self.assertEqual(rc, 71)
        self.assertIn("must not be root", d.stderr())


@require_binaries
@unittest.skipUnless(os.geteuid() == 0, "starting as another user needs the tests to run as root")
class UnprivilegedStartTest(DaemonTestCase):
    """posternd started without root (containers, tests): it keeps its
    identity, and refuses a daemon.user it cannot switch to."""

    def setUp(self):
        super().setUp()
        self.nobody = pwd.getpwnam("nobody")
        # A directory the unprivileged daemon may create its socket in.
        self.rundir = self.path("run")
        os.mkdir(self.rundir, 0o755)
        os.chown(self.rundir, self.nobody.pw_uid, self.nobody.pw_gid)

    def start_as_nobody(self, conf, wait_ready=True):
        return self.start_daemon(conf, wait_ready=wait_ready, user=self.nobody.pw_uid,
                                 group=self.nobody.pw_gid, extra_groups=[])

    def test_runs_unprivileged_from_the_start(self):
        users = self.standard_users()
        sock = os.path.join(self.rundir, "auth")
        d = self.start_as_nobody(make_config(sock, users, mode="0660"))
        uids, gids, groups = proc_ids(d.proc.pid)
        self.assertEqual(uids, [self.nobody.pw_uid] * 4)
        self.assertEqual(gids, [self.nobody.pw_gid] * 4)
        self.assertEqual(groups, [])
        st = os.stat(sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_uid, self.nobody.pw_uid)
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")

    def test_same_user_configured_is_fine(self):
        users = self.standard_users()
        sock = os.path.join(self.rundir, "auth")
        conf = '[daemon]\nuser = "nobody"\n' + make_config(sock, users)
        d = self.start_as_nobody(conf)
        self.assertEqual(proc_ids(d.proc.pid)[0], [self.nobody.pw_uid] * 4)

    def test_other_user_without_root_is_refused(self):
        users = self.standard_users()
        sock = os.path.join(self.rundir, "auth")
        conf = '[daemon]\nuser = "daemon"\n' + make_config(sock, users)
        d = self.start_as_nobody(conf, wait_ready=False)
        self.assertEqual(d.proc.wait(10), 71)
        self.assertIn("not running as root", d.stderr())


@require_binaries
@unittest.skipUnless(os.geteuid() == 0, "socket ownership needs the tests to run as root")
class SocketModeTest(DaemonTestCase):

    def test_default_mode_is_owner_only(self):
        users = self.standard_users()
        sock = self.path("auth")
        conf = make_config(sock, users).replace('mode = "0666"\n', "")
        self.start_daemon(conf)
        st = os.stat(sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, 0)

    def test_socket_created_under_a_permissive_umask_gets_exact_mode(self):
        # The daemon's own umask must not widen or narrow the socket's mode.
        users = self.standard_users()
        sock = self.path("auth")
        conf = make_config(sock, users).replace('mode = "0666"', 'mode = "0640"')
        old = os.umask(0)
        try:
            self.start_daemon(conf)
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o640)
