# [[userdb]] translate_fields = "dovecot24" with the real Dovecot 2.4.1 from the
# Debian 13 root (tests/dovecot24_root.sh): 2.4's doveadm, whose mail storage
# service applies userdb fields as settings, shows the translated mail and
# quota settings taking effect (the effective mail_path, a mailbox created at
# the translated path in the translated layout, the quota limits); without the
# setting it drops the 2.3-named fields. The host's Dovecot 2.3 doveadm sees
# the 2.3 names unchanged when the setting is off.

import os
import re
import shutil
import subprocess
import unittest

import dovecot24_support as d24
from harness import ALICE_PASSWORD, passwd_line, require_binaries, write_file
from test_dovecot24 import MAIL_UID, MISSING, Dovecot24Case

DOVEADM23 = shutil.which("doveadm")
ALICE_23 = ("userdb_mail=maildir:~/Translated:LAYOUT=fs userdb_quota_rule=*:storage=1G "
            "userdb_quota_rule2=*:messages=500")
# Fields without a 2.4 equivalent: passed on, logged by name only.
CAROL_23 = "userdb_quota_rule=Trash:storage=+100M userdb_sieve=file:~/sieve userdb_quota=count:User"
TRANSLATE = 'translate_fields = "dovecot24"\n'


class Fields24Case(Dovecot24Case):

    def start(self, extra=""):
        self.home = d24.make_home(self.tmp, "alice", MAIL_UID)
        users = self.path("users")
        write_file(users, passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                      home=d24.inside(self.home), extra=ALICE_23)
                   + passwd_line("carol", "{PLAIN}" + ALICE_PASSWORD, uid=MAIL_UID, gid=MAIL_UID,
                                 home=d24.inside(self.home), extra=CAROL_23))
        # extra lands in the [[userdb]] table, the last one of the file.
        self.start_posternd(users, extra=extra)
        # The mail storage service's userdb socket is posternd's master
        # socket; the quota plugin is loaded with one quota root and no
        # limits of its own, so only userdb fields can set them; the global
        # mail location is ~/Default, which a userdb field overrides.
        self.conf = self.path("doveadm.conf")
        write_file(self.conf, "dovecot_config_version = 2.4.1\ndovecot_storage_version = 2.4.1\n"
                   f"base_dir = {d24.inside(self.path('dovecot-run'))}\n"
                   f"auth_socket_path = {self.sock['master']}\n"
                   "first_valid_uid = 1000\n"
                   "mail_driver = maildir\nmail_path = ~/Default\n"
                   "mail_plugins {\n  quota = yes\n}\n"
                   'quota "User" {\n}\n')
        self.conf = d24.inside(self.conf)
        os.makedirs(self.path("dovecot-run"))

    def user(self, name="alice"):
        r = self.doveadm("user", "-a", self.sock["master"], name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return dict(line.split("\t", 1) for line in r.stdout.splitlines()[1:] if "\t" in line), r

    def quota(self, name="alice"):
        r = self.doveadm("quota", "get", "-u", name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        limits = {}
        for line in r.stdout.splitlines()[1:]:
            cols = line.split()
            limits[cols[-4]] = cols[-2]  # Quota name, Type, Value, Limit, %
        return limits, r


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class Translate24Test(Fields24Case):

    def setUp(self):
        super().setUp()
        self.start(TRANSLATE)

    def test_doveadm_user_shows_the_translated_settings(self):
        fields, r = self.user()
        # mail_path is what the 2.4 mail storage service made of the fields
        # (mail_set->mail_path), not an echo of them.
        self.assertEqual(fields.get("mail_path"), d24.inside(self.home) + "/Translated", r.stdout)
        self.assertEqual(fields.get("mail_driver"), "maildir", r.stdout)
        self.assertEqual(fields.get("mailbox_list_layout"), "fs", r.stdout)
        self.assertEqual(fields.get("quota_storage_size"), "1G", r.stdout)
        self.assertEqual(fields.get("quota_message_count"), "500", r.stdout)
        for name in ("mail", "quota_rule", "quota_rule2"):
            self.assertNotIn(name, fields, r.stdout)

    def test_mailbox_is_created_at_the_translated_path_and_layout(self):
        r = self.doveadm("mailbox", "create", "-u", "alice", "Box/Sub")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # LAYOUT=fs: Box/Sub as directories (Maildir++ would make .Box.Sub).
        sub = os.path.join(self.home, "Translated", "Box", "Sub")
        self.assertTrue(os.path.isdir(os.path.join(sub, "cur")), os.listdir(self.home))
        self.assertEqual(os.stat(sub).st_uid, MAIL_UID)
        self.assertFalse(os.path.exists(os.path.join(self.home, "Translated", ".Box.Sub")))

    def test_quota_limits_come_from_the_translated_rules(self):
        limits, r = self.quota()
        self.assertEqual(limits.get("STORAGE"), str(1024 * 1024), r.stdout)  # KiB
        self.assertEqual(limits.get("MESSAGE"), "500", r.stdout)

    def test_untranslatable_fields_are_passed_and_logged_once_by_name(self):
        for _ in range(3):
            fields, r = self.user("carol")
        self.assertEqual(fields.get("quota_rule"), "Trash:storage=+100M", r.stdout)
        self.assertEqual(fields.get("sieve"), "file:~/sieve", r.stdout)
        self.assertEqual(fields.get("quota"), "count:User", r.stdout)
        log = self.daemon.stderr()
        warned = [line for line in log.splitlines() if "has no Dovecot 2.4 name" in line]
        self.assertEqual(len(warned), 3, log)
        for line, name in zip(warned, ("quota_rule", "sieve", "quota")):
            self.assertIn(f'userdb passwd-file (userdb[0]): field "{name}"', line)
        for value in ("Trash:storage", "~/sieve", "count:User"):
            self.assertNotIn(value, "\n".join(warned))
        # What 2.4 does with a 2.3 quota root field, as postern.conf(5) says:
        # with the quota plugin loaded the user's mail session fails.
        q = self.doveadm("quota", "get", "-u", "carol")
        self.assertNotEqual(q.returncode, 0, q.stdout)
        self.assertIn("Filter quota=count:User unexpectedly not found", q.stderr)


@require_binaries
@unittest.skipIf(MISSING, MISSING or "")
class AsStored24Test(Fields24Case):

    def setUp(self):
        super().setUp()
        self.start()

    def test_2_4_drops_the_2_3_names(self):
        fields, r = self.user()
        # The fields arrive as stored...
        self.assertEqual(fields.get("mail"), "maildir:~/Translated:LAYOUT=fs", r.stdout)
        self.assertEqual(fields.get("quota_rule"), "*:storage=1G", r.stdout)
        # ...and 2.4 applies none of them: the global mail location, no
        # quota limits.
        self.assertEqual(fields.get("mail_path"), d24.inside(self.home) + "/Default", r.stdout)
        limits, q = self.quota()
        self.assertEqual(limits.get("STORAGE"), "-", q.stdout)
        self.assertEqual(limits.get("MESSAGE"), "-", q.stdout)
        self.assertNotIn("has no Dovecot 2.4 name", self.daemon.stderr())

    @unittest.skipUnless(DOVEADM23, "host doveadm (Dovecot 2.3) not installed (apt-get install dovecot-core)")
    def test_2_3_doveadm_sees_the_2_3_names(self):
        dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
        version = subprocess.run([dovecot, "--version"], capture_output=True, text=True, timeout=30).stdout
        self.assertTrue(version.startswith("2.3."), version)
        r = subprocess.run([DOVEADM23, "-c", "/dev/null", "user", "-u", "-a", self.path("master"), "alice"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        fields = dict(re.split(r"\s*:\s", line.strip(), 1) for line in r.stdout.splitlines()[1:] if line.strip())
        self.assertEqual(fields.get("mail"), "maildir:~/Translated:LAYOUT=fs", r.stdout)
        self.assertEqual(fields.get("quota_rule"), "*:storage=1G", r.stdout)
        self.assertEqual(fields.get("quota_rule2"), "*:messages=500", r.stdout)
        self.assertNotIn("mail_driver", fields, r.stdout)


if __name__ == "__main__":
    unittest.main()
