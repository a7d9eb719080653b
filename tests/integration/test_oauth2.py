# OAUTHBEARER and XOAUTH2 with [oauth2] network token checks, against
# http_support.PanelServer standing in for an identity provider (Keycloak,
# Authentik and the like: none runs on this machine): RFC 7662 introspection,
# OpenID Connect userinfo, and a JWK Set fetched from its URL through the
# discovery document, rotated, refreshed on its max-age, kept while the
# provider is down, fetched at most once per jwks_min_refresh for a flood of
# unknown kids. The provider counts its requests, so a cache hit shows as no
# request. Then Python's smtplib as an OAUTHBEARER / XOAUTH2 client through a
# private Postfix pointed at posternd.

import base64
import json
import os
import smtplib
import time
import unittest

from harness import DaemonTestCase, b64, make_config, register_secret, require_binaries, toml_str, unb64, write_file
from http_support import PanelServer, RsaKey
from postfix_support import PostfixTestCase, postfix_missing

USER = "alice@example.com"
ERROR_JSON = {"status": "invalid_token", "schemes": "bearer"}


def bearer(token, authzid=""):
    a = f"a={authzid}" if authzid else ""
    return f"n,{a},\x01host=localhost\x01port=993\x01auth=Bearer {token}\x01\x01"


def xoauth2(token, user):
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def is_temp_fail(fields):
    return fields[0] == "FAIL" and "code=temp_fail" in fields[2:]


class IdpMixin:
    """A stand-in provider with three opaque tokens and an [oauth2] section."""

    def start_idp(self):
        self.idp = PanelServer({}).start()
        self.addCleanup(self.idp.stop)
        self.base = self.idp.url.replace("/api/auth", "/realms/mail")
        now = int(time.time())
        self.good, self.revoked, self.expired = "tok-good-81c4", "tok-revoked-2d7e", "tok-expired-5a90"
        for t in (self.good, self.revoked, self.expired):
            register_secret(t)
        self.idp.tokens = {self.good: {"user": USER, "exp": now + 600},
                           self.revoked: {"user": USER, "exp": now + 600, "revoked": True},
                           self.expired: {"user": USER, "exp": now - 10}}

    def start_posternd(self, oauth2_lines, mechanisms=("OAUTHBEARER", "XOAUTH2")):
        self.sock = self.path("auth")
        users = self.path("users")  # a passdb must be configured; tokens never reach it
        write_file(users, "")
        extra = "\n[oauth2]\n" + oauth2_lines + 'timeout = "1s"\n'
        self.start_daemon(make_config(self.sock, users, mechanisms=mechanisms, extra=extra))

    def oauthbearer(self, token, req_id=1, authzid=""):
        """OK/FAIL fields; a refusal's error challenge is checked and acknowledged."""
        c = self.connect(self.sock)
        c.auth(req_id, "OAUTHBEARER", resp=b64(bearer(token, authzid)))
        r = c.reply_for(req_id)
        if r[0] == "CONT":
            self.assertEqual(json.loads(unb64(r[2])), ERROR_JSON, r)
            c.send_line("CONT", str(req_id), b64("\x01"))
            r = c.reply_for(req_id)
            self.assertFalse(is_temp_fail(r), r)
        return r

    def introspected(self, token):
        return sum(1 for q in self.idp.requests if q.get("introspect") == token)


@require_binaries
class IntrospectionTest(IdpMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.start_idp()
        secret = self.path("client.secret")
        write_file(secret, self.idp.client_secret + "\n", mode=0o600)
        self.start_posternd(f"introspection_url = {toml_str(self.base + '/introspect')}\n"
                            f'client_id = "postern"\nclient_secret_file = {toml_str(secret)}\n'
                            'username_claim = "username"\ncache_ttl = "60s"\n')

    def test_active_inactive_expired_cached(self):
        self.assert_ok(self.oauthbearer(self.good), 1, USER)
        self.assertEqual(self.introspected(self.good), 1)
        # Revoked ("active": false) and expired: the RFC 7628 error, then FAIL.
        self.assert_fail(self.oauthbearer(self.revoked, 2), 2)
        self.assert_fail(self.oauthbearer(self.expired, 3), 3)
        # The token names alice; asking for bob is refused.
        self.assert_fail(self.oauthbearer(self.good, 4, authzid="bob@example.com"), 4)
        # XOAUTH2 with the same token: answered from the cache, no request.
        c = self.connect(self.sock)
        c.auth(5, "XOAUTH2", resp=b64(xoauth2(self.good, USER)))
        self.assert_ok(c.reply_for(5), 5, USER)
        self.assertEqual(self.introspected(self.good), 1, self.idp.requests)
        # The cache key is a hash: the token never shows in the daemon's log.
        self.assertNotIn(self.good, self.daemons[0].stderr())

    def test_provider_down_is_temp_fail(self):
        self.idp.behaviour = "500"
        fresh = "tok-fresh-0e11"
        register_secret(fresh)
        self.idp.tokens[fresh] = {"user": USER, "exp": int(time.time()) + 600}
        r = self.oauthbearer(fresh)
        self.assertTrue(is_temp_fail(r), r)
        self.idp.stop()  # gone altogether: still a temporary failure
        r = self.oauthbearer(fresh, 2)
        self.assertTrue(is_temp_fail(r), r)


@require_binaries
class UserinfoTest(IdpMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.start_idp()
        self.start_posternd(f"userinfo_url = {toml_str(self.base + '/userinfo')}\n"
                            'username_claim = "email"\ncache_ttl = "60s"\n')

    def test_userinfo(self):
        self.assert_ok(self.oauthbearer(self.good), 1, USER)
        for i, tok in enumerate((self.revoked, self.expired, "tok-unknown-7f7f"), 2):
            self.assert_fail(self.oauthbearer(tok, i), i)
        asked = len(self.idp.gets)
        self.assert_ok(self.oauthbearer(self.good, 9), 9, USER)
        self.assertEqual(len(self.idp.gets), asked, "a cached answer asks the provider again")
        self.idp.behaviour = "500"
        r = self.oauthbearer("tok-other-1a1a", 10)
        self.assertTrue(is_temp_fail(r), r)


@require_binaries
class JwksTest(IdpMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.start_idp()
        self.k1, self.k2 = RsaKey(self.tmp, "k1"), RsaKey(self.tmp, "k2")
        self.idp.jwks = [self.k1]
        self.idp.jwks_max_age = 3
        self.start_posternd(f"discovery_url = {toml_str(self.base + '/.well-known/openid-configuration')}\n"
                            f"issuer = {toml_str(self.base)}\naudience = \"mail\"\nusername_claim = \"email\"\n"
                            'jwks_ttl = "1h"\njwks_min_refresh = "1s"\n')

    def claims(self, **over):
        c = {"iss": self.base, "aud": "mail", "email": USER, "exp": int(time.time()) + 600}
        c.update(over)
        return c

    def fetches(self):
        return sum(1 for p in self.idp.gets if p.endswith("/certs"))

    def test_fetch_rotate_down_and_flood(self):
        self.assert_ok(self.oauthbearer(self.k1.token(self.claims())), 1, USER)
        self.assertEqual(self.fetches(), 1)
        self.assertTrue(any(p.endswith("/openid-configuration") for p in self.idp.gets))
        # Bad tokens against the fetched set: no fetch (their kid is known).
        self.assert_fail(self.oauthbearer(self.k1.token(self.claims(aud="other")), 2), 2)
        self.assert_fail(self.oauthbearer(self.k1.token(self.claims(exp=int(time.time()) - 100)), 3), 3)
        self.assertEqual(self.fetches(), 1)
        # Rotation: the provider now signs with k2; an unknown kid fetches the set again.
        time.sleep(1.1)
        self.idp.jwks = [self.k2]
        self.assert_ok(self.oauthbearer(self.k2.token(self.claims()), 4), 4, USER)
        self.assertEqual(self.fetches(), 2)
        # A flood of made-up kids within jwks_min_refresh: at most one more fetch, all refused.
        for i in range(10, 30):
            self.assert_fail(self.oauthbearer(self.k2.token(self.claims(), kid=f"made-up-{i}"), i), i)
        self.assertLessEqual(self.fetches(), 3)
        # The provider goes down: the last good set stays; the set's max-age (3 s) passes.
        self.idp.behaviour = "500"
        time.sleep(3.2)
        self.assert_ok(self.oauthbearer(self.k2.token(self.claims()), 40), 40, USER)
        # A kid the kept set lacks while the set cannot be fetched: temporary.
        time.sleep(1.1)
        r = self.oauthbearer(self.k1.token(self.claims()), 41)
        self.assertTrue(is_temp_fail(r), r)
        self.idp.behaviour = None

    def test_max_age_refresh(self):
        self.assert_ok(self.oauthbearer(self.k1.token(self.claims())), 1, USER)
        self.assertEqual(self.fetches(), 1)
        time.sleep(3.2)  # Cache-Control: max-age=3
        self.assert_ok(self.oauthbearer(self.k1.token(self.claims()), 2), 2, USER)
        self.assertEqual(self.fetches(), 2)

    def test_alg_none_and_hs256_against_rsa(self):
        head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=").decode()
        body = base64.urlsafe_b64encode(json.dumps(self.claims()).encode()).rstrip(b"=").decode()
        self.assert_fail(self.oauthbearer(f"{head}.{body}."), 1)
        import hmac
        head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).rstrip(b"=").decode()
        sig = hmac.new(json.dumps(self.k1.jwk()).encode(), f"{head}.{body}".encode(), "sha256").digest()
        tok = f"{head}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        self.assert_fail(self.oauthbearer(tok, 2), 2)


def smtp_oauth(port, mech, token, user):
    """(code, text) of an AUTH through smtplib with a custom authobject."""
    state = {"n": 0}

    def authobject(challenge=None):
        state["n"] += 1
        if state["n"] > 1:  # the error JSON challenge: acknowledged (RFC 7628 §3.2.3)
            return "\x01" if mech == "OAUTHBEARER" else ""
        return bearer(token, user) if mech == "OAUTHBEARER" else xoauth2(token, user)

    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    try:
        s.ehlo("client.example")
        try:
            code, text = s.auth(mech, authobject)
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


@require_binaries
@unittest.skipIf(postfix_missing(), postfix_missing() or "")
class OAuthPostfixTest(PostfixTestCase):
    """Python's smtplib as an OAUTHBEARER / XOAUTH2 client through a private
    Postfix (smtpd_sasl_type = dovecot) and posternd with introspection."""

    tmp_prefix = "postern-it-oauthpf-"

    @classmethod
    def prepare(cls):
        cls.idp = PanelServer({}).start()
        cls.addClassCleanup(cls.idp.stop)
        cls.good, cls.revoked = "tok-smtp-good-41d2", "tok-smtp-revoked-8e33"
        for t in (cls.good, cls.revoked):
            register_secret(t)
        now = int(time.time())
        cls.idp.tokens = {cls.good: {"user": USER, "exp": now + 600},
                          cls.revoked: {"user": USER, "exp": now + 600, "revoked": True}}

    @classmethod
    def daemon_config(cls):
        secret = os.path.join(cls.tmp, "client.secret")
        write_file(secret, cls.idp.client_secret + "\n", mode=0o600)
        users = os.path.join(cls.tmp, "users")
        write_file(users, "")
        url = cls.idp.url.replace("/api/auth", "/realms/mail/introspect")
        return "\n".join([
            "[log]", 'level = "debug"', "", "[auth]", 'mechanisms = ["PLAIN", "OAUTHBEARER", "XOAUTH2"]',
            "failure_delay = 0", "", "[penalty]", "enabled = false", "",
            "[[listener]]", 'type = "unix"', f"path = {toml_str(cls.pf.auth_socket)}",
            'mode = "0666"', 'role = "client"', "",
            "[oauth2]", f"introspection_url = {toml_str(url)}", 'client_id = "postern"',
            f"client_secret_file = {toml_str(secret)}", 'username_claim = "username"', 'timeout = "1s"', "",
            "[[passdb]]", 'driver = "passwd-file"', f"path = {toml_str(users)}", ""])

    def test_smtplib_oauthbearer_xoauth2(self):
        port = self.pf.smtp_port
        self.assertEqual(smtp_oauth(port, "OAUTHBEARER", self.good, USER)[0], 235)
        self.assertEqual(smtp_oauth(port, "XOAUTH2", self.good, USER)[0], 235)
        self.assertEqual(smtp_oauth(port, "OAUTHBEARER", self.revoked, USER)[0], 535)
        self.assertEqual(smtp_oauth(port, "XOAUTH2", self.revoked, USER)[0], 535)
        self.assertEqual(smtp_oauth(port, "OAUTHBEARER", self.good, "bob@example.com")[0], 535)


if __name__ == "__main__":
    unittest.main()
