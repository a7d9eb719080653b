# The passwd-file backend seen through the socket: malformed lines, a missing
# file (temp-fail), and edits picked up while the daemon runs.

import os
import re
import time
import unittest

from harness import (ALICE_PASSWORD, ASAN_RUNTIME, FIXTURES, LONGNAME_PASSWORD, NEW_PASSWORD,
                     WRONG_PASSWORD, DaemonTestCase, fields_dict, make_config,
                     passwd_line, require_binaries, write_file)
from test_master import rss_kib

RELOAD_WAIT = 3.0   # the daemon re-reads a changed file within ~2 s


@require_binaries
class MalformedFileTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        with open(os.path.join(FIXTURES, "malformed-users.passwd-file"), encoding="utf-8") as f:
            text = f.read()
        text = (text.replace("@GOOD1@", ALICE_PASSWORD).replace("@GOOD2@", NEW_PASSWORD)
                .replace("@GOOD3@", LONGNAME_PASSWORD))
        self.users = self.path("users")
        write_file(self.users, text)
        self.sock = self.path("auth")
        self.daemon = self.start_daemon(make_config(self.sock, self.users))
        self.c = self.connect(self.sock)

    def test_valid_lines_still_authenticate(self):
        for i, (user, pw) in enumerate([("good1", ALICE_PASSWORD), ("good2", NEW_PASSWORD),
                                        ("good3", LONGNAME_PASSWORD)], start=1):
            self.c.auth_plain(i, user, pw)
            self.assert_ok(self.c.reply(), i, user)

    def test_malformed_lines_do_not_authenticate(self):
        self.c.auth_plain(1, "this line has no colon at all", "")
        self.assert_fail(self.c.reply(), 1)
        self.c.auth_plain(2, "", ALICE_PASSWORD)
        self.assert_fail(self.c.reply(), 2)

    def test_warning_names_line_numbers(self):
        # The file is read at start-up or on first lookup: force a lookup.
        self.c.auth_plain(1, "good1", ALICE_PASSWORD)
        self.c.reply()
        deadline = time.monotonic() + 2
        while True:
            log = self.daemon.stderr()
            missing = [n for n in (5, 6)
                       if not re.search(rf"(:{n}\b|line {n}\b)", log)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertFalse(missing, f"no warning naming line(s) {missing}; stderr:\n{log}")
        for n in (1, 2, 3, 8, 9, 10):   # comments and empty lines are not malformed
            self.assertNotRegex(log, rf"users:{n}:", log)


@require_binaries
class MissingFileTest(DaemonTestCase):

    def test_missing_file_is_temp_fail(self):
        sock = self.path("auth")
        self.start_daemon(make_config(sock, self.path("does-not-exist")))
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        fields = c.reply()
        self.assert_fail(fields, 1)
        d = fields_dict(fields)
        self.assertEqual(d.get("code"), "temp_fail", fields)
        self.assertEqual(d.get("user"), "alice", fields)

    def test_file_removed_while_running(self):
        daemon, sock = self.start_standard()
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        os.unlink(self.path("users"))
        # Either the cached copy still answers or it is a temp-fail; never a
        # crash and never a plain "unknown user" for someone who may exist.
        deadline = time.monotonic() + RELOAD_WAIT
        i = 2
        while time.monotonic() < deadline:
            c.auth_plain(i, "alice", ALICE_PASSWORD)
            fields = c.reply()
            self.assertIn(fields[0], ("OK", "FAIL"), fields)
            if fields[0] == "FAIL":
                self.assertEqual(fields_dict(fields).get("code"), "temp_fail", fields)
            i += 1
            time.sleep(0.2)
        self.assertTrue(daemon.alive())


@require_binaries
class ReloadTest(DaemonTestCase):

    def wait_for(self, c, user, password, want, first_id):
        deadline = time.monotonic() + RELOAD_WAIT
        req = first_id
        while True:
            c.auth_plain(req, user, password)
            fields = c.reply_for(req)
            if fields[0] == want or time.monotonic() > deadline:
                return fields
            req += 1
            time.sleep(0.1)

    def test_changed_password_picked_up_without_restart(self):
        daemon, sock = self.start_standard()
        users = self.path("users")
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        before = os.stat(users)
        # Write a new file and rename it over the old one, as editors and
        # config managers do; also make sure mtime moves even on coarse clocks.
        tmp = users + ".new"
        write_file(tmp, passwd_line("alice", "{PLAIN}" + NEW_PASSWORD) +
                   passwd_line("carol", "{PLAIN}" + LONGNAME_PASSWORD))
        os.utime(tmp, (before.st_atime + 5, before.st_mtime + 5))
        os.replace(tmp, users)
        fields = self.wait_for(c, "alice", NEW_PASSWORD, "OK", 100)
        self.assertEqual(fields[0], "OK", f"new password not accepted after {RELOAD_WAIT}s")
        c.auth_plain(200, "alice", ALICE_PASSWORD)
        self.assert_fail(c.reply(), 200)
        c.auth_plain(201, "carol", LONGNAME_PASSWORD)
        self.assert_ok(c.reply(), 201, "carol")
        c.auth_plain(202, "bob", WRONG_PASSWORD)
        self.assert_fail(c.reply(), 202)

    def test_in_place_edit_picked_up(self):
        daemon, sock = self.start_standard()
        users = self.path("users")
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        st = os.stat(users)
        with open(users, "a", encoding="utf-8") as f:
            f.write(passwd_line("dave", "{PLAIN}" + NEW_PASSWORD))
        os.utime(users, (st.st_atime + 5, st.st_mtime + 5))
        fields = self.wait_for(c, "dave", NEW_PASSWORD, "OK", 100)
        self.assertEqual(fields[0], "OK", f"appended user not found after {RELOAD_WAIT}s")
        c.auth_plain(300, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 300, "alice")

    @unittest.skipIf(ASAN_RUNTIME, "ASan keeps freed memory in its quarantine, so RSS does not fall")
    def test_replaced_large_file_gives_its_memory_back(self):
        # 200,000 users (about 14 MB): the table is most of the daemon's
        # memory. Once a small file has replaced it and a login has seen the
        # new one, the old table's memory must leave the process within
        # seconds, not stay resident beside the new one.
        users = self.path("users")
        with open(users, "w", encoding="utf-8") as f:
            f.write(passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD))
            for i in range(200000):
                f.write(f"u{i:07d}@example.org:{{PLAIN}}pw{i:07d}-x:5000:5000::/var/vmail/u{i:07d}::\n")
        size_kib = os.path.getsize(users) // 1024
        sock = self.path("auth")
        daemon = self.start_daemon(make_config(sock, users))
        c = self.connect(sock)
        c.auth_plain(1, "alice", ALICE_PASSWORD)
        self.assert_ok(c.reply(), 1, "alice")
        loaded = rss_kib(daemon.proc.pid)
        st = os.stat(users)
        tmp = users + ".new"
        write_file(tmp, passwd_line("alice", "{PLAIN}" + NEW_PASSWORD))
        os.utime(tmp, (st.st_atime + 5, st.st_mtime + 5))
        os.replace(tmp, users)
        fields = self.wait_for(c, "alice", NEW_PASSWORD, "OK", 100)
        self.assertEqual(fields[0], "OK", f"new file not read after {RELOAD_WAIT}s")
        deadline = time.monotonic() + 5
        while True:
            now = rss_kib(daemon.proc.pid)
            if loaded - now >= size_kib or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"\n  {size_kib} KiB file: RSS {loaded} KiB loaded, {now} KiB after the swap", flush=True)
        self.assertGreaterEqual(loaded - now, size_kib,
                                f"RSS fell from {loaded} to {now} KiB only, for a {size_kib} KiB table")


if __name__ == "__main__":
    unittest.main()
