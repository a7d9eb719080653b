# `postern user` against passwd-files: every command, the running daemon
# picking changes up, atomic and locked writes (concurrent writers, writers
# killed with SIGKILL), and the error paths.

import os
import random
import signal
import subprocess
import time
import unittest

from harness import (POSTERN, register_secret, DaemonTestCase, make_config, require_binaries, run_cli, write_file)

USER_PASSWORD = "User-cli-Pa55w0rd-5e1b"
USER_NEW_PASSWORD = "User-cli-Chang3d-77c0"
IMPORT_PASSWORD = "Import-Pa55-clear-2f9a"
for _secret in (USER_PASSWORD, USER_NEW_PASSWORD, IMPORT_PASSWORD):
    register_secret(_secret)


def parse_users(path):
    """user -> line for every user line; raises on a torn or invalid line."""
    users = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise AssertionError("file does not end with a newline (torn write?)")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        if not sep or not rest.startswith("{"):
            raise AssertionError(f"malformed line {line[:60]!r}")
        if name in users:
            raise AssertionError(f"duplicate user {name}")
        users[name] = line
    return users


@require_binaries
class UserCommandsTest(DaemonTestCase):

    def user(self, *args, password=None):
        return run_cli(["user", *args], stdin_text=None if password is None else password + "\n")

    def test_add_show_list_passwd_del_with_running_daemon(self):
        users = self.path("users")
        write_file(users, "# managed by postern user\n")
        sock = self.path("auth")
        self.start_daemon(make_config(sock, users))

        p = self.user("add", "-f", users, "carol@example.org", "--uid", "1000", "--gid", "1000",
                      "--home", "/var/mail/carol", "--field", "userdb_quota_rule=*:storage=1G",
                      password=USER_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(users) as f:
            text = f.read()
        self.assertTrue(text.startswith("# managed by postern user\n"), "comment line not kept")
        self.assertNotIn(USER_PASSWORD, text)
        self.assertRegex(text, r"carol@example.org:\{SHA512-CRYPT\}\$6\$[^:]+:1000:1000::/var/mail/carol::"
                               r"userdb_quota_rule=\*:storage=1G\n")

        # The daemon sees the new user without a restart.
        self.assert_login_eventually(sock, "carol@example.org", USER_PASSWORD, True)

        show = self.user("show", "-f", users, "carol@example.org")
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("password: {SHA512-CRYPT} (hash hidden)", show.stdout)
        self.assertIn("home: /var/mail/carol", show.stdout)
        self.assertNotIn("$6$", show.stdout)

        self.assertEqual(self.user("add", "-f", users, "dave", "-s", "ARGON2ID", password="x-" + USER_PASSWORD)
                         .returncode, 0)
        lst = self.user("list", "-f", users)
        self.assertEqual(lst.stdout.split(), ["carol@example.org", "dave"])
        lst = self.user("list", "-f", users, "*@example.org")
        self.assertEqual(lst.stdout.split(), ["carol@example.org"])
        lst = self.user("list", "-f", users, "-l")
        self.assertIn("dave\t{ARGON2ID} (hash hidden)", lst.stdout)

        p = self.user("passwd", "-f", users, "carol@example.org", "-s", "BLF-CRYPT", password=USER_NEW_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(users) as f:
            line = parse_users(users)["carol@example.org"]
        self.assertIn(":{BLF-CRYPT}$2y$", line)
        self.assertTrue(line.endswith(":1000:1000::/var/mail/carol::userdb_quota_rule=*:storage=1G"), line)
        self.assert_login_eventually(sock, "carol@example.org", USER_NEW_PASSWORD, True)
        self.assert_login_eventually(sock, "carol@example.org", USER_PASSWORD, False)

        p = self.user("del", "-f", users, "carol@example.org")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(parse_users(users)), ["dave"])
        self.assert_login_eventually(sock, "carol@example.org", USER_NEW_PASSWORD, False)

    def assert_login_eventually(self, sock, user, password, expect_ok):
        deadline = time.monotonic() + 5
        req = 0
        while True:
            c = self.connect(sock)
            req += 1
            c.auth_plain(req, user, password)
            fields = c.reply()
            c.close()
            if (fields[0] == "OK") == expect_ok:
                return
            if time.monotonic() > deadline:
                self.fail(f"login {user} expected {'OK' if expect_ok else 'FAIL'}, got {fields}")
            time.sleep(0.2)

    def test_through_config_and_passdb_choice(self):
        users = self.path("users")
        other = self.path("other")
        write_file(users, "")
        write_file(other, "")
        conf = self.path("postern.conf")
        write_file(conf, f'''
[[listener]]
path = "{self.path('auth')}"

[[passdb]]
driver = "passwd-file"
path = "{users}"
write_scheme = "SSHA512"

[[passdb]]
driver = "passwd-file"
path = "{other}"
''')
        p = self.user("add", "-c", conf, "erin", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("erin:{SSHA512}", open(users).read())
        p = self.user("add", "-c", conf, "--passdb", "2", "frank", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("frank:{SHA512-CRYPT}", open(other).read())
        p = self.user("add", "-c", conf, "--passdb", "3", "gina", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 64, p.stderr)
        bad = self.path("bad.conf")
        sock_path = self.path("auth")
        write_file(bad, f'[[listener]]\npath = "{sock_path}"\n[[passdb]]\ndriver = "passwd-file"\npath = "/x"\nwrite_scheme = "NOPE"\n')
        p = self.user("list", "-c", bad)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("write_scheme", p.stderr)

    def test_keeps_mode_and_owner(self):
        users = self.path("users")
        write_file(users, "")
        os.chmod(users, 0o640)
        if os.geteuid() == 0:
            os.chown(users, 65534, 65534)
        p = self.user("add", "-f", users, "hank", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(users)
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        if os.geteuid() == 0:
            self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))

    def test_errors(self):
        users = self.path("users")
        write_file(users, "ivy:{PLAIN}x\n")
        before = open(users).read()
        cases = [
            (["add", "-f", users, "a:b"], 65, "':'"),
            (["add", "-f", users, "new\nline"], 65, "control"),
            (["add", "-f", users, "#comment"], 65, "'#'"),
            (["add", "-f", users, "x" * 300], 65, "longer"),
            (["add", "-f", users, "ivy"], 1, "already exists"),
            (["add", "-f", users, "jack", "-s", "NO-SUCH-SCHEME"], 65, "unknown scheme"),
            (["add", "-f", users, "jack", "-s", "BLF-CRYPT", "-r", "40"], 65, "cost"),
            (["add", "-f", users, "jack", "-s", "ARGON2ID", "-r", "100000"], 65, "out of range"),
            (["add", "-f", users, "jack", "--field", "nokey"], 64, "KEY=VALUE"),
            (["add", "-f", users, "jack", "--field", "k=has space"], 65, "spaces"),
            (["add", "-f", users, "jack", "--uid", "no-such-user-xyz"], 65, "uid"),
            (["add", "-f", users, "jack", "--uid", "0"], 65, "root"),
            (["add", "-f", users, "jack", "-s", "PLAIN"], 65, "':'"),  # the password has a colon
            (["passwd", "-f", users, "nobody-here"], 1, "no user"),
            (["del", "-f", users, "nobody-here"], 1, "no user"),
            (["show", "-f", users, "nobody-here"], 1, "no user"),
            (["add", "-f", self.path("missing"), "jack"], 2, "No such file"),
            (["list", "-f", self.path("missing")], 2, "No such file"),
            (["add", "-f", users, "jack", "--password", "x"], 64, ""),
        ]
        for args, code, text in cases:
            with self.subTest(args=args[:1] + args[3:4]):
                p = self.user(*args, password="with:colon-" + USER_PASSWORD)
                self.assertEqual(p.returncode, code, p.stdout + p.stderr)
                self.assertIn(text, p.stderr)
                self.assertNotIn(USER_PASSWORD, p.stdout + p.stderr)
        self.assertEqual(open(users).read(), before, "a refused change modified the file")
        self.assertFalse(os.path.exists(self.path("missing")))

    def test_read_only_file_is_not_changed(self):
        users = self.path("users")
        write_file(users, "ivy:{PLAIN}x\n")
        os.chmod(users, 0o444)
        p = self.user("add", "-f", users, "jack", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("read-only", p.stderr)
        self.assertEqual(open(users).read(), "ivy:{PLAIN}x\n")

    def test_create(self):
        users = self.path("new-users")
        p = self.user("add", "-f", users, "--create", "kate", password=USER_PASSWORD)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(parse_users(users)), ["kate"])
        self.assertEqual(os.stat(users).st_mode & 0o777, 0o640)

    def test_concurrent_writers_lose_nothing(self):
        users = self.path("users")
        write_file(users, "")
        procs = []
        per_proc, nprocs = 15, 8
        # Each process adds its users one `postern user add` at a time, all
        # processes at once: every add must survive.
        for n in range(nprocs):
            script = (f"for i in $(seq 1 {per_proc}); do printf 'pw-%s\\n' $i | "
                      f"{POSTERN} user add -f {users} -s SSHA p{n}-u$i || exit 1; done")
            procs.append(subprocess.Popen(["bash", "-c", script],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        got = parse_users(users)
        want = {f"p{n}-u{i}" for n in range(nprocs) for i in range(1, per_proc + 1)}
        self.assertEqual(set(got), want)
        # Concurrent password changes of one user and adds of others.
        procs = [subprocess.Popen([POSTERN, "user", "passwd", "-f", users, "p0-u1", "-s", "SSHA"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(6)]
        for p in procs:
            p.communicate(b"changed\n", timeout=60)
            self.assertEqual(p.returncode, 0)
        self.assertEqual(set(parse_users(users)), want)

    def test_writer_killed_mid_write_leaves_old_or_new_file(self):
        users = self.path("users")
        # A file big enough that a rewrite takes a while, so kills land mid-write.
        base = "".join(f"bulk{i:06d}:{{SSHA}}{'A' * 200}:1000:1000::/home/bulk{i:06d}\n" for i in range(60000))
        write_file(users, base)
        rng = random.Random(1234)
        # Kill times spread over how long one uninterrupted write takes here.
        started = time.monotonic()
        p = self.user("add", "-f", users, "-s", "SSHA", "timing-probe", password="pw")
        self.assertEqual(p.returncode, 0, p.stderr)
        full_write = time.monotonic() - started
        known = dict(parse_users(users))
        killed_mid = 0
        mid_write = 0  # kills between creating the temporary and renaming it
        attempts = 0
        for attempt in range(80):
            if attempts >= 16 and mid_write >= 2:
                break
            attempts += 1
            p = subprocess.Popen([POSTERN, "user", "add", "-f", users, "-s", "SSHA", f"killme{attempt}"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.stdin.write(b"pw\n")
            p.stdin.flush()
            if attempt % 2 == 0:
                # Every other writer dies as soon as its temporary shows up:
                # a kill mid-write however long the window is under ASan or load.
                until = time.monotonic() + 60
                while (p.poll() is None and time.monotonic() < until and
                       not any(".postern-tmp." in n for n in os.listdir(self.tmp))):
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0.1, 1.1) * full_write)
            p.send_signal(signal.SIGKILL)
            p.wait()
            if any(".postern-tmp." in n for n in os.listdir(self.tmp)):
                mid_write += 1
            got = parse_users(users)  # raises on a torn file
            extra = set(got) - set(known)
            self.assertLessEqual(extra, {f"killme{attempt}"})
            self.assertEqual(set(known) - set(got), set())
            if not extra:
                killed_mid += 1
            known = got
        # Some writer died between creating its temporary and renaming it
        # (a real mid-write kill); the next writer cleans such files up.
        p = self.user("add", "-f", users, "-s", "SSHA", "after-kills", password="pw")
        self.assertEqual(p.returncode, 0, p.stderr)
        leftovers = [n for n in os.listdir(self.tmp) if ".postern-tmp." in n]
        self.assertEqual(leftovers, [])
        self.assertIn("after-kills", parse_users(users))
        self.assertGreater(mid_write, 0, "no writer was killed mid-write; the test proved nothing")
        print(f"\n  kill -9 test: {killed_mid}/{attempts} writers killed before their rename "
              f"({mid_write} with a half-written temporary); file intact every time", end=" ")


@require_binaries
class UserImportTest(DaemonTestCase):

    def run_import(self, users, source_text, *args):
        src = self.path("import-src")
        write_file(src, source_text)
        return run_cli(["user", "import", "-f", users, src, *args])

    def test_passwd_file_import_with_broken_lines(self):
        users = self.path("users")
        write_file(users, "old:{PLAIN}x\n")
        p = self.run_import(users, "# exported\n"
                                   "ann:{SSHA}abcdef:1001:1001::/home/ann::userdb_mail=maildir:~/Maildir\n"
                                   ":{PLAIN}nouser\n"
                                   "old:{PLAIN}y\n"
                                   "bea:{PLAIN}z:notanumber-nouser:1\n"
                                   "cid:{SHA512-CRYPT}$6$abc$def\n")
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertIn("added 2, skipped 1 (already present), errors 2", p.stdout)
        self.assertRegex(p.stderr, r"import-src:3: empty user name")
        self.assertRegex(p.stderr, r"import-src:5: invalid uid")
        got = parse_users(users)
        self.assertEqual(list(got), ["old", "ann", "cid"])
        self.assertEqual(got["old"], "old:{PLAIN}x")
        self.assertEqual(got["ann"], "ann:{SSHA}abcdef:1001:1001::/home/ann::userdb_mail=maildir:~/Maildir")

    def test_userpass_import_hashes_cleartext_and_daemon_accepts(self):
        users = self.path("users")
        write_file(users, "")
        lines = "".join(f"u{i}@example.org:{IMPORT_PASSWORD}{i}\n" for i in range(40))
        p = self.run_import(users, lines + "broken-line-without-colon\n", "--format", "userpass", "-s", "SHA256-CRYPT")
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertIn("added 40, skipped 0 (already present), errors 1", p.stdout)
        self.assertIn("import-src:41: expected user:password", p.stderr)
        text = open(users).read()
        self.assertNotIn(IMPORT_PASSWORD, text)
        self.assertEqual(text.count("{SHA256-CRYPT}$5$"), 40)
        sock = self.path("auth")
        self.start_daemon(make_config(sock, users))
        c = self.connect(sock)
        c.auth_plain(1, "u7@example.org", f"{IMPORT_PASSWORD}7")
        self.assert_ok(c.reply(), 1, "u7@example.org")
        c.auth_plain(2, "u7@example.org", f"{IMPORT_PASSWORD}8")
        self.assert_fail(c.reply(), 2)

    def test_csv_import(self):
        users = self.path("users")
        write_file(users, "")
        csv = ('user,password,uid,gid,home,userdb_quota_rule\n'
               f'"dan@example.org","{IMPORT_PASSWORD}",1000,1000,/home/dan,*:storage=2G\n'
               f'eve@example.org,"quoted ""pw""",1000,1000,,\n'
               f'bad@example.org,"unterminated\n'
               f'a,b,c,d,e,f,g\n')
        p = self.run_import(users, csv, "--format", "csv", "-s", "SSHA256")
        self.assertEqual(p.returncode, 65, p.stdout + p.stderr)
        self.assertIn("added 2, skipped 0 (already present), errors 2", p.stdout)
        self.assertIn("import-src:4: unterminated quoted field", p.stderr)
        self.assertIn("import-src:5: more cells", p.stderr)
        got = parse_users(users)
        self.assertRegex(got["dan@example.org"], r"^dan@example.org:\{SSHA256\}[^:]+:1000:1000::/home/dan::"
                                                 r"userdb_quota_rule=\*:storage=2G$")
        ok = run_cli(["pw", "-t", got["eve@example.org"].split(":")[1]], stdin_text='quoted "pw"\n')
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)

    def test_hashed_userpass_import(self):
        users = self.path("users")
        write_file(users, "")
        made = run_cli(["pw", "-s", "SHA512-CRYPT"], stdin_text=IMPORT_PASSWORD + "\n").stdout.strip()
        p = self.run_import(users, f"hashed:{made}\n", "--format", "userpass", "--hashed")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(parse_users(users)["hashed"], f"hashed:{made}")

    def test_missing_import_file_and_store(self):
        users = self.path("users")
        write_file(users, "")
        p = run_cli(["user", "import", "-f", users, self.path("nope")])
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("cannot open", p.stderr)
        src = self.path("src")
        write_file(src, "x:{PLAIN}y\n")
        p = run_cli(["user", "import", "-f", self.path("missing-store"), src])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("nothing imported", p.stderr)


if __name__ == "__main__":
    unittest.main()
