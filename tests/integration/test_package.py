# The Debian package (debian/) and meson install: dpkg-buildpackage -us -uc -b
# in a copy of the checkout, the file list meson install put in place, lintian
# (no errors), and the .deb installed with its dependencies into a clean
# Debian 12 root where posternd --check passes on the shipped configuration
# and the installed posternd serves the demo users; then purge.
#
# Slow parts are cached outside the checkout, in /var/cache/postern-ci/package
# (POSTERN_PACKAGE_CACHE): the copy of the sources (a fixed path, so ccache
# hits on every run), the .debs apt downloads into the clean root, and the
# minbase root itself (clean-bookworm-minbase.tar, built with debootstrap
# through the machine's Debian mirror when missing). Runs in the normal build
# only (the sanitizer pass skips it): it builds its own binaries.

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import ASAN_RUNTIME, REPO_ROOT, AuthClient, b64, plain_payload, save_log

CACHE = os.environ.get("POSTERN_PACKAGE_CACHE", "/var/cache/postern-ci/package")
CLEAN_ROOT_TAR = os.environ.get("POSTERN_CLEAN_ROOT_TAR", "/var/cache/postern-ci/clean-bookworm-minbase.tar")
# The tree to package (default: this checkout's working tree).
SOURCE = os.environ.get("POSTERN_PACKAGE_SRC", REPO_ROOT)
VERSION = "0.1.0"
BUILD_TIMEOUT = 3600

# What meson install puts in place with --prefix=/usr --sysconfdir=/etc.
EXPECTED_INSTALL = {
    "etc/fail2ban/filter.d/postern.conf",
    "etc/postern/postern.conf",
    "lib/systemd/system/posternd.service",
    "lib/systemd/system/posternd.socket",
    "lib/systemd/system/posternd-login.socket",
    "lib/systemd/system/posternd-master.socket",
    "lib/systemd/system/posternd-userdb.socket",
    "usr/bin/postern",
    "usr/sbin/posternd",
    "usr/share/doc/postern/examples/fail2ban/jail.d/postern.local",
    "usr/share/man/man1/postern.1",
    "usr/share/man/man5/postern.conf.5",
    "usr/share/man/man8/posternd.8",
}


def missing_tools():
    for tool in ("dpkg-buildpackage", "dh", "lintian", "fakeroot", "chroot", "rsync"):
        if not shutil.which(tool):
            return f"{tool} not found (contrib/install-deps.sh --test)"
    if os.geteuid() != 0:
        return "installing into a clean root needs root"
    return None


def run(cmd, timeout=600, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def debian_mirror():
    """The first non-security Debian mirror apt uses here (as tests/dovecot24_root.sh)."""
    for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("URIs:"):
                    for uri in line.split()[1:]:
                        if "security" not in uri:
                            return uri
    return None


def clean_root_tar():
    """The cached minbase bookworm root, built with debootstrap when missing."""
    if os.path.exists(CLEAN_ROOT_TAR):
        return CLEAN_ROOT_TAR
    mirror = debian_mirror()
    if not mirror or not shutil.which("debootstrap"):
        raise unittest.SkipTest("no cached clean root and no debootstrap/mirror to build one")
    os.makedirs(os.path.dirname(CLEAN_ROOT_TAR), exist_ok=True)
    work = tempfile.mkdtemp(prefix="clean-bookworm-", dir=os.path.dirname(CLEAN_ROOT_TAR))
    try:
        run(["debootstrap", "--variant=minbase", "bookworm", work, mirror], timeout=1800)
        os.chmod(work, 0o755)  # mkdtemp's 0700 would be the root's "/" in the tar
        run(["tar", "-C", work, "-cf", CLEAN_ROOT_TAR + ".new", "."], timeout=600)
        os.replace(CLEAN_ROOT_TAR + ".new", CLEAN_ROOT_TAR)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CLEAN_ROOT_TAR


@unittest.skipIf(ASAN_RUNTIME, "the package is built and tested once, in the normal pass")
@unittest.skipIf(missing_tools(), missing_tools() or "")
class DebianPackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        started = time.monotonic()
        cls.src = os.path.join(CACHE, "src")
        # The working tree's files (tracked and new, not ignored), copied
        # afresh to a fixed path so the compiler cache recognises every
        # unchanged file.
        shutil.rmtree(cls.src, ignore_errors=True)
        os.makedirs(cls.src)
        files = run(["git", "-C", SOURCE, "ls-files", "-co", "--exclude-standard", "-z"], check=False)
        if files.returncode == 0:
            listed = [f for f in files.stdout.split("\0") if f and os.path.lexists(os.path.join(SOURCE, f))]
            run(["rsync", "-a", "--files-from=-", "--from0", SOURCE + "/", cls.src + "/"],
                input="\0".join(listed))
        else:  # an exported tree (git archive): all of it but build directories
            run(["rsync", "-a", "--exclude=/build*", "--exclude=/obj-*", SOURCE + "/", cls.src + "/"])
        for stale in glob.glob(os.path.join(CACHE, "postern_*")):
            os.remove(stale)
        env = dict(os.environ,
                   DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=2",
                   CCACHE_DIR=os.environ.get("CCACHE_DIR", "/var/cache/postern-ci/ccache"),
                   CCACHE_BASEDIR=cls.src, CCACHE_NOHASHDIR="1")
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=cls.src, env=env,
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        save_log("package-build.log", p.stdout + p.stderr)
        cls.build_output = p.stdout + p.stderr
        cls.build_rc = p.returncode
        cls.build_seconds = time.monotonic() - started
        debs = glob.glob(os.path.join(CACHE, f"postern_{VERSION}_*.deb"))
        cls.deb = debs[0] if debs else None
        print(f"\n  dpkg-buildpackage: {cls.build_seconds:.0f} s", flush=True)

    def setUp(self):
        if self.build_rc != 0 or not self.deb:
            self.fail(f"dpkg-buildpackage failed ({self.build_rc}):\n{self.build_output[-4000:]}")

    def test_meson_install_file_list(self):
        # meson install from the package's build directory (configured by
        # dh_auto_configure with --prefix=/usr --sysconfdir=/etc).
        tmp = tempfile.mkdtemp(prefix="postern-meson-install-")
        self.addCleanup(shutil.rmtree, tmp, True)
        run(["meson", "install", "-C", os.path.join(self.src, "obj-x86_64-linux-gnu"), "--no-rebuild",
             "--destdir", tmp])
        found = set()
        for dirpath, _, names in os.walk(tmp):
            for n in names:
                found.add(os.path.relpath(os.path.join(dirpath, n), tmp))
        self.assertEqual(found, EXPECTED_INSTALL)
        with open(os.path.join(tmp, "lib/systemd/system/posternd.service"), encoding="utf-8") as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/posternd -c /etc/postern/postern.conf", unit)
        self.assertIn("Type=notify", unit)
        self.assertNotIn("@", unit.replace("@system-service", ""))

    def test_package_contents_and_conffiles(self):
        listing = run(["dpkg-deb", "-c", self.deb]).stdout
        for path in ("./usr/sbin/posternd", "./usr/bin/postern", "./etc/postern/postern.conf",
                     "./lib/systemd/system/posternd.service", "./lib/systemd/system/posternd.socket",
                     "./usr/share/man/man8/posternd.8.gz"):
            self.assertIn(path, listing)
        conffiles = run(["dpkg-deb", "-I", self.deb, "conffiles"]).stdout.split()
        self.assertIn("/etc/postern/postern.conf", conffiles)

    def test_lintian_reports_no_errors(self):
        p = run(["lintian", "--tag-display-limit", "0", self.deb], check=False, timeout=600)
        out = p.stdout + p.stderr
        save_log("package-lintian.log", out)
        errors = [line for line in out.splitlines() if line.startswith("E:")]
        warnings = [line for line in out.splitlines() if line.startswith("W:")]
        print("\n  lintian warnings: " + ("; ".join(w.split(": ", 2)[-1] for w in warnings) or "none"), flush=True)
        self.assertEqual(errors, [], out)

    def test_installs_into_a_clean_debian_12_root(self):
        tar = clean_root_tar()
        root = tempfile.mkdtemp(prefix="postern-clean-root-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, root, True)
        run(["tar", "-C", root, "-xf", tar], timeout=600)
        # "/" of the root as on a real system (mkdtemp makes it 0700, and a
        # tar made before its builder set 0755 says so too): posternd, once
        # it is nobody, must be able to reach /tmp/demo.
        os.chmod(root, 0o755)
        # apt in the root reads the packages this machine's apt uses: its
        # sources and the lists fetched for them (no apt-get update unless
        # those fail), and the .debs downloaded by earlier runs.
        shutil.copy("/etc/apt/sources.list.d/debian.sources", os.path.join(root, "etc/apt/sources.list.d/"))
        open(os.path.join(root, "etc/apt/sources.list"), "w").close()
        lists = os.path.join(root, "var/lib/apt/lists")
        for f in glob.glob(os.path.join(lists, "*_*")):
            os.remove(f)
        for f in glob.glob("/var/lib/apt/lists/*_*"):
            if os.path.isfile(f) and not f.endswith("lock"):
                shutil.copy(f, lists)
        debs = os.path.join(CACHE, "debs")
        os.makedirs(debs, exist_ok=True)
        archives = os.path.join(root, "var/cache/apt/archives")
        for f in glob.glob(os.path.join(debs, "*.deb")):
            shutil.copy(f, archives)
        # No service starts inside the root.
        with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
        shutil.copy(self.deb, os.path.join(root, "tmp"))
        deb_in_root = "/tmp/" + os.path.basename(self.deb)
        env = dict(PATH="/usr/sbin:/usr/bin:/sbin:/bin", DEBIAN_FRONTEND="noninteractive", LANG="C")
        install = ["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", deb_in_root]
        p = run(install, check=False, env=env, timeout=900)
        if p.returncode != 0:
            run(["chroot", root, "apt-get", "update", "-q"], env=env, timeout=600)
            p = run(install, env=env, timeout=900)
        save_log("package-install.log", p.stdout + p.stderr)
        for f in glob.glob(os.path.join(archives, "*.deb")):
            if not os.path.exists(os.path.join(debs, os.path.basename(f))):
                shutil.copy(f, debs)

        # postinst: the postern user and group, the users file for the shipped config.
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"(?m)^postern:x:\d+:\d+:.*:/var/lib/postern:/usr/sbin/nologin$")
        with open(os.path.join(root, "etc/group"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"(?m)^postern:x:\d+:")
        st = os.stat(os.path.join(root, "etc/postern/users"))
        self.assertEqual(st.st_mode & 0o777, 0o640)
        # The service is enabled (dh_installsystemd) and the shipped config validates.
        self.assertTrue(os.path.islink(os.path.join(
            root, "etc/systemd/system/multi-user.target.wants/posternd.service")))
        p = run(["chroot", root, "/usr/sbin/posternd", "--check", "-c", "/etc/postern/postern.conf"], env=env)
        self.assertIn("configuration /etc/postern/postern.conf is valid", p.stderr)

        # The installed posternd serves the demo users (as nobody: it starts as root).
        os.makedirs(os.path.join(root, "tmp/demo"))
        log_path = os.path.join(root, "tmp/demo.log")
        with open(log_path, "wb") as log:
            d = subprocess.Popen(["chroot", root, "/usr/sbin/posternd", "--demo", "/tmp/demo"],
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
        try:
            deadline = time.monotonic() + 15
            text = ""
            while "posternd: ready" not in text:
                self.assertIsNone(d.poll(), text)
                self.assertLess(time.monotonic(), deadline, text)
                time.sleep(0.05)
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            c = AuthClient(os.path.join(root, "tmp/demo/auth"))
            try:
                c.handshake()
                c.auth(1, "PLAIN", "nologin", resp=b64(plain_payload("alice@example.com", "wonderland")))
                reply = c.reply()
                self.assertEqual(reply[:2], ["OK", "1"], reply)
                self.assertIn("user=alice@example.com", reply)
                c.auth(2, "PLAIN", "nologin", resp=b64(plain_payload("bob@example.com", "wrong")))
                self.assertEqual(c.reply(timeout=10)[:2], ["FAIL", "2"])
            finally:
                c.close()
        finally:
            os.kill(d.pid, signal.SIGTERM)
            d.wait(10)

        # Purge removes what postinst made and the conffile.
        run(["chroot", root, "dpkg", "--purge", "postern"], env=env)
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as f:
            self.assertNotRegex(f.read(), r"(?m)^postern:")
        with open(os.path.join(root, "etc/group"), encoding="utf-8") as f:
            self.assertNotRegex(f.read(), r"(?m)^postern:")
        for gone in ("etc/postern", "var/lib/postern", "usr/sbin/posternd"):
            self.assertFalse(os.path.exists(os.path.join(root, gone)), gone)


if __name__ == "__main__":
    unittest.main()
