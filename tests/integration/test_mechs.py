# The challenge-response and token mechanisms of posternd over a real socket
# (CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1/256, EXTERNAL, ANONYMOUS, OAUTHBEARER,
# XOAUTH2, master users), with a SCRAM client written here (RFC 5802) and its
# hostile variants; then real gsasl and swaks as SMTP clients through a
# private Postfix instance.

import atexit
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (ALICE_PASSWORD, MASTER_PASSWORD, SCRAM_PASSWORD, WRONG_PASSWORD, AuthClient,
                     Daemon, DaemonTestCase, ScramClient, b64, fields_dict, make_config,
                     passwd_line, plain_payload, require_binaries, toml_str, unb64, write_file)
from postfix_support import PostfixTestCase, postfix_missing

ALL_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
             "EXTERNAL", "ANONYMOUS", "OAUTHBEARER", "XOAUTH2")
OAUTH_SECRET = "postern-test-hs256-secret-0123456789abcdef"
ISSUER = "https://idp.postern-test.invalid"
AUDIENCE = "postern-test"
GSASL = shutil.which("gsasl")


def scram_stored(hashname, password, salt, iterations=4096):
    salted = hashlib.pbkdf2_hmac(hashname, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashname).digest()
    server_key = hmac.new(salted, b"Server Key", hashname).digest()
    return (f"{iterations},{b64(salt)},{b64(hashlib.new(hashname, client_key).digest())},"
            f"{b64(server_key)}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_hs256(claims, secret=OAUTH_SECRET):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), "sha256").digest()
    return f"{head}.{body}.{b64url(sig)}"


_rsa_dir = None


def rsa_key():
    """(private key path, public key path) of an RSA key made once per run
    with the openssl CLI, or None when openssl is missing."""
    global _rsa_dir
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    if _rsa_dir is None:
        _rsa_dir = tempfile.mkdtemp(prefix="postern-it-rsa-")
        atexit.register(shutil.rmtree, _rsa_dir, ignore_errors=True)
        priv, pub = os.path.join(_rsa_dir, "priv.pem"), os.path.join(_rsa_dir, "pub.pem")
        subprocess.run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", priv], check=True, capture_output=True, timeout=60)
        subprocess.run([openssl, "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                       capture_output=True, timeout=60)
    return os.path.join(_rsa_dir, "priv.pem"), os.path.join(_rsa_dir, "pub.pem")


def jwt_rs256(claims, kid="rsa1"):
    priv, _ = rsa_key()
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = subprocess.run([shutil.which("openssl"), "dgst", "-sha256", "-sign", priv],
                         input=f"{head}.{body}".encode(), capture_output=True, check=True,
                         timeout=60).stdout
    return f"{head}.{body}.{b64url(sig)}"


def good_claims(**over):
    claims = {"iss": ISSUER, "aud": AUDIENCE, "email": "alice", "exp": int(time.time()) + 600}
    claims.update(over)
    return claims


@require_binaries
class MechanismProtocolTest(DaemonTestCase):
    """Every mechanism on one daemon, driven line by line."""

    def setUp(self):
        super().setUp()
        self.users = self.path("users")
        salt = b"carol-fixed-salt"
        huge = ("4000000000," + b64(b"s" * 16) + "," + b64(b"k" * 32) + "," + b64(b"k" * 32))
        write_file(self.users,
                   passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("carol", "{SCRAM-SHA-256}" +
                               scram_stored("sha256", SCRAM_PASSWORD, salt)) +
                   passwd_line("evil", "{SCRAM-SHA-256}" + huge))
        masters = self.path("masters")
        write_file(masters, passwd_line("admin", "{PLAIN}" + MASTER_PASSWORD))
        keyfile = self.path("oauth.key")
        write_file(keyfile, OAUTH_SECRET + "\n")
        extra = (f"\n[oauth2]\nissuer = {toml_str(ISSUER)}\naudience = {toml_str(AUDIENCE)}\n"
                 f'username_claim = "email"\n[[oauth2.key]]\nalg = "HS256"\n'
                 f"file = {toml_str(keyfile)}\n"
                 + (f'[[oauth2.key]]\nalg = "RS256"\nkid = "rsa1"\nfile = {toml_str(rsa_key()[1])}\n'
                    if rsa_key() else "") +
                 f'[[master_passdb]]\ndriver = "passwd-file"\npath = {toml_str(masters)}\n')
        config = make_config(self.path("auth"), self.users, mechanisms=ALL_MECHS, extra=extra)
        config = config.replace("[auth]\n", '[auth]\nanonymous_user = "guest"\n'
                                'master_user_separator = "*"\n', 1)
        self.daemon = self.start_daemon(config)
        self.sock = self.path("auth")

    def client(self):
        return self.connect(self.sock)

    def cont(self, c, req_id, data):
        c.send_line("CONT", str(req_id), b64(data) if data is not None else "")
        return c.reply_for(req_id)

    def expect_cont(self, fields, req_id):
        self.assertEqual(fields[:2], ["CONT", str(req_id)], fields)
        return unb64(fields[2]).decode("utf-8", "replace") if len(fields) > 2 else ""

    def scram(self, mech, user, password, req_id=1, c=None, **kw):
        """A whole SCRAM exchange; returns (final reply fields, client, server-first)."""
        c = c or self.client()
        sc = ScramClient(mech, user, password, **kw)
        c.auth(req_id, mech, resp=b64(sc.first()))
        server_first = self.expect_cont(c.reply_for(req_id), req_id)
        reply = self.cont(c, req_id, sc.final(server_first))
        return reply, sc, server_first

    def log_waits_for(self, pattern, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.daemon.stderr()):
                return True
            time.sleep(0.05)
        return False

    # --- handshake ---

    def test_mech_lines_and_flags(self):
        with AuthClient(self.sock) as c:
            lines = [l for l in c.read_handshake() if l.startswith("MECH\t")]
        self.assertEqual(lines, [
            "MECH\tPLAIN\tplaintext", "MECH\tLOGIN\tplaintext",
            "MECH\tCRAM-MD5\tdictionary\tactive",
            "MECH\tDIGEST-MD5\tdictionary\tactive\tmutual-auth",
            "MECH\tSCRAM-SHA-1\tmutual-auth", "MECH\tSCRAM-SHA-256\tmutual-auth",
            "MECH\tEXTERNAL", "MECH\tANONYMOUS\tanonymous",
            "MECH\tOAUTHBEARER\tplaintext", "MECH\tXOAUTH2\tplaintext"])

    # --- SCRAM ---

    def scram_ok(self, mech, user, password):
        c = self.client()
        reply, sc, _ = self.scram(mech, user, password, c=c)
        self.assertEqual(self.expect_cont(reply, 1), sc.expected_v)
        ok = self.cont(c, 1, "")
        self.assert_ok(ok, 1, user)
        return c

    def test_scram_success_ok_line(self):
        for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
            with self.subTest(mech=mech):
                self.scram_ok(mech, "alice", ALICE_PASSWORD)
        # carol's stored SCRAM-SHA-256 keys: her salt, 4096 iterations.
        c = self.client()
        reply, sc, first = self.scram("SCRAM-SHA-256", "carol", SCRAM_PASSWORD, c=c)
        self.assertIn(",s=" + b64(b"carol-fixed-salt") + ",i=4096", first)
        self.assertEqual(self.expect_cont(reply, 1), sc.expected_v)
        self.assert_ok(self.cont(c, 1, ""), 1, "carol")

    def test_scram_final_data_in_ok_for_minor_2(self):
        c = self.connect(self.sock, minor=2)
        sc = ScramClient("SCRAM-SHA-256", "alice", ALICE_PASSWORD)
        c.auth(1, "SCRAM-SHA-256", "final-resp-ok", resp=b64(sc.first()))
        first = self.expect_cont(c.reply_for(1), 1)
        ok = self.cont(c, 1, sc.final(first))
        self.assert_ok(ok, 1, "alice")
        self.assertEqual(unb64(fields_dict(ok)["resp"]).decode(), sc.expected_v)

    def test_scram_wrong_password_and_unknown_user_take_the_same_path(self):
        c = self.client()
        shapes = []
        for req_id, user in ((1, "alice"), (2, "nosuchuser"), (3, "nosuchuser")):
            reply, _, first = self.scram("SCRAM-SHA-256", user, WRONG_PASSWORD, req_id, c)
            self.assert_fail(reply, req_id)
            shapes.append(re.sub(r"[A-Za-z0-9+/=]+", "x", first))
            if req_id == 2:
                unknown_first = first
            if req_id == 3:
                # The fake salt is stable per name, like a stored one.
                self.assertEqual(first.split(",")[1:], unknown_first.split(",")[1:])
        self.assertEqual(len(set(shapes)), 1, shapes)
        # A password-derived credential (alice is {PLAIN}) shows one salt per
        # name too, so salts do not tell stored from derived from unknown.
        firsts = [self.scram("SCRAM-SHA-256", "alice", WRONG_PASSWORD, i, c)[2] for i in (4, 5)]
        self.assertEqual(firsts[0].split(",")[1:], firsts[1].split(",")[1:])
        self.assertTrue(self.log_waits_for(r"result=fail user=\"nosuchuser\".*mech=SCRAM-SHA-256 "
                                           r"reason=unknown_user"), self.daemon.stderr())
        self.assertTrue(self.log_waits_for(r"result=fail user=\"alice\".*reason=password_mismatch"))

    def test_scram_hostile_clients(self):
        mech = "SCRAM-SHA-256"
        c = self.client()
        # Replay: a valid client-final of one exchange sent in the next.
        sc = ScramClient(mech, "alice", ALICE_PASSWORD)
        c.auth(1, mech, resp=b64(sc.first()))
        final1 = sc.final(self.expect_cont(c.reply_for(1), 1))
        self.expect_cont(self.cont(c, 1, final1), 1)
        self.assert_ok(self.cont(c, 1, ""), 1, "alice")
        c.auth(2, mech, resp=b64(sc.first()))
        self.expect_cont(c.reply_for(2), 2)
        self.assert_fail(self.cont(c, 2, final1), 2)
        # Reordered: the final message first.
        c.auth(3, mech, resp=b64(final1))
        self.assert_fail(c.reply_for(3), 3)
        # Truncated client-first and client-final.
        c.auth(4, mech, resp=b64(sc.first()[:6]))
        self.assert_fail(c.reply_for(4), 4)
        c.auth(5, mech, resp=b64(sc.first()))
        first = self.expect_cont(c.reply_for(5), 5)
        self.assert_fail(self.cont(c, 5, sc.final(first)[:-10]), 5)
        # Wrong proof.
        c.auth(6, mech, resp=b64(sc.first()))
        first = self.expect_cont(c.reply_for(6), 6)
        good = sc.final(first)
        bad_proof = b64(bytes(32))
        self.assert_fail(self.cont(c, 6, good[:good.rindex(",p=")] + ",p=" + bad_proof), 6)
        # Channel binding that was never offered.
        c.auth(7, mech, resp=b64("p=tls-unique,,n=alice,r=abc"))
        self.assert_fail(c.reply_for(7), 7)
        # Invalid UTF-8 in the user name.
        c.auth(8, mech, resp=b64(b"n,,n=\xff\xfe,r=abc"))
        self.assert_fail(c.reply_for(8), 8)
        # Authzid naming someone else.
        c.auth(9, mech, resp=b64("n,a=carol,n=alice,r=abc"))
        self.assert_fail(c.reply_for(9), 9)
        # The connection still works.
        reply, sc2, _ = self.scram(mech, "alice", ALICE_PASSWORD, 10, c)
        self.assertEqual(self.expect_cont(reply, 10), sc2.expected_v)
        # Anything but an empty answer to the server-final message fails.
        self.assert_fail(self.cont(c, 10, "unexpected"), 10)
        reply, sc3, _ = self.scram(mech, "alice", ALICE_PASSWORD, 11, c)
        self.assertEqual(self.expect_cont(reply, 11), sc3.expected_v)
        self.assert_ok(self.cont(c, 11, ""), 11, "alice")

    def test_scram_huge_iteration_count_refused(self):
        c = self.client()
        sc = ScramClient("SCRAM-SHA-256", "evil", "whatever")
        c.auth(1, "SCRAM-SHA-256", resp=b64(sc.first()))
        # No server-first that would make the client run 4e9 iterations.
        self.assert_fail(c.reply_for(1), 1)
        self.assertTrue(self.log_waits_for(r"reason=mechanism_unavailable detail=\"stored iteration "
                                           r"count 4000000000"), self.daemon.stderr())

    # --- bad input common to every mechanism ---

    def challenge_mechs(self):
        """Mechanisms that answer AUTH without data with a challenge."""
        return ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
                "EXTERNAL", "ANONYMOUS", "OAUTHBEARER", "XOAUTH2"]

    def test_abort_from_the_client(self):
        c = self.client()
        for i, mech in enumerate(self.challenge_mechs(), start=1):
            with self.subTest(mech=mech):
                c.auth(i, mech)
                self.expect_cont(c.reply_for(i), i)
                c.send_line("CONT", str(i), "*")
                self.assert_fail(c.reply_for(i), i)

    def test_invalid_base64(self):
        c = self.client()
        for i, mech in enumerate(self.challenge_mechs(), start=1):
            with self.subTest(mech=mech):
                c.auth(i, mech)
                self.expect_cont(c.reply_for(i), i)
                c.send_line("CONT", str(i), "not*base64!")
                reply = c.reply_for(i)
                self.assert_fail(reply, i)
                self.assertEqual(fields_dict(reply).get("code"), "invalid_base64", reply)
                c.auth(100 + i, mech, resp="%%%")
                reply = c.reply_for(100 + i)
                self.assert_fail(reply, 100 + i)
                self.assertEqual(fields_dict(reply).get("code"), "invalid_base64", reply)

    def test_second_cont_after_the_end(self):
        c = self.client()
        c.auth(1, "CRAM-MD5")
        challenge = self.expect_cont(c.reply_for(1), 1)
        digest = hmac.new(ALICE_PASSWORD.encode(), challenge.encode(), "md5").hexdigest()
        self.assert_ok(self.cont(c, 1, f"alice {digest}"), 1, "alice")
        self.assert_fail(self.cont(c, 1, f"alice {digest}"), 1)
        # And a second CONT while the server has not asked for one.
        c.auth(2, "SCRAM-SHA-1", resp=b64(ScramClient("SCRAM-SHA-1", "alice", "x").first()))
        self.expect_cont(c.reply_for(2), 2)
        c.send_line("CONT", "2", b64("c=biws,r=x,p=AAAA"))
        c.send_line("CONT", "2", b64("c=biws,r=x,p=AAAA"))
        replies = [c.reply_for(2), c.reply_for(2)]
        self.assertEqual(sorted(r[0] for r in replies), ["FAIL", "FAIL"], replies)

    def test_message_before_the_challenge(self):
        c = self.client()
        for i, (mech, data) in enumerate((("CRAM-MD5", "alice " + "0" * 32),
                                          ("DIGEST-MD5", 'username="alice",nonce="x"')), start=1):
            with self.subTest(mech=mech):
                c.auth(i, mech, resp=b64(data))
                self.assert_fail(c.reply_for(i), i)

    def test_oversized_messages(self):
        c = self.client()
        for i, mech in enumerate(("CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256", "OAUTHBEARER"),
                                 start=1):
            with self.subTest(mech=mech):
                c.auth(i, mech)
                self.expect_cont(c.reply_for(i), i)
                self.assert_fail(self.cont(c, i, "a" * 9000), i)

    def test_invalid_utf8_user_names(self):
        c = self.client()
        c.auth(1, "CRAM-MD5")
        self.expect_cont(c.reply_for(1), 1)
        c.send_line("CONT", "1", b64(b"\xff\xfe " + b"0" * 32))
        self.assert_fail(c.reply_for(1), 1)
        c.auth(2, "ANONYMOUS", resp=b64(b"\xc3"))
        self.assert_fail(c.reply_for(2), 2)
        c.auth(3, "EXTERNAL", "valid-client-cert", "cert_username=alice", resp=b64(b"\xed\xa0\x80"))
        self.assert_fail(c.reply_for(3), 3)
        self.assertTrue(self.log_waits_for(r"mech=CRAM-MD5 reason=malformed"), self.daemon.stderr())
        # A name with a control byte can never be a user: the exchange still
        # runs to the proof, like an unknown user.
        reply, _, first = self.scram("SCRAM-SHA-256", "ev\x01il", WRONG_PASSWORD, 4, c)
        self.assertIn(",i=4096", first)
        self.assert_fail(reply, 4)
        self.assertNotIn("user=", "\t".join(reply[2:]))
        self.assertTrue(self.log_waits_for(r"mech=SCRAM-SHA-256 reason=invalid_username"),
                        self.daemon.stderr())

    # --- CRAM-MD5 ---

    def test_cram_md5(self):
        c = self.client()
        seen = set()
        for req_id, user, password, ok in ((1, "alice", ALICE_PASSWORD, True),
                                           (2, "alice", WRONG_PASSWORD, False),
                                           (3, "nosuchuser", WRONG_PASSWORD, False)):
            c.auth(req_id, "CRAM-MD5")
            challenge = self.expect_cont(c.reply_for(req_id), req_id)
            self.assertRegex(challenge, r"^<[0-9a-f]{32}\.\d+@[^>]+>$")
            seen.add(challenge)
            digest = hmac.new(password.encode(), challenge.encode(), "md5").hexdigest()
            reply = self.cont(c, req_id, f"{user} {digest}")
            if ok:
                self.assert_ok(reply, req_id, user)
            else:
                self.assert_fail(reply, req_id)
        self.assertEqual(len(seen), 3)
        # A stored SCRAM-only user cannot do CRAM-MD5: clean failure, logged.
        c.auth(4, "CRAM-MD5")
        challenge = self.expect_cont(c.reply_for(4), 4)
        digest = hmac.new(SCRAM_PASSWORD.encode(), challenge.encode(), "md5").hexdigest()
        self.assert_fail(self.cont(c, 4, f"carol {digest}"), 4)
        self.assertTrue(self.log_waits_for(r"cannot serve CRAM-MD5 credentials for user \"carol\": "
                                           r"have SCRAM-SHA-256, need CRAM-MD5"))
        self.assertTrue(self.log_waits_for(r"user=\"carol\".*mech=CRAM-MD5 reason=scheme_unavailable")
                        or self.log_waits_for(r"user=\"carol\".*mech=CRAM-MD5 reason="))

    # --- EXTERNAL, ANONYMOUS ---

    def test_external(self):
        c = self.client()
        c.auth(1, "EXTERNAL", "valid-client-cert", "cert_username=alice", resp="")
        c.auth(2, "EXTERNAL", "valid-client-cert", "cert_username=alice", resp=b64("alice"))
        c.auth(3, "EXTERNAL", "cert_username=alice", resp=b64("alice"))
        c.auth(4, "EXTERNAL", "valid-client-cert", "cert_username=alice", resp=b64("carol"))
        c.auth(5, "EXTERNAL", "valid-client-cert", resp=b64("alice"))
        self.assert_ok(c.reply_for(2), 2, "alice")
        for i in (3, 4, 5):
            self.assert_fail(c.reply_for(i), i)
        # minor 0: an empty resp= is "no initial response": the server asks.
        self.expect_cont(c.reply_for(1), 1)
        self.assert_ok(self.cont(c, 1, ""), 1, "alice")

    def test_anonymous(self):
        c = self.client()
        c.auth(1, "ANONYMOUS", resp=b64("someone@example.com"))
        self.assert_ok(c.reply_for(1), 1, "guest")

    # --- OAUTHBEARER / XOAUTH2 ---

    def bearer(self, token, authzid=""):
        a = f"a={authzid}" if authzid else ""
        return f"n,{a},\x01host=localhost\x01port=25\x01auth=Bearer {token}\x01\x01"

    def test_oauthbearer(self):
        c = self.client()
        c.auth(1, "OAUTHBEARER", resp=b64(self.bearer(jwt_hs256(good_claims()), "alice")))
        self.assert_ok(c.reply_for(1), 1, "alice")
        bad_tokens = [jwt_hs256(good_claims(exp=int(time.time()) - 3600)),
                      jwt_hs256(good_claims(iss="https://evil.invalid")),
                      jwt_hs256(good_claims(aud="someone-else")),
                      jwt_hs256(good_claims(), secret="a-different-secret-of-enough-length!!"),
                      jwt_hs256(good_claims(nbf=int(time.time()) + 3600))]
        for i, tok in enumerate(bad_tokens, start=2):
            with self.subTest(i=i):
                c.auth(i, "OAUTHBEARER", resp=b64(self.bearer(tok)))
                err = json.loads(self.expect_cont(c.reply_for(i), i))
                self.assertEqual(err["status"], "invalid_token")
                self.assert_fail(self.cont(c, i, "\x01"), i)
        # A valid token for another user than the authzid.
        c.auth(20, "OAUTHBEARER", resp=b64(self.bearer(jwt_hs256(good_claims()), "carol")))
        self.expect_cont(c.reply_for(20), 20)
        self.assert_fail(self.cont(c, 20, "\x01"), 20)
        self.assertTrue(self.log_waits_for(r"reason=invalid_token detail=\"token expired\""))
        self.assertNotIn(bad_tokens[0], self.daemon.stderr())

    def test_oauthbearer_rs256_key_file(self):
        if not rsa_key():
            self.skipTest("openssl not installed")
        c = self.client()
        c.auth(1, "OAUTHBEARER", resp=b64(self.bearer(jwt_rs256(good_claims()))))
        self.assert_ok(c.reply_for(1), 1, "alice")
        # A key id the configuration does not name finds no key.
        c.auth(2, "OAUTHBEARER", resp=b64(self.bearer(jwt_rs256(good_claims(), kid="other"))))
        self.expect_cont(c.reply_for(2), 2)
        self.assert_fail(self.cont(c, 2, "\x01"), 2)

    def test_xoauth2(self):
        c = self.client()
        tok = jwt_hs256(good_claims())
        c.auth(1, "XOAUTH2", resp=b64(f"user=alice\x01auth=Bearer {tok}\x01\x01"))
        self.assert_ok(c.reply_for(1), 1, "alice")
        c.auth(2, "XOAUTH2", resp=b64(f"user=carol\x01auth=Bearer {tok}\x01\x01"))
        err = json.loads(self.expect_cont(c.reply_for(2), 2))
        self.assertEqual(err["status"], "401")
        self.assert_fail(self.cont(c, 2, ""), 2)

    # --- master users ---

    def test_master_user_plain_authzid_and_separator(self):
        c = self.client()
        c.auth(1, "PLAIN", resp=b64(plain_payload("admin", MASTER_PASSWORD, authzid="alice")))
        self.assert_ok(c.reply_for(1), 1, "alice")
        c.auth(2, "PLAIN", resp=b64(plain_payload("alice*admin", MASTER_PASSWORD)))
        self.assert_ok(c.reply_for(2), 2, "alice")
        # Wrong master password; the target's own password does not make a master.
        c.auth(3, "PLAIN", resp=b64(plain_payload("admin", WRONG_PASSWORD, authzid="alice")))
        c.auth(4, "PLAIN", resp=b64(plain_payload("alice", ALICE_PASSWORD, authzid="carol")))
        c.auth(5, "PLAIN", resp=b64(plain_payload("carol*alice", ALICE_PASSWORD)))
        for i in (3, 4, 5):
            self.assert_fail(c.reply_for(i), i)
        # The master passdb is not a normal passdb: admin cannot log in as admin.
        c.auth(6, "PLAIN", resp=b64(plain_payload("admin", MASTER_PASSWORD)))
        self.assert_fail(c.reply_for(6), 6)
        self.assertTrue(self.log_waits_for(r"master user \"admin\" logs in as \"alice\""))


    @unittest.skipUnless(shutil.which("doveadm"), "doveadm not installed (dovecot-core)")
    def test_master_user_with_doveadm(self):
        # doveadm auth test -M sends PLAIN "user NUL master NUL password".
        def run(user, master, password):
            return subprocess.run([shutil.which("doveadm"), "-c", "/dev/null", "auth", "test",
                                   "-a", self.sock, "-M", master, user, password],
                                  capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
        ok = run("alice", "admin", MASTER_PASSWORD)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("auth succeeded", ok.stdout + ok.stderr)
        bad = run("alice", "admin", WRONG_PASSWORD)
        self.assertNotEqual(bad.returncode, 0, bad.stdout + bad.stderr)


@require_binaries
class MechanismConfigTest(DaemonTestCase):

    def test_authzid_refused_without_master_passdb(self):
        d, sock = self.start_standard()
        c = self.connect(sock)
        c.auth(1, "PLAIN", resp=b64(plain_payload("alice", ALICE_PASSWORD, authzid="bob")))
        self.assert_fail(c.reply_for(1), 1)
        # Without a separator configured, "a*b" is just an (unknown) name.
        c.auth(2, "PLAIN", resp=b64(plain_payload("alice*admin", ALICE_PASSWORD)))
        self.assert_fail(c.reply_for(2), 2)

    def test_mechanisms_needing_settings_refuse_to_start(self):
        users = self.standard_users()
        for mechs, why in ((("PLAIN", "OAUTHBEARER"), "OAUTHBEARER needs an [oauth2] section"),
                           (("ANONYMOUS",), "ANONYMOUS needs auth.anonymous_user")):
            with self.subTest(mechs=mechs):
                conf = make_config(self.path("auth"), users, mechanisms=mechs)
                d = Daemon(self.tmp, conf, name="bad")
                self.daemons.append(d)
                d.start(wait_ready=False)
                d.proc.wait(timeout=10)
                self.assertNotEqual(d.proc.returncode, 0)
                self.assertIn(why, d.stderr())


# ---------------------------------------------------------------------------
# Real SASL clients through Postfix.

def real_clients_missing():
    why = postfix_missing()
    if why:
        return why
    if not GSASL:
        return "gsasl not installed"
    return None


REALM = "postern-test.invalid"


@unittest.skipIf(real_clients_missing(), real_clients_missing() or "")
class RealClientsThroughPostfixTest(PostfixTestCase):
    """gsasl and swaks as SMTP clients, Postfix smtpd asking posternd."""
    tmp_prefix = "postern-it-mechs-"

    @classmethod
    def daemon_config(cls):
        users = os.path.join(cls.tmp, "users")
        write_file(users,
                   passwd_line("alice", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line(f"alice@{REALM}", "{PLAIN}" + ALICE_PASSWORD) +
                   passwd_line("carol", "{SCRAM-SHA-256}" +
                               scram_stored("sha256", SCRAM_PASSWORD, b"carol-fixed-salt")))
        config = make_config(cls.pf.auth_socket, users,
                             mechanisms=("PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5",
                                         "SCRAM-SHA-1", "SCRAM-SHA-256"))
        return config.replace("[auth]\n", f"[auth]\nrealms = [{toml_str(REALM)}]\n", 1)

    def gsasl(self, mech, user, password, *extra):
        cmd = [GSASL, "--smtp", "--connect", f"127.0.0.1:{self.pf.smtp_port}", "--no-starttls",
               "--mechanism", mech, "-a", user, "-p", password, *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr

    def assert_gsasl(self, ok, mech, user, password, *extra):
        code, out = self.gsasl(mech, user, password, *extra)
        detail = f"{out}\n{self.logs()}"
        if ok:
            self.assertEqual(code, 0, detail)
            self.assertRegex(out, r"235[ -]", detail)
        else:
            self.assertNotEqual(code, 0, detail)
            self.assertRegex(out, r"535[ -]", detail)

    def test_ehlo_lists_the_mechanisms(self):
        out = self.auth("PLAIN", "alice", ALICE_PASSWORD)
        auth_line = re.search(r"250[- ]AUTH ([^\r\n]*)", out).group(1).split()
        for mech in ("CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"):
            self.assertIn(mech, auth_line)

    def test_gsasl_scram(self):
        for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
            with self.subTest(mech=mech):
                self.assert_gsasl(True, mech, "alice", ALICE_PASSWORD)
                self.assert_gsasl(False, mech, "alice", WRONG_PASSWORD)
                self.assert_gsasl(False, mech, "nosuchuser", WRONG_PASSWORD)
        self.assert_gsasl(True, "SCRAM-SHA-256", "carol", SCRAM_PASSWORD)
        self.assert_gsasl(False, "SCRAM-SHA-256", "carol", WRONG_PASSWORD)

    def test_gsasl_cram_md5(self):
        self.assert_gsasl(True, "CRAM-MD5", "alice", ALICE_PASSWORD)
        self.assert_gsasl(False, "CRAM-MD5", "alice", WRONG_PASSWORD)
        self.assert_gsasl(False, "CRAM-MD5", "nosuchuser", WRONG_PASSWORD)

    def test_gsasl_digest_md5(self):
        realm = ("--realm", REALM, "--hostname", "localhost")
        self.assert_gsasl(True, "DIGEST-MD5", "alice", ALICE_PASSWORD, *realm)
        self.assert_gsasl(False, "DIGEST-MD5", "alice", WRONG_PASSWORD, *realm)
        self.assert_gsasl(False, "DIGEST-MD5", "nosuchuser", WRONG_PASSWORD, *realm)

    def test_swaks_cram_md5(self):
        self.assert_reply(self.auth("CRAM-MD5", "alice", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth("CRAM-MD5", "alice", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("CRAM-MD5", "nosuchuser", WRONG_PASSWORD), 535)

    def test_swaks_digest_md5(self):
        self.assert_reply(self.auth("DIGEST-MD5", "alice", ALICE_PASSWORD), 235)
        self.assert_reply(self.auth("DIGEST-MD5", "alice", WRONG_PASSWORD), 535)
        self.assert_reply(self.auth("DIGEST-MD5", "nosuchuser", WRONG_PASSWORD), 535)


if __name__ == "__main__":
    unittest.main()
