# The include layering of src/, protocol/ and backends/ (README.md, Layout):
# tests/check_layering.py passes on this checkout, and finds each kind of
# forbidden include when one is planted in a copy of the tree.

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import REPO_ROOT

CHECKER = os.path.join(REPO_ROOT, "tests", "check_layering.py")


def run_checker(root):
    return subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True, timeout=60)


class LayeringTest(unittest.TestCase):
    def test_checkout_holds_the_layering(self):
        r = run_checker(REPO_ROOT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_planted_includes_are_found(self):
        planted = [
            # (file, include, expected "from -> to")
            ("backends/sql/sql.cpp", "auth/cache.hpp", "backends -> auth"),
            ("backends/backend.hpp", "protocol/auth_client.hpp", "backends -> protocol"),
            ("src/util/log.cpp", "server/listener.hpp", "util -> server"),
            ("src/config/config.cpp", "auth/penalty.hpp", "config -> auth"),
            ("protocol/auth_client.hpp", "auth/engine.hpp", "protocol -> auth"),
            ("src/auth/params.hpp", "protocol/line.hpp", "vocabulary -> protocol"),
            ("src/cli/user.cpp", "server/listener.hpp", "cli -> server"),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for top in ("src", "protocol", "backends"):
                shutil.copytree(os.path.join(REPO_ROOT, top), os.path.join(tmp, top))
            for path, include, _ in planted:
                with open(os.path.join(tmp, path), "a") as f:
                    f.write(f'\n#include "{include}"\n')
            # A file outside every layer is reported too.
            os.makedirs(os.path.join(tmp, "src", "newdir"))
            with open(os.path.join(tmp, "src", "newdir", "x.cpp"), "w") as f:
                f.write('#include "util/log.hpp"\n')
            r = run_checker(tmp)
        self.assertEqual(r.returncode, 1, r.stdout)
        for path, include, arrow in planted:
            self.assertIn(f'{arrow} "{include}"', r.stdout)
            self.assertIn(path + ":", r.stdout)
        self.assertIn("src/newdir/x.cpp: belongs to no layer", r.stdout)
        self.assertIn(f"{len(planted) + 1} include(s) break the layering", r.stdout)

    def test_allowed_includes_pass(self):
        with tempfile.TemporaryDirectory() as tmp:
            for top in ("src", "protocol", "backends"):
                shutil.copytree(os.path.join(REPO_ROOT, top), os.path.join(tmp, top))
            for path, include in [("backends/sql/sql.cpp", "auth/request_info.hpp"),
                                  ("src/server/listener.cpp", "auth/engine.hpp"),
                                  ("src/posternd.cpp", "cli/common.hpp")]:
                with open(os.path.join(tmp, path), "a") as f:
                    f.write(f'\n#include "{include}"\n')
            r = run_checker(tmp)
        self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main()
