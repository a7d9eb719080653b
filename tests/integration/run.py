#!/usr/bin/env python3
# Runs the posternd integration tests (tests/integration/test_*.py).
#   tests/integration/run.py [FILTER]
# FILTER keeps only tests whose full id (module.Class.test) contains it.
# Binaries come from $POSTERN_BUILD (default /work/main/build). The last line
# is "integration: N passed, N failed, N skipped"; exit 1 if any failed.

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(f"usage: {argv[0]} [FILTER]", file=sys.stderr)
        return 2
    name_filter = argv[1] if len(argv) == 2 else None
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    discovered = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(flatten(discovered))
    # Import errors show up as _FailedTest cases: keep them whatever the filter.
    if name_filter:
        tests = [t for t in tests if name_filter in t.id()
                 or type(t).__name__ == "_FailedTest"]
    suite = unittest.TestSuite(tests)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    # Subtests report one failure each: count failed tests, not failures.
    failed = len({t.id() if not hasattr(t, "test_case") else t.test_case.id()
                  for t, _ in result.failures + result.errors}) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    sys.stderr.flush()
    print(f"integration: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
