# Shared by the PAM integration tests: posternd under pam_wrapper (the real
# libpam with a private service directory, nothing under /etc touched), the
# pam_matrix module, and the fault-injection module built under tests/pam/.

import os

from harness import BUILD_DIR, Daemon, toml_str, write_file

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PAM_WRAPPER_LIB = next((p for p in (os.path.join(LIBDIR, "libpam_wrapper.so"),
                                    "/usr/lib/libpam_wrapper.so") if os.path.exists(p)), None)
PAM_MATRIX = next((p for p in (os.path.join(LIBDIR, "pam_wrapper", "pam_matrix.so"),
                               "/usr/lib/pam_wrapper/pam_matrix.so") if os.path.exists(p)), None)
TEST_MODULE = os.path.join(BUILD_DIR, "tests", "pam", "pam_postern_test.so")


def pam_missing():
    if not PAM_WRAPPER_LIB or not PAM_MATRIX:
        return "pam_wrapper / pam_matrix not installed (package libpam-wrapper)"
    if not os.path.exists(TEST_MODULE):
        return f"{TEST_MODULE} not built (meson tests option off?)"
    return None


class PamDaemon(Daemon):
    """posternd with libpam_wrapper preloaded and a private PAM service dir."""

    def __init__(self, workdir, config_text, service_dir, name="posternd"):
        super().__init__(workdir, config_text, name)
        self.service_dir = service_dir

    def start(self, wait_ready=True):
        import subprocess
        from harness import POSTERND
        env = dict(os.environ)
        from harness import ASAN_RUNTIME
        # Under ASan its runtime must be the first library loaded.
        preload = f"{ASAN_RUNTIME} {PAM_WRAPPER_LIB}" if ASAN_RUNTIME else PAM_WRAPPER_LIB
        env.update({"LD_PRELOAD": preload, "PAM_WRAPPER": "1",
                    "PAM_WRAPPER_SERVICE_DIR": self.service_dir})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([POSTERND, "-c", self.config_path], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, start_new_session=True)
        if wait_ready:
            self.wait_ready()
        return self


def write_services(service_dir, matrix_path, services=None):
    """Service files: 'matrix' style entries use pam_matrix against
    matrix_path; others are given as raw text."""
    os.makedirs(service_dir, exist_ok=True)
    os.chmod(service_dir, 0o755)
    for name, text in (services or {}).items():
        if text == "matrix":
            text = (f"auth required {PAM_MATRIX} passdb={matrix_path}\n"
                    f"account required {PAM_MATRIX} passdb={matrix_path}\n")
        write_file(os.path.join(service_dir, name), text, 0o644)


def faulty(args):
    return f"auth required {TEST_MODULE} {args}\naccount required {TEST_MODULE}\n"


def pam_config(sock, *, service="smtp", workers=2, timeout=3, mux=None, extra_passdb="",
               session=False, setcred=False):
    lines = ["[log]", 'level = "debug"', "", "[auth]", "failure_delay = 0",
             'username_format = "%u"', "",
             "[[listener]]", 'type = "unix"', f"path = {toml_str(sock)}", 'mode = "0666"',
             'role = "client"', ""]
    if mux:
        lines += ["[[listener]]", 'type = "unix"', f"path = {toml_str(mux)}", 'mode = "0666"',
                  'role = "saslauthd"', ""]
    lines += ["[[passdb]]", 'driver = "pam"', f"service = {toml_str(service)}",
              f"workers = {workers}", f"timeout = {timeout}",
              f"session = {'true' if session else 'false'}",
              f"setcred = {'true' if setcred else 'false'}", ""]
    return "\n".join(lines) + extra_passdb
