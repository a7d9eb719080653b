#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds with warnings as errors,
# runs the doctest unit tests and the integration tests against real peers, and
# ends with one line "N passed, N failed, N skipped" counted from both.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${POSTERN_TEST_BUILD:-$root/build-test}

bash contrib/install-deps.sh --test || exit 1
if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" -Dwerror=true >/dev/null || exit 1
fi
ninja -C "$build" || exit 1

passed=0 failed=0 skipped=0

echo "== unit tests (doctest)"
unit_log=$(mktemp)
"$build/tests/unit_tests" --no-intro=false 2>&1 | tee "$unit_log" | tail -n 20
unit_rc=${PIPESTATUS[0]}
line=$(grep -E '^\[doctest\] test cases:' "$unit_log" | tail -1)
if [[ -z "$line" ]]; then
    echo "unit tests produced no summary (exit $unit_rc)"
    failed=$((failed + 1))
else
    p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
    s=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [[ $unit_rc -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
fi
rm -f "$unit_log"

echo "== integration tests (posternd, Postfix + swaks, doveadm)"
int_log=$(mktemp)
POSTERN_BUILD="$build" python3 tests/integration/run.py 2>&1 | tee "$int_log"
int_rc=${PIPESTATUS[0]}
line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$int_log" | tail -1)
if [[ -z "$line" ]]; then
    echo "integration tests produced no summary (exit $int_rc)"
    failed=$((failed + 1))
else
    read -r p f s < <(sed -E 's/integration: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [[ $int_rc -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
fi
rm -f "$int_log"

echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
