#!/usr/bin/env bash
# The whole test suite: installs what it needs and checks that each real peer
# works (tests/check_deps.sh; a missing one ends the run as one failure) and
# builds or reuses the Debian 13 root with Dovecot 2.4 (tests/dovecot24_root.sh), then
#   1. builds with warnings as errors and runs the doctest unit tests and the
#      integration tests against real peers;
#   2. the same again in a build with ASan + UBSan (any report fails);
#   3. a short libFuzzer pass over every fuzz target (tests/fuzz/run.sh);
#   4. a check that no log or CLI output of the whole run holds a secret;
# and ends with one line "N passed, N failed, N skipped" counted from all of
# them (each fuzz target and the secrets check count as one test).
#
# Environment: POSTERN_TEST_BUILD (default ./build-test), POSTERN_ASAN_BUILD
# (./build-asan), POSTERN_FUZZ_BUILD (./build-fuzz), POSTERN_FUZZ_SECONDS (20
# per target); POSTERN_TEST_SANITIZE=0 / POSTERN_TEST_FUZZ=0 leave a part out;
# CCACHE_DIR (default /var/cache/postern-ci/ccache, outside the checkout, so a
# fresh clone on the same machine rebuilds from the cache).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
build=${POSTERN_TEST_BUILD:-$root/build-test}
asan_build=${POSTERN_ASAN_BUILD:-$root/build-asan}
fuzz_seconds=${POSTERN_FUZZ_SECONDS:-20}

started=$SECONDS

# Peers first: a missing one would otherwise show up as skips or as failures
# far from their cause.
deps_ok=1
bash contrib/install-deps.sh --test || deps_ok=0
echo "== peers (tests/check_deps.sh)"
bash tests/check_deps.sh || deps_ok=0
if ((deps_ok == 0)); then
    echo "peers missing (see above): nothing else was run"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi

# Dovecot 2.4's programs come from a Debian 13 root, built once through the
# machine's Debian mirror and cached outside the checkout; without it the
# Dovecot 2.4 tests skip and say why.
echo "== Dovecot 2.4 root (tests/dovecot24_root.sh)"
bash tests/dovecot24_root.sh || echo "no Dovecot 2.4 root: tests/integration/test_dovecot24.py will skip"

# meson puts ccache in front of the compiler when it is on PATH (normal and
# ASan builds). The fuzz build names CXX=clang++, which meson leaves alone:
# ccache's clang++ in /usr/lib/ccache goes first on PATH for that step.
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/postern-ci/ccache}
if mkdir -p "$CCACHE_DIR" 2>/dev/null; then
    grep -qs '^max_size' "$CCACHE_DIR/ccache.conf" || ccache -M 5G >/dev/null
else
    echo "cannot create $CCACHE_DIR: ccache uses its default directory"
    unset CCACHE_DIR
fi
# Every CI run builds in a fresh clone at another path: paths below the
# checkout are hashed relative to it, and the build directory is left out of
# the hash, so a new clone of the same sources hits the cache.
export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1

passed=0 failed=0 skipped=0

# add_counts LINE: adds "N passed, N failed, N skipped" from LINE; RC != 0
# with no counted failure counts as one failure.
add_counts() {
    local line=$1 rc=$2 what=$3 p f s
    if [[ -z "$line" ]]; then
        echo "$what produced no summary (exit $rc)"
        failed=$((failed + 1))
        return
    fi
    read -r p f s < <(sed -E 's/.*[^0-9]([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/' <<<" $line")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [[ $rc -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
}

setup_build() {  # DIR [meson options...]
    local dir=$1
    shift
    if [[ ! -f "$dir/build.ninja" ]]; then
        meson setup "$dir" -Dwerror=true "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -n 60 "$dir.ninja.log"; return 1; }
}

run_unit() {  # BUILD LABEL
    echo "== unit tests (doctest$2)"
    local log line rc
    log=$(mktemp)
    "$1/tests/unit_tests" 2>&1 | tee "$log" | tail -n 20
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^\[doctest\] test cases:' "$log" | tail -1)
    [[ -n "$line" ]] && line=$(sed -E 's/.*\| *([0-9]+) passed \| *([0-9]+) failed \| *([0-9]+) skipped.*/\1 passed, \2 failed, \3 skipped/' <<<"$line")
    add_counts "$line" "$rc" "unit tests$2"
    rm -f "$log"
}

run_integration() {  # BUILD LABEL
    echo "== integration tests (posternd, Postfix + swaks, doveadm$2)"
    local log line rc
    log=$(mktemp)
    rm -rf "$1/test-logs"
    POSTERN_BUILD="$1" POSTERN_LOG_DIR="$1/test-logs" python3 tests/integration/run.py 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -1)
    add_counts "$line" "$rc" "integration tests$2"
    rm -f "$log"
}

# 1. Normal build.
if setup_build "$build"; then
    run_unit "$build" ""
    run_integration "$build" ""
else
    echo "build failed"
    failed=$((failed + 1))
fi

# 2. ASan + UBSan build: any report aborts the process (unit tests) or is
# found in the daemon's stderr by the harness (integration tests).
if [[ ${POSTERN_TEST_SANITIZE:-1} != 0 ]]; then
    echo "== sanitizer build (ASan + UBSan) in $asan_build"
    if setup_build "$asan_build" -Db_sanitize=address,undefined -Db_lundef=false; then
        export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        # Leaks inside libldap/liblber only (why: tests/lsan.supp).
        export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
        run_unit "$asan_build" ", ASan + UBSan"
        # Everything is several times slower here: a smaller load.
        POSTERN_LOAD_REQUESTS=${POSTERN_ASAN_LOAD_REQUESTS:-200000} run_integration "$asan_build" ", ASan + UBSan"
        unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    else
        echo "sanitizer build failed"
        failed=$((failed + 1))
    fi
fi

# 3. Short fuzz pass: each target counts as one test.
if [[ ${POSTERN_TEST_FUZZ:-1} != 0 ]]; then
    echo "== fuzzing (libFuzzer, ${fuzz_seconds}s per target)"
    fuzz_log=$(mktemp)
    PATH=/usr/lib/ccache:$PATH bash tests/fuzz/run.sh "$fuzz_seconds" 2>&1 | tee "$fuzz_log"
    rc=${PIPESTATUS[0]}
    add_counts "$(grep -E '^fuzz: [0-9]+ passed' "$fuzz_log" | tail -1)" "$rc" "fuzzing"
    rm -f "$fuzz_log"
fi

# 4. No secret in any log of the run.
echo "== secrets in logs"
log_dirs=()
for d in "$build/test-logs" "$asan_build/test-logs"; do [[ -d $d ]] && log_dirs+=("$d"); done
if ((${#log_dirs[@]})) && python3 tests/integration/check_secrets.py "${log_dirs[@]}"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "(total time $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s)"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
