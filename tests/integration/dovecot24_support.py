# Dovecot 2.4 programs from the Debian 13 root that tests/dovecot24_root.sh
# builds and caches (tests/run.sh builds it before the integration tests).
# posternd runs on the host with its sockets in a temp dir inside the root;
# the root's doveadm and dovecot reach them by the path seen from inside.

import os
import subprocess

ROOT = os.environ.get("POSTERN_DOVECOT24_ROOT", "/var/cache/postern-ci/dovecot24-root")
MARKER = os.path.join(ROOT, ".postern-dovecot24-ready")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def root_missing():
    """Why the Dovecot 2.4 root cannot be used, or None."""
    if os.geteuid() != 0:
        return "the Dovecot 2.4 root is entered with chroot, which needs root"
    if not os.path.exists(MARKER):
        return (f"no Dovecot 2.4 root at {ROOT}: bash tests/dovecot24_root.sh builds it "
                "(debootstrap trixie through the machine's Debian mirror; see its output in the run log)")
    return None


def version():
    p = subprocess.run(["chroot", ROOT, "/usr/sbin/dovecot", "--version"], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip()


def inside(host_path):
    """The path a program in the root sees for host_path (which must be in the root)."""
    rel = os.path.relpath(host_path, ROOT)
    if rel.startswith(".."):
        raise AssertionError(f"{host_path} is not inside {ROOT}")
    return "/" + rel


def tmp_parent():
    path = os.path.join(ROOT, "tmp")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


def run(*args, timeout=60, **kw):
    """A program of the root, as root, with the root as /."""
    return subprocess.run(["chroot", ROOT, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def minimal_conf(host_dir):
    """The two settings every 2.4 program needs before it starts; returns the
    file's path as seen from inside the root."""
    path = os.path.join(host_dir, "doveadm.conf")
    with open(path, "w") as f:
        f.write("dovecot_config_version = 2.4.1\ndovecot_storage_version = 2.4.1\n")
    return inside(path)


def make_home(host_dir, user, uid):
    """host_dir/home/<user>, owned by uid (a mail user's home that the 2.4
    programs, which switch to that uid, can write); returns its host path."""
    home = os.path.join(host_dir, "home", user)
    os.makedirs(home)
    os.chmod(os.path.join(host_dir, "home"), 0o755)
    os.chown(home, uid, uid)
    return home
