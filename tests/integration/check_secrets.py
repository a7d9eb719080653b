#!/usr/bin/env python3
# The last step of tests/run.sh: no log line produced by the whole test run
# (every posternd's stderr and every CLI run's output, collected in
# POSTERN_LOG_DIR by harness.py) contains a password or a password hash used
# by the tests: harness.SECRETS, the hashes made at run time
# (LOG_DIR/secrets.list), and the stored hashes of the test fixtures.
#   tests/integration/check_secrets.py LOG_DIR [LOG_DIR...]
# Prints "check_secrets: N files, N secrets, N findings"; exit 1 on a finding
# or when there is nothing to check.

import csv
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import harness  # noqa: E402

MIN_HASH_LEN = 20   # shorter stored values are plaintext or too common to grep


def fixture_hashes():
    out = set()
    for path in glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.tsv")):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                stored = row.get("stored") or ""
                data = stored.split("}", 1)[1] if stored.startswith("{") and "}" in stored else stored
                if len(data) >= MIN_HASH_LEN and data != row.get("password"):
                    out.add(data)
    for path in glob.glob(os.path.join(HERE, "fixtures", "*.passwd-file")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 1 and "@" not in parts[1]:
                    data = parts[1].split("}", 1)[-1]
                    if len(data) >= MIN_HASH_LEN:
                        out.add(data)
    out.add(harness.FALLBACK_CRYPT_HASH)
    return out


def main(argv):
    dirs = argv[1:]
    if not dirs:
        print("usage: check_secrets.py LOG_DIR...", file=sys.stderr)
        return 2
    secrets = set(harness.SECRETS) | fixture_hashes()
    files = []
    for d in dirs:
        listed = os.path.join(d, "secrets.list")
        if os.path.exists(listed):
            with open(listed, encoding="utf-8") as f:
                secrets |= {line.rstrip("\n") for line in f if line.strip()}
        for dirpath, _, names in os.walk(d):
            files += [os.path.join(dirpath, n) for n in names if n != "secrets.list"]
    secrets = {s for s in secrets if s}
    findings = 0
    for path in sorted(files):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for s in secrets:
            if s in text:
                findings += 1
                shown = s if s in harness.SECRETS else s[:6] + "..."
                print(f"check_secrets: {path} contains the secret {shown!r}")
    print(f"check_secrets: {len(files)} files, {len(secrets)} secrets, {findings} findings")
    return 0 if findings == 0 and files else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
