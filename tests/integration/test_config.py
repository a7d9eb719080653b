# posternd start-up: ready line, clean SIGTERM, and config errors reported as
# FILE:LINE: KEY: text with exit code 78 before anything listens.

import os
import signal
import socket
import subprocess
import unittest

from harness import (EX_CONFIG, POSTERND, READY_LINE, SECRETS, DaemonTestCase, make_config,
                     require_binaries, write_file)

EXIT_TIMEOUT = 10


@require_binaries
class StartStopTest(DaemonTestCase):

    def test_ready_then_sigterm(self):
        d, sock = self.start_standard()
        self.assertTrue(os.path.exists(sock))
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o666)
        os.kill(d.proc.pid, signal.SIGTERM)
        rc = d.proc.wait(EXIT_TIMEOUT)
        self.assertEqual(rc, 0, d.stderr())
        self.assertEqual(d.stderr().count(READY_LINE), 1)

    def test_listener_mode_applied(self):
        sock = self.path("auth")
        self.start_daemon(make_config(sock, self.standard_users(), mode="0600"))
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)

    def test_stale_socket_file_replaced(self):
        # A socket file left behind by a killed daemon must not stop a restart.
        sock = self.path("auth")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(sock)
        stale.close()
        d, _ = self.start_standard()
        self.assertTrue(d.alive())
        c = self.connect(sock)
        self.assertEqual(c.server_lines[-1], "DONE")


@require_binaries
class ConfigErrorTest(DaemonTestCase):

    def run_bad(self, text):
        """Run posternd on text; returns (config path, stderr, socket path)."""
        conf = self.path("bad.conf")
        write_file(conf, text)
        proc = subprocess.run([POSTERND, "-c", conf], capture_output=True, text=True,
                              timeout=EXIT_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, EX_CONFIG, proc.stderr)
        self.assertNotIn(READY_LINE, proc.stderr)
        for secret in SECRETS:
            self.assertNotIn(secret, proc.stderr)
        self.assertFalse(os.path.exists(self.path("auth")), "socket created despite error")
        return conf, proc.stderr

    def base(self):
        return make_config(self.path("auth"), self.standard_users())

    @staticmethod
    def line_of(text, needle):
        for n, line in enumerate(text.splitlines(), start=1):
            if needle in line:
                return n
        raise AssertionError(f"{needle!r} not in config")

    def assert_located(self, text, needle, key=None):
        conf, err = self.run_bad(text)
        n = self.line_of(text, needle)
        self.assertIn(f"{conf}:{n}:", err)
        if key:
            self.assertRegex(err, rf"{conf}:{n}: [\w.\[\]]*{key}\b")

    def test_bad_socket_mode(self):
        text = self.base().replace('mode = "0666"', 'mode = "abc"')
        self.assert_located(text, 'mode = "abc"', "mode")

    def test_unknown_passdb_driver(self):
        text = self.base().replace('driver = "passwd-file"', 'driver = "no-such-driver"', 1)
        self.assert_located(text, "no-such-driver", "driver")

    def test_toml_syntax_error(self):
        text = self.base().replace('level = "debug"', "level = debug")
        self.assert_located(text, "level = debug")

    def test_unterminated_string(self):
        text = self.base().replace('level = "debug"', 'level = "debug')
        self.assert_located(text, 'level = "debug')

    def test_bad_log_level(self):
        text = self.base().replace('level = "debug"', 'level = "chatty"')
        self.assert_located(text, '"chatty"', "level")

    def test_unknown_mechanism(self):
        text = self.base().replace('["PLAIN", "LOGIN"]', '["PLAIN", "NO-SUCH-MECH"]')
        self.assert_located(text, "NO-SUCH-MECH", "mechanisms")

    def test_bad_failure_delay(self):
        text = self.base().replace("failure_delay = 0", 'failure_delay = "soon"')
        self.assert_located(text, '"soon"', "failure_delay")

    def test_bad_tcp_address(self):
        text = make_config(None, self.standard_users(), tcp_address="127.0.0.1:notaport")
        self.assert_located(text, "notaport", "address")

    def test_missing_passdb_path(self):
        users = self.standard_users()
        text = self.base().replace(f'path = "{users}"\n', "", 1)
        conf, err = self.run_bad(text)
        # Either the [[passdb]] header or the driver line locates the error.
        lines = {self.line_of(text, "[[passdb]]"),
                 self.line_of(text, 'driver = "passwd-file"')}
        self.assertTrue(any(f"{conf}:{n}:" in err for n in lines), err)
        self.assertIn("path", err)

    def test_missing_config_file(self):
        proc = subprocess.run([POSTERND, "-c", self.path("nope.conf")], capture_output=True,
                              text=True, timeout=EXIT_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertIn(proc.returncode, (EX_CONFIG, 66), proc.stderr)   # 66 = EX_NOINPUT
        self.assertIn(self.path("nope.conf"), proc.stderr)


if __name__ == "__main__":
    unittest.main()
