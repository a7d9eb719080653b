# The ldap passdb/userdb against a real OpenLDAP slapd (ldap_support.py):
# lookup mode (userPassword in cleartext, {SSHA}, {CRYPT}$6$, {ARGON2ID})
# with PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256; bind mode; hostile user
# names; doveadm user and iteration through the userdb; slapd stopped under
# load; a wrong service-account password; StartTLS and ldaps with a test CA;
# writes: postern user passwd/show/list and rehash on login as a service
# account that may write userPassword, and refusals for one that may not.

import contextlib
import hmac
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (POSTERND, WRONG_PASSWORD, AuthClient, Closed, Daemon, DaemonTestCase, MasterClient, b64,
                     fields_dict, free_tcp_port, make_config, register_secret, run_cli,
                     require_binaries, scram_login, toml_str, unb64, wait_stopped, write_file)
from ldap_support import (SERVICE_DN, SERVICE_PW, WRITER_DN, WRITER_PW, Slapd, ldap_conf, make_ca, make_users,
                          simple_bind_works, slapd_missing, stored_password, wait_until)
from postfix_support import PostfixTestCase, postfix_missing

DOVEADM = shutil.which("doveadm")
MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256")
HOSTILE = ["*", "*)(uid=*", "admin)(|(uid=*", "\\", "user000@example.co*", "user00*@example.com",
           "*@example.com", "user000@example.com)(mail=*", "x" * 10240]


class LdapBase(DaemonTestCase):
    """One slapd (300 users) per class; a posternd per test."""

    tls = False
    ldapi = False

    @classmethod
    def setUpClass(cls):
        reason = slapd_missing()
        if reason:
            raise unittest.SkipTest(reason)
        cls.class_tmp = tempfile.mkdtemp(prefix="postern-ldap-")
        os.chmod(cls.class_tmp, 0o755)
        cls.users = make_users()
        ca = make_ca(cls.class_tmp) if cls.tls else None
        if cls.tls and not ca:
            shutil.rmtree(cls.class_tmp, ignore_errors=True)
            raise unittest.SkipTest("openssl not installed: no test CA for StartTLS/ldaps")
        cls.ca = ca
        cls.slapd = Slapd(cls.class_tmp, cls.users, tls=ca, ldapi=cls.ldapi)
        try:
            cls.slapd.start()
        except Exception:
            cls.slapd.stop()
            shutil.rmtree(cls.class_tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.slapd.stop()
        shutil.rmtree(cls.class_tmp, ignore_errors=True)

    def user(self, scheme):
        return next(u for u in self.users if u.scheme == scheme and u.active and len(u.mails) == 1)

    def start_ldap(self, conf_text, *, passdb=True, userdb=True, pool="", mechs=MECHS, extra_auth=""):
        conf = self.path("dovecot-ldap.conf.ext")
        write_file(conf, conf_text)
        extra = ""
        if passdb:
            extra += f'[[passdb]]\ndriver = "ldap"\nargs = {toml_str(conf)}\ntimeout = "3s"\n{pool}\n'
        if userdb:
            extra += (f'[[userdb]]\ndriver = "ldap"\nargs = {toml_str(conf)}\ntimeout = "3s"\npage_size = 50\n'
                      f'{pool}\n')
            extra += (f'[[listener]]\ntype = "unix"\npath = {toml_str(self.path("userdb"))}\n'
                      'mode = "0666"\nrole = "userdb"\n\n')
        # The auth cache is off by default, so each request reaches slapd.
        sock = self.path("auth")
        config = make_config(sock, None, mechanisms=mechs, extra=extra).replace("[auth]\n", f"[auth]\n{extra_auth}\n", 1)
        d = self.start_daemon(config)
        return d, sock

    def client(self, sock):
        c = AuthClient(sock)
        self.addCleanup(c.close)
        return c.handshake()

    def plain(self, c, req_id, user, password, timeout=10):
        c.auth_plain(req_id, user, password)
        return c.reply_for(req_id, timeout=timeout)

    def login_mech(self, c, req_id, user, password):
        c.auth(req_id, "LOGIN", "lip=127.0.0.1", "rip=127.0.0.1")
        r = c.reply_for(req_id, timeout=10)
        self.assertEqual(r[0], "CONT", r)
        c.send_line("CONT", str(req_id), b64(user))
        r = c.reply_for(req_id, timeout=10)
        self.assertEqual(r[0], "CONT", r)
        c.send_line("CONT", str(req_id), b64(password))
        return c.reply_for(req_id, timeout=10)

    def cram(self, c, req_id, user, password):
        c.auth(req_id, "CRAM-MD5", "lip=127.0.0.1", "rip=127.0.0.1")
        r = c.reply_for(req_id, timeout=10)
        self.assertEqual(r[0], "CONT", r)
        challenge = unb64(r[2]).decode()
        digest = hmac.new(password.encode(), challenge.encode(), "md5").hexdigest()
        c.send_line("CONT", str(req_id), b64(f"{user} {digest}"))
        return c.reply_for(req_id, timeout=10)

    def assert_plain_fail(self, reply, req_id, temp=False):
        self.assert_fail(reply, req_id)
        self.assertEqual("code=temp_fail" in reply, temp, reply)

    def assert_config_error(self, conf_text, key):
        """posternd refuses to start (78) naming the ldap file's line and `key`."""
        conf = self.path("bad-ldap.conf.ext")
        write_file(conf, conf_text)
        cfg = self.path("bad.conf")
        write_file(cfg, make_config(self.path("auth"), None,
                                    extra=f'[[passdb]]\ndriver = "ldap"\nargs = {toml_str(conf)}\n'))
        p = subprocess.run([POSTERND, "-c", cfg], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(key, p.stderr)
        self.assertRegex(p.stderr, r"bad-ldap\.conf\.ext:\d+")

    def assert_right_and_wrong(self, c, req, u):
        """PLAIN with u's password succeeds, with a wrong one fails; returns the last request id."""
        req += 1
        self.assert_ok(self.plain(c, req, u.login, u.password), req, u.login)
        req += 1
        self.assert_plain_fail(self.plain(c, req, u.login, WRONG_PASSWORD), req)
        return req


@require_binaries
class LookupModeTest(LdapBase):

    def test_plain_and_login_for_every_stored_scheme(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd))
        c = self.client(sock)
        req = 0
        for scheme in ("PLAIN", "SSHA", "CRYPT", "ARGON2ID"):
            u = self.user(scheme)
            with self.subTest(scheme=scheme):
                req = self.assert_right_and_wrong(c, req, u)
                req += 1
                self.assert_ok(self.login_mech(c, req, u.login, u.password), req, u.login)
        req += 1
        self.assert_plain_fail(self.plain(c, req, "nobody@example.com", WRONG_PASSWORD), req)

    def test_inactive_account_is_filtered_out(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd))
        c = self.client(sock)
        inactive = next(u for u in self.users if not u.active)
        self.assert_plain_fail(self.plain(c, 1, inactive.login, inactive.password), 1)

    def test_second_mail_value_logs_in_as_the_first(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd))
        c = self.client(sock)
        u = next(u for u in self.users if len(u.mails) == 2)
        self.assert_ok(self.plain(c, 1, u.mails[1], u.password), 1, u.mails[0])
        self.assertIn("multiple values found for 'mail'", d.stderr())

    def test_cram_md5_and_scram_sha_256_get_credentials(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd))
        c = self.client(sock)
        u = self.user("PLAIN")
        self.assert_ok(self.cram(c, 1, u.login, u.password), 1, u.login)
        self.assert_plain_fail(self.cram(c, 2, u.login, WRONG_PASSWORD), 2)
        self.assert_ok(scram_login(c, 3, "SCRAM-SHA-256", u.login, u.password), 3, u.login)
        r = scram_login(c, 4, "SCRAM-SHA-256", u.login, WRONG_PASSWORD)
        self.assertNotEqual(r[0], "OK", r)
        # A hashed password cannot give CRAM-MD5 credentials: a failure, never OK.
        h = self.user("SSHA")
        self.assert_fail(self.cram(c, 5, h.login, h.password), 5)

    def test_hostile_names_find_nothing(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd))
        c = self.client(sock)
        first = self.users[0]
        for i, name in enumerate(HOSTILE, start=1):
            with self.subTest(name=name[:40]):
                r = self.plain(c, i, name, first.password)
                self.assert_fail(r, i)
                self.assertNotIn("code=temp_fail", r)
        # NUL inside the name: PLAIN cannot carry it, LOGIN can (the server
        # may refuse it at the name already).
        c.auth(100, "LOGIN", "lip=127.0.0.1", "rip=127.0.0.1")
        self.assertEqual(c.reply_for(100)[0], "CONT")
        c.send_line("CONT", "100", b64("user000@example.com\0x"))
        r = c.reply_for(100)
        if r[0] == "CONT":
            c.send_line("CONT", "100", b64(first.password))
            r = c.reply_for(100)
        self.assert_fail(r, 100)
        log = d.stderr()
        self.assertNotIn("more than one entry", log)
        self.assertNotIn("matched", log)

    def test_wrong_service_password_is_temp_fail_with_a_clear_log_line(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd, dnpass="not-the-service-password"), userdb=False)
        c = self.client(sock)
        u = self.user("SSHA")
        r = self.plain(c, 1, u.login, u.password)
        self.assert_plain_fail(r, 1, temp=True)
        log = d.stderr()
        self.assertIn(f"bind as {SERVICE_DN}", log)
        self.assertIn("Invalid credentials", log)

    def test_unknown_setting_is_a_config_error_naming_the_line(self):
        self.assert_config_error(ldap_conf(self.slapd) + "pass_fliter = (uid=%u)\n", "pass_fliter")


@require_binaries
class BindModeTest(LdapBase):

    def test_plain_by_bind(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd, auth_bind=True), mechs=("PLAIN", "LOGIN"))
        c = self.client(sock)
        req = 0
        # slapd verifies what it knows: cleartext, {SSHA}, {CRYPT}.
        for scheme in ("PLAIN", "SSHA", "CRYPT"):
            u = self.user(scheme)
            with self.subTest(scheme=scheme):
                req = self.assert_right_and_wrong(c, req, u)
        u = self.user("SSHA")
        req += 1
        # An empty password must never become an anonymous bind.
        self.assert_plain_fail(self.plain(c, req, u.login, ""), req)
        inactive = next(u for u in self.users if not u.active)
        req += 1
        self.assert_plain_fail(self.plain(c, req, inactive.login, inactive.password), req)
        for name in HOSTILE:
            req += 1
            r = self.plain(c, req, name, self.users[0].password)
            self.assert_plain_fail(r, req)

    def test_bind_with_auth_bind_userdn(self):
        conf = ldap_conf(self.slapd, auth_bind=True,
                         extra="auth_bind_userdn = mail=%u,ou=users,domainName=example.com,o=domains,dc=example,dc=com\n")
        d, sock = self.start_ldap(conf, userdb=False, mechs=("PLAIN",))
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)
        self.assert_plain_fail(self.plain(c, 2, u.login, WRONG_PASSWORD), 2)
        # A DN-special name is escaped: it names no entry, the bind fails.
        self.assert_plain_fail(self.plain(c, 3, u.login + ",ou=x", u.password), 3)


@require_binaries
class SaslBindTest(LdapBase):
    """sasl_bind = yes: SASL EXTERNAL over slapd's ldapi:// socket, where the
    identity is posternd's uid/gid; only that identity (not an anonymous
    session) may read userPassword."""

    ldapi = True

    def sasl_conf(self, mech):
        return ldap_conf(self.slapd, uris=self.slapd.ldapi_uri, dn="", dnpass="",
                         extra=f"sasl_bind = yes\nsasl_mech = {mech}\n")

    def test_external_bind_reads_passwords(self):
        d, sock = self.start_ldap(self.sasl_conf("EXTERNAL"), mechs=("PLAIN",))
        c = self.client(sock)
        req = 0
        for scheme in ("PLAIN", "SSHA"):
            with self.subTest(scheme=scheme):
                req = self.assert_right_and_wrong(c, req, self.user(scheme))
        self.assertNotIn("SASL", d.stderr())

    def test_refused_mechanism_is_temp_fail_with_a_clear_log_line(self):
        d, sock = self.start_ldap(self.sasl_conf("NO-SUCH-MECH"), userdb=False, mechs=("PLAIN",))
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_plain_fail(self.plain(c, 1, u.login, u.password), 1, temp=True)
        self.assertIn("SASL NO-SUCH-MECH bind", d.stderr())

    def test_sasl_bind_without_mechanism_is_a_config_error(self):
        self.assert_config_error(ldap_conf(self.slapd, extra="sasl_bind = yes\n"), "sasl_mech")


NEW_PASSWORD = "Ldap-New-Pa55-41d7"
register_secret(NEW_PASSWORD)


@require_binaries
class WriteTest(LdapBase):
    """postern user and rehash on login write userPassword as a service account."""

    def users_of(self, scheme):
        return [u for u in self.users if u.scheme == scheme and u.active and len(u.mails) == 1]

    def cli(self, conf, *args, password=None):
        return run_cli(["user", *args, "-c", conf], stdin_text=None if password is None else password + "\n")

    def cli_config(self, dn, dnpass):
        """A postern.conf whose passdb is the directory, as `postern user` reads it."""
        path = self.path("cli-ldap.conf.ext")
        write_file(path, ldap_conf(self.slapd, dn=dn, dnpass=dnpass))
        conf = self.path("cli.toml")
        write_file(conf, make_config(self.path("cli-auth"), None) +
                   f'[[passdb]]\ndriver = "ldap"\nargs = {toml_str(path)}\n')
        return conf

    def test_postern_user_passwd_show_list(self):
        u = self.users_of("SSHA")[0]
        conf = self.cli_config(WRITER_DN, WRITER_PW)
        d, sock = self.start_ldap(ldap_conf(self.slapd, dn=WRITER_DN, dnpass=WRITER_PW))
        c = self.client(sock)
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)
        r = self.cli(conf, "passwd", u.login, password=NEW_PASSWORD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        new = stored_password(self.slapd, u.login)
        register_secret(new)
        self.assertTrue(new.startswith("{CRYPT}$6$"), new[:12])   # the default scheme, as slapd reads it
        self.assertTrue(simple_bind_works(self.slapd, u.login, NEW_PASSWORD))
        self.assert_ok(self.plain(c, 2, u.login, NEW_PASSWORD), 2, u.login)
        self.assert_plain_fail(self.plain(c, 3, u.login, u.password), 3)
        r = self.cli(conf, "show", u.login)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"user: {u.login}", r.stdout)
        self.assertIn(f"dn: mail={u.login},", r.stdout)
        self.assertIn(f"home: /var/vmail/example.com/{u.uid}", r.stdout)
        self.assertNotIn("$6$", r.stdout)
        r = self.cli(conf, "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = r.stdout.split()
        self.assertIn(u.login, listed)
        # Every mail value is a name (Dovecot lists each): user007's alias too.
        self.assertEqual(len([x for x in listed if x.endswith("@example.com")]),
                         sum(len(x.mails) for x in self.users if x.active))
        self.assertEqual(self.cli(conf, "passwd", "nosuch@example.com", password=NEW_PASSWORD).returncode, 1)
        r = self.cli(conf, "del", u.login)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not delete directory entries", r.stderr)
        self.assertTrue(d.alive())

    def test_read_only_service_account_is_refused_clearly(self):
        u = self.users_of("SSHA")[1]
        conf = self.cli_config(SERVICE_DN, SERVICE_PW)
        r = self.cli(conf, "passwd", u.login, password=NEW_PASSWORD)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"the service account {SERVICE_DN}", r.stderr)
        self.assertIn("may not write userPassword", r.stderr)
        self.assertEqual(stored_password(self.slapd, u.login), u.stored)

    def test_rehash_on_login_from_ssha(self):
        u = self.users_of("SSHA")[2]
        d, sock = self.start_ldap(ldap_conf(self.slapd, dn=WRITER_DN, dnpass=WRITER_PW),
                                  extra_auth='rehash_scheme = "SHA512-CRYPT"')
        c = self.client(sock)
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)
        self.assertTrue(wait_until(lambda: stored_password(self.slapd, u.login).startswith("{CRYPT}$6$")),
                        d.stderr()[-2000:])
        register_secret(stored_password(self.slapd, u.login))
        self.assertTrue(simple_bind_works(self.slapd, u.login, u.password))
        # The same password still logs in; nothing is rewritten again.
        self.assert_ok(self.plain(c, 2, u.login, u.password), 2, u.login)
        self.assert_plain_fail(self.plain(c, 3, u.login, WRONG_PASSWORD), 3)
        time.sleep(0.5)
        self.assertEqual(d.stderr().count(f'rehashed user "{u.login}" from SSHA to SHA512-CRYPT'), 1,
                         d.stderr()[-2000:])

    def test_rehash_with_a_read_only_account_keeps_the_old_hash(self):
        u = self.users_of("SSHA")[3]
        d, sock = self.start_ldap(ldap_conf(self.slapd), extra_auth='rehash_scheme = "SHA512-CRYPT"')
        c = self.client(sock)
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)
        self.assertTrue(wait_until(lambda: "not written; the old hash stays" in d.stderr()), d.stderr()[-2000:])
        self.assertIn("may not write userPassword", d.stderr())
        self.assertEqual(stored_password(self.slapd, u.login), u.stored)
        self.assert_ok(self.plain(c, 2, u.login, u.password), 2, u.login)


@require_binaries
@unittest.skipUnless(DOVEADM, "doveadm not installed (apt-get install dovecot-core)")
class DoveadmUserdbTest(LdapBase):

    def doveadm(self, *args):
        return subprocess.run([DOVEADM, "-c", "/dev/null", "user", "-a", self.path("userdb"), *args],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_user_lookup(self):
        d, _ = self.start_ldap(ldap_conf(self.slapd))
        u = self.user("SSHA")
        p = self.doveadm(u.login)
        self.assertEqual(p.returncode, 0, p.stderr)
        fields = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                fields[parts[0]] = parts[-1]
        self.assertEqual(fields.get("uid", "").strip(), str(5000 + u.i), p.stdout)
        self.assertEqual(fields.get("gid", "").strip(), "5000", p.stdout)
        self.assertEqual(fields.get("home", "").strip(), f"/var/vmail/example.com/{u.uid}", p.stdout)
        self.assertEqual(fields.get("mail", "").strip(), f"maildir:/var/vmail/example.com/{u.uid}/Maildir", p.stdout)
        inactive = next(x for x in self.users if not x.active)
        p = self.doveadm(inactive.login)
        self.assertEqual(p.returncode, 67, p.stdout + p.stderr)   # EX_NOUSER
        self.assertIn("doesn't exist", p.stdout + p.stderr)
        # doveadm takes '*' as an iteration mask: hostile names go over the
        # protocol itself.
        for i, name in enumerate(HOSTILE, start=1):
            m = MasterClient(self.path("userdb"))
            self.addCleanup(m.close)
            m.master_handshake()
            m.send_line("USER", str(i), name, "service=doveadm")
            try:
                self.assertEqual(m.reply_for(i, timeout=10)[:2], ["NOTFOUND", str(i)], name[:40])
            except Closed:
                # Longer than the protocol's line limit: the server hangs up.
                self.assertGreater(len(name), 8192, name[:40])
        self.assertTrue(d.alive())

    def user_reply(self, login):
        """The userdb's USER reply for `login` over the master protocol."""
        m = MasterClient(self.path("userdb"))
        self.addCleanup(m.close)
        m.master_handshake()
        m.send_line("USER", "1", login, "service=doveadm")
        r = m.reply_for(1, timeout=10)
        self.assertEqual(r[0], "USER", r)
        return r

    def test_multi_valued_attributes(self):
        """As Dovecot: a userdb gid gets every value joined with ",", any other
        field the first value (with a warning), %{ldap_multi:...} all of them."""
        conf = ldap_conf(self.slapd).replace(
            "gidNumber=gid", "roomNumber=gid, mail=alias, =aliases=%{ldap_multi:mail:;}")
        d, _ = self.start_ldap(conf)
        u = next(x for x in self.users if len(x.mails) > 1)
        # The master protocol itself (doveadm prints a gid list as nothing).
        r = self.user_reply(u.login)
        self.assertIn(f"gid=5000,{6000 + u.i}", r)
        self.assertIn(f"alias={u.mails[0]}", r)
        self.assertIn("aliases=" + ";".join(u.mails), r)
        self.assertTrue(wait_until(lambda: "multiple values found for 'mail'" in d.stderr(), timeout=5),
                        d.stderr()[-2000:])

    def test_ldap_multi_joins_as_dovecot(self):
        """%{ldap_multi:attr[:sep[:default]]} as Dovecot 2.3.21's db-ldap reads it
        (its test-db-ldap.c vectors): a space unless a separator is given,
        "attr::" for ':', the default for an absent attribute. (Debian 12's
        Dovecot 2.3.19.1 has no ldap_multi: it expands to
        UNSUPPORTED_VARIABLE_ldap_multi, so there is nothing to compare with.)"""
        templates = {"m1": "%{ldap_multi:mail}", "m2": "%{ldap_multi:mail:;}", "m3": "%{ldap_multi:mail::}",
                     "m4": "%{ldap_multi:roomNumber:,}", "m5": "%{ldap_multi:description:;:none}",
                     "m6": "x%{ldap_multi:description}y", "m7": "%{ldap_multi:uidNumber:;}"}
        attrs = ", ".join(f"={k}={v}" for k, v in templates.items())
        self.start_ldap(ldap_conf(self.slapd).replace("homeDirectory=home,", f"homeDirectory=home, {attrs},"))
        u = next(x for x in self.users if len(x.mails) > 1)
        got = {k: v for k, v in fields_dict(self.user_reply(u.login)).items() if k in templates}
        self.assertEqual(got, {"m1": " ".join(u.mails), "m2": ";".join(u.mails), "m3": ":".join(u.mails),
                               "m4": f"5000,{6000 + u.i}", "m5": "none", "m6": "xy", "m7": str(5000 + u.i)})

    def test_iteration_is_paged_and_complete(self):
        self.start_ldap(ldap_conf(self.slapd))
        p = self.doveadm("*")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = set(p.stdout.split())
        want = {m for u in self.users if u.active for m in u.mails}
        self.assertEqual(got, want)
        self.assertEqual(len(want), 300)   # 299 active users, one of them with two mail values


@require_binaries
class OutageTest(LdapBase):

    def test_slapd_stopped_under_load(self):
        d, sock = self.start_ldap(ldap_conf(self.slapd), userdb=False, pool="pool_size = 4")
        good = [u for u in self.users if u.active and u.scheme in ("PLAIN", "SSHA") and len(u.mails) == 1][:20]
        stop = threading.Event()
        results = {"ok": 0, "fail": 0, "temp": 0, "wrong_ok": [], "lost": []}
        lock = threading.Lock()

        def worker(n):
            try:
                c = AuthClient(sock, timeout=15)
                c.handshake()
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    results["lost"].append(repr(e))
                return
            req = 0
            try:
                while not stop.is_set():
                    req += 1
                    u = good[(n + req) % len(good)]
                    wrong = req % 3 == 0
                    r = self.plain(c, req, u.login, WRONG_PASSWORD if wrong else u.password, timeout=15)
                    with lock:
                        if r[0] == "OK":
                            results["ok"] += 1
                            if wrong:
                                results["wrong_ok"].append(r)
                        elif "code=temp_fail" in r:
                            results["temp"] += 1
                        else:
                            results["fail"] += 1
            except Exception as e:  # noqa: BLE001 - a lost reply is the failure we look for
                with lock:
                    results["lost"].append(repr(e))
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            self.slapd.stop()
            time.sleep(2.0)
            self.slapd.start()
            restarted = time.monotonic()
            # Service is back within a second: reconnects are tried every 0.5 s.
            c = self.client(sock)
            u = good[0]
            back = None
            for i in range(1000, 1100):
                if self.plain(c, i, u.login, u.password)[0] == "OK":
                    back = time.monotonic() - restarted
                    break
                time.sleep(0.05)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            if self.slapd.proc is None or self.slapd.proc.poll() is not None:
                self.slapd.start()
        self.assertEqual(results["lost"], [])
        self.assertEqual(results["wrong_ok"], [])
        self.assertGreater(results["ok"], 0)
        self.assertGreater(results["temp"], 0, results)
        self.assertIsNotNone(back, "no successful login after slapd came back")
        self.assertLess(back, 1.0)
        log = d.stderr()
        self.assertIn("no server usable, answering temp-fail", log)
        self.assertRegex(log, r"connected to ldap://127\.0\.0\.1:\d+ again after")
        print(f"\n  ldap outage: {results['ok']} ok, {results['fail']} fail, {results['temp']} temp-fail, "
              f"back {back:.2f}s after slapd restarted")


    @contextlib.contextmanager
    def stalled_slapd(self):
        """posternd with one answered login, then slapd stopped (SIGSTOP)
        for the block: yields (daemon, client, user)."""
        d, sock = self.start_ldap(ldap_conf(self.slapd), userdb=False)
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)
        os.kill(self.slapd.proc.pid, signal.SIGSTOP)
        try:
            # The stop is delivered asynchronously: go on only once every
            # slapd thread is stopped.
            self.assertTrue(wait_stopped(self.slapd.proc.pid), "slapd did not stop on SIGSTOP")
            yield d, c, u
        finally:
            os.kill(self.slapd.proc.pid, signal.SIGCONT)

    def test_stalled_slapd_is_temp_fail_at_the_timeout(self):
        with self.stalled_slapd() as (d, c, u):
            started = time.monotonic()
            r = self.plain(c, 2, u.login, u.password, timeout=20)
            waited = time.monotonic() - started
        if r[:1] != ["FAIL"]:
            self.fail(f"answered {r} while slapd was stopped; posternd's log:\n{d.stderr()[-3000:]}")
        self.assert_plain_fail(r, 2, temp=True)
        self.assertLess(waited, 15.0)      # the passdb's timeout is 3 s
        self.assertIn("timed out", d.stderr())
        # The next request gets a fresh connection and an answer.
        deadline = time.monotonic() + 10
        while True:
            r = self.plain(c, 3, u.login, u.password)
            if r[0] == "OK" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assert_ok(r, 3, u.login)

    def test_stopping_with_a_search_outstanding_exits_cleanly(self):
        # posternd told to stop while a request waits for slapd: the
        # request's coroutine is destroyed unfinished, and closing the
        # connection afterwards must not touch it (the sanitizer build
        # reports any use of its freed frame; the harness fails on that).
        with self.stalled_slapd() as (d, c, u):
            c.auth_plain(2, u.login, u.password)
            time.sleep(0.5)                  # well inside the passdb's 3 s timeout
            self.assertTrue(d.alive())
            self.assertEqual(d.stop(), 0, d.stderr()[-3000:])


@require_binaries
class TlsTest(LdapBase):
    tls = True

    def test_starttls(self):
        conf = ldap_conf(self.slapd, extra=f"tls = yes\ntls_ca_cert_file = {self.ca[0]}\ntls_require_cert = demand\n")
        d, sock = self.start_ldap(conf, userdb=False, mechs=("PLAIN",))
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)

    def test_ldaps(self):
        conf = ldap_conf(self.slapd, uris=self.slapd.ldaps_uri,
                         extra=f"tls_ca_cert_file = {self.ca[0]}\ntls_require_cert = demand\n")
        d, sock = self.start_ldap(conf, userdb=False, mechs=("PLAIN",))
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_ok(self.plain(c, 1, u.login, u.password), 1, u.login)

    def test_untrusted_certificate_is_temp_fail(self):
        # Another CA: the server's certificate cannot be verified.
        other = self.path("other-ca")
        os.makedirs(other)
        other_ca = make_ca(other)[0]
        conf = ldap_conf(self.slapd, uris=self.slapd.ldaps_uri,
                         extra=f"tls_ca_cert_file = {other_ca}\ntls_require_cert = demand\n")
        d, sock = self.start_ldap(conf, userdb=False, mechs=("PLAIN",))
        c = self.client(sock)
        u = self.user("SSHA")
        self.assert_plain_fail(self.plain(c, 1, u.login, u.password), 1, temp=True)


@require_binaries
@unittest.skipIf(postfix_missing() or slapd_missing(), postfix_missing() or slapd_missing() or "")
class PostfixLdapTest(PostfixTestCase):
    """Postfix + swaks through posternd's ldap passdb: lookup mode on the
    plain smtpd, bind mode on a second smtpd with its own posternd."""

    tmp_prefix = "postern-it-pf-ldap-"

    @classmethod
    def prepare(cls):
        cls.users = make_users(n=20, argon2_count=1)
        cls.slapd = Slapd(cls.tmp, cls.users)
        cls.addClassCleanup(cls.slapd.stop)
        cls.slapd.start()
        cls.bind_port = free_tcp_port()
        cls.bind_socket = os.path.join(cls.pf.private, "auth-bind")
        cls.pf.add_smtpd(cls.bind_port, smtpd_sasl_path="private/auth-bind")

    @classmethod
    def make_daemons(cls):
        daemons = []
        for name, sock, bind in (("lookup", cls.pf.auth_socket, False), ("bind", cls.bind_socket, True)):
            conf = os.path.join(cls.tmp, f"dovecot-ldap-{name}.conf.ext")
            write_file(conf, ldap_conf(cls.slapd, auth_bind=bind))
            text = "\n".join([
                "[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0",
                'mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5"]', "", "[penalty]", "enabled = false", "",
                "[[listener]]", 'type = "unix"', f"path = {toml_str(sock)}", 'mode = "0666"',
                'role = "client"', "",
                "[[passdb]]", 'driver = "ldap"', f"args = {toml_str(conf)}", ""])
            daemons.append(Daemon(cls.tmp, text, name=f"posternd-{name}"))
        return daemons

    def test_lookup_mode(self):
        port = self.pf.smtp_port
        for scheme in ("PLAIN", "SSHA", "CRYPT", "ARGON2ID"):
            u = next(x for x in self.users if x.scheme == scheme and x.active)
            self.assert_reply(self.auth("PLAIN", u.login, u.password, port), 235)
        u = next(x for x in self.users if x.scheme == "PLAIN" and x.active)
        self.assert_reply(self.auth("LOGIN", u.login, u.password, port), 235)
        self.assert_reply(self.auth("CRAM-MD5", u.login, u.password, port), 235)
        self.assert_reply(self.auth("PLAIN", u.login, WRONG_PASSWORD, port), 535)
        self.assert_reply(self.auth("PLAIN", "*)(uid=*", u.password, port), 535)
        self.assertIn("result=ok", self.daemons[0].stderr())

    def test_bind_mode(self):
        port = self.bind_port
        for scheme in ("PLAIN", "SSHA", "CRYPT"):
            u = next(x for x in self.users if x.scheme == scheme and x.active)
            self.assert_reply(self.auth("PLAIN", u.login, u.password, port), 235)
        self.assert_reply(self.auth("LOGIN", u.login, u.password, port), 235)
        self.assert_reply(self.auth("PLAIN", u.login, WRONG_PASSWORD, port), 535)
        self.assert_reply(self.auth("PLAIN", "*)(uid=*", u.password, port), 535)
        # The second smtpd asked the bind-mode daemon.
        self.assertIn("result=ok", self.daemons[1].stderr())
        self.assertIn("(auth binds)", self.daemons[1].stderr())


if __name__ == "__main__":
    unittest.main()
