#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in their own build dir and
# runs each one for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (default 20 s per target, all targets)
#
# Environment:
#   POSTERN_FUZZ_BUILD   build dir (default ./build-fuzz)
#   FUZZ_ARGS            extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Each target starts from its seeds (tests/fuzz/corpus/TARGET) and its saved
# regression inputs (tests/fuzz/regressions/TARGET, replayed on every run), and
# keeps what it learns in BUILD/fuzz-corpus/TARGET across runs. A crash leaves
# the input in BUILD/fuzz-crashes/; copy it into tests/fuzz/regressions/TARGET/
# when fixing the bug. The last line is "fuzz: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
seconds=${1:-20}
shift || true
build=${POSTERN_FUZZ_BUILD:-$root/build-fuzz}

if ! command -v clang++ >/dev/null; then
    echo "fuzz: clang++ not installed (contrib/install-deps.sh --test installs it)"
    echo "fuzz: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
if [[ ! -f "$build/build.ninja" ]]; then
    # Coverage instrumentation and UBSan for the whole core: the top-level meson.build.
    CXX=clang++ meson setup "$build" -Dfuzz=true -Dtests=false -Db_sanitize=address -Db_lundef=false \
        >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; echo "fuzz: 0 passed, 1 failed, 0 skipped"; exit 1; }
    rm -f "$build.setup.log"
fi

mapfile -t all < <(sed -n "/^fuzz_targets = \[/,/^\]/s/^ *'\([a-z0-9_]*\)',*$/\1/p" tests/fuzz/meson.build)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}" >"$build/fuzz-build.log" 2>&1 || {
    tail -n 40 "$build/fuzz-build.log"
    echo "fuzz: 0 passed, ${#targets[@]} failed, 0 skipped"
    exit 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0
mkdir -p "$build/fuzz-crashes"
for t in "${targets[@]}"; do
    work=$build/fuzz-corpus/$t
    mkdir -p "$work"
    dirs=("$work" "tests/fuzz/corpus/$t")
    [[ -d tests/fuzz/regressions/$t ]] && dirs+=("tests/fuzz/regressions/$t")
    log=$build/fuzz-$t.log
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=20000 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-crashes/$t-" ${FUZZ_ARGS:-} "${dirs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "fuzz $t: ok (${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l))"
    else
        failed=$((failed + 1))
        echo "fuzz $t: FAILED (exit $rc); log $log"
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -n 10
    fi
done
echo "fuzz: $passed passed, $failed failed, 0 skipped"
[[ $failed -eq 0 ]]
