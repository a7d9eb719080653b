# Password hashes cross-checked with Dovecot's own `doveadm pw`, both ways:
# every scheme both list, hashed by one and verified by the other.

import shutil
import subprocess
import unittest

from harness import require_binaries, run_cli

DOVEADM = shutil.which("doveadm")
PASSWORD = "Xcheck-Pa55-%s:\u00e9"  # a colon and a non-ASCII letter on purpose
USER = "xcheck@example.org"        # DIGEST-MD5 hashes depend on user and realm
# doveadm writes PLAIN-TRUNC without the "N-" length prefix, a form that
# neither doveadm itself nor postern can verify (doveadm pw -t exits 75 on its
# own output); postern verifies the real "{PLAIN-TRUNC}N-password" form (unit
# vectors) and does not generate it.
VERIFY_ONLY = {"PLAIN-TRUNC"}


def doveadm(*args):
    return subprocess.run([DOVEADM, "-c", "/dev/null", "pw", *args], capture_output=True, text=True, timeout=60)


def common_schemes():
    ours = run_cli(["pw", "-l"])
    postern = {line.split()[0] for line in ours.stdout.splitlines() if line.strip()}
    theirs = set(doveadm("-l").stdout.split())
    return sorted(postern & theirs)


@require_binaries
@unittest.skipUnless(DOVEADM, "doveadm not installed (package dovecot-core; tests/run.sh installs it)")
class DoveadmPwCrossCheck(unittest.TestCase):

    def setUp(self):
        self.schemes = common_schemes()
        # Sanity: the intersection really covers the families of the issue.
        for s in ("SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID", "SSHA512", "SCRAM-SHA-256", "CRAM-MD5", "DIGEST-MD5",
                  "PBKDF2", "MD5-CRYPT", "PLAIN-MD4", "LDAP-MD5"):
            self.assertIn(s, self.schemes)

    def cross_check(self, make, verify):
        """Hash with make(scheme, pw), then verify(hash, pw) must accept pw
        and refuse a wrong password, for every common scheme."""
        checked = []
        for scheme in self.schemes:
            if scheme in VERIFY_ONLY:
                continue
            with self.subTest(scheme=scheme):
                pw = PASSWORD % scheme
                made = make(scheme, pw)
                self.assertEqual(made.returncode, 0, made.stderr)
                hashed = made.stdout.strip()
                self.assertTrue(hashed.startswith("{" + scheme + "}"), hashed)
                good = verify(hashed, pw)
                self.assertEqual(good.returncode, 0, f"{scheme} {hashed[:40]}: {good.stdout}{good.stderr}")
                self.assertIn("(verified)", good.stdout)
                # Wrong at the start: DES-CRYPT only looks at 8 characters.
                bad = verify(hashed, "x" + pw)
                self.assertNotEqual(bad.returncode, 0, f"{scheme}: a wrong password was accepted")
                checked.append(scheme)
        self.assertGreaterEqual(len(checked), 25, checked)

    def test_postern_hashes_verify_with_doveadm(self):
        self.cross_check(lambda scheme, pw: run_cli(["pw", "-s", scheme, "-u", USER], stdin_text=pw + "\n"),
                         lambda hashed, pw: doveadm("-t", hashed, "-p", pw, "-u", USER))

    def test_doveadm_hashes_verify_with_postern(self):
        self.cross_check(lambda scheme, pw: doveadm("-s", scheme, "-p", pw, "-u", USER),
                         lambda hashed, pw: run_cli(["pw", "-t", hashed, "-u", USER], stdin_text=pw + "\n"))

    def test_yescrypt_verifies_with_doveadm(self):
        # doveadm has no YESCRYPT scheme; postern writes yescrypt as
        # {CRYPT}$y$..., which Dovecot checks through crypt(3).
        for rounds in ("5", "3"):
            pw = PASSWORD % "YESCRYPT"
            made = run_cli(["pw", "-s", "YESCRYPT", "-r", rounds], stdin_text=pw + "\n")
            self.assertEqual(made.returncode, 0, made.stderr)
            hashed = made.stdout.strip()
            self.assertTrue(hashed.startswith("{CRYPT}$y$"), hashed)
            good = doveadm("-t", hashed, "-p", pw)
            self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
            self.assertNotEqual(doveadm("-t", hashed, "-p", "x" + pw).returncode, 0)
        self.assertEqual(run_cli(["pw", "-s", "YESCRYPT", "-r", "12"], stdin_text="x\n").returncode, 65)


if __name__ == "__main__":
    unittest.main()
