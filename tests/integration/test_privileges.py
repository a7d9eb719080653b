# Privilege drop, checked on the running daemon's credentials in /proc, and the
# socket's owner and mode as configured.

import os
import pwd
import grp
import stat
import unittest

from harness import (ALICE_PASSWORD, DaemonTestCase, make_config, require_binaries)


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
