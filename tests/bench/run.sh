#!/usr/bin/env bash
# Benchmark: posternd against a private Dovecot auth service on the same
# passwd-file, AUTH PLAIN over a unix socket, {PLAIN} and {SHA512-CRYPT} users,
# 1 connection x 1 in flight and 32 connections x 8 in flight (pipelined).
# Two more cases, each on a second instance of both servers:
#   SHA512-CRYPT/cached   repeat logins of the same 1000 users with each
#                         server's auth cache on (postern [cache]; Dovecot
#                         auth_cache_size = 10M)
#   SHA512-CRYPT/delay2s  wrong passwords only, failure delay 2 s on both; the
#                         latency columns show how close each reply comes to
#                         its 2000 ms deadline
#   BENCH_VARIANTS="cached delay2s"   which of these to run ("" for none)
#
#   bash tests/bench/run.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Environment:
#   BENCH_DURATION=6        measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_SERVERS="postern dovecot"   which servers to measure
#   BENCH_WRONG_RATIO=0     fraction of requests with a wrong password
#   BENCH_KEEP=1            keep the temp dir (configs, logs, raw results)
#   BENCH_SUITE=ldap|sql    run tests/bench/ldap_bench.py or sql_bench.py instead
#
# In the main cases both servers run with failure delay 0 and their caches off,
# so every request is a cold passwd-file verification.
# The load generator is one thread on the same machine: with few cores it takes a
# core the servers would otherwise use, which caps the cheap ({PLAIN}) cases.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-build}
if [[ ! -d $BUILD && -d $SRC/$BUILD ]]; then BUILD=$SRC/$BUILD; fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "run.sh: no build dir '${1:-build}'" >&2; exit 2; }

# BENCH_SUITE=ldap or sql runs tests/bench/ldap_bench.py or sql_bench.py
# instead (each starts its own directory server; same BENCH_* variables).
case ${BENCH_SUITE:-passwd-file} in
passwd-file) ;;
ldap | sql) exec python3 "$SRC/tests/bench/${BENCH_SUITE}_bench.py" "$BUILD" ;;
*) echo "run.sh: unknown BENCH_SUITE '$BENCH_SUITE' (passwd-file, ldap, sql)" >&2; exit 2 ;;
esac

DURATION=${BENCH_DURATION:-6}
WARMUP=${BENCH_WARMUP:-1}
SERVERS=${BENCH_SERVERS:-postern dovecot}
WRONG=${BENCH_WRONG_RATIO:-0}
NUSERS=1000
LOADS=("1 1" "32 8")          # connections, in flight per connection
SCHEMES=(PLAIN SHA512-CRYPT)
STARTUP_TIMEOUT=15            # seconds for a server to start listening

TMP=$(mktemp -d /tmp/postern-bench.XXXXXX)
# Dovecot's auth process runs as its internal user and must reach the users file.
chmod 0755 "$TMP"

PIDS=()
failed=0

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: pid $pid ignored SIGTERM, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "run.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# --- machine -----------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu ]] || cpu=$(uname -m)
echo "postern benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) CPUs, $cpu, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if git -C "$SRC" rev-parse --short HEAD >/dev/null 2>&1; then
    echo "source: commit $(git -C "$SRC" rev-parse --short HEAD) (plus any uncommitted changes)"
fi
if awk -v n="$(nproc)" '{exit !($1 > n / 4)}' /proc/loadavg; then
    echo "warning: the machine is busy (load average above nproc/4); figures will be noisy"
fi
echo "runs: ${WARMUP}s warm-up + ${DURATION}s measured each; wrong-password ratio $WRONG; $NUSERS users per scheme"
echo

# --- load generator ----------------------------------------------------------
LOADGEN=$BUILD/tests/bench/loadgen
if [[ ! -x $LOADGEN ]]; then
    LOADGEN=$TMP/loadgen
    echo "building loadgen (not found in $BUILD/tests/bench)"
    "${CXX:-c++}" -std=c++20 -O2 -o "$LOADGEN" "$SRC/tests/bench/loadgen.cpp"
fi

# --- users -------------------------------------------------------------------
# One passwd-file holds both cases: pNNNN users with {PLAIN} passwords and
# cNNNN users with {SHA512-CRYPT} hashes (default 5000 rounds). The loadgen
# files list user:password for each case.
USERS=$TMP/users
for ((i = 0; i < NUSERS; i++)); do
    printf 'pw%04d-%s\n' "$i" "$RANDOM$RANDOM"
done >"$TMP/passwords"
awk '{printf "p%04d:%s\n", NR - 1, $0}' "$TMP/passwords" >"$TMP/creds-PLAIN"
awk '{printf "c%04d:%s\n", NR - 1, $0}' "$TMP/passwords" >"$TMP/creds-SHA512-CRYPT"

hash_sha512() {
    if python3 -W ignore -c 'import crypt' 2>/dev/null; then
        python3 -W ignore -c '
import crypt, sys
for line in open(sys.argv[1]):
    print(crypt.crypt(line.rstrip("\n"), crypt.mksalt(crypt.METHOD_SHA512)))
' "$TMP/passwords"
    elif openssl passwd -6 -salt abcdefgh x >/dev/null 2>&1; then
        openssl passwd -6 -in "$TMP/passwords"
    elif command -v mkpasswd >/dev/null; then
        while IFS= read -r pw; do printf '%s' "$pw" | mkpasswd -m sha-512 -s; done <"$TMP/passwords"
    else
        echo "run.sh: need python3 crypt, openssl or mkpasswd for SHA512-CRYPT hashes" >&2
        return 1
    fi
}
hash_sha512 >"$TMP/hashes"
[[ $(grep -c '^[$]6[$]' "$TMP/hashes") == "$NUSERS" ]] || { echo "run.sh: hashing failed" >&2; exit 1; }
{
    awk -F: '{printf "%s:{PLAIN}%s:1000:1000::/nonexistent::\n", $1, $2}' "$TMP/creds-PLAIN"
    paste -d: <(cut -d: -f1 "$TMP/creds-SHA512-CRYPT") "$TMP/hashes" |
        awk -F: '{printf "%s:{SHA512-CRYPT}%s:1000:1000::/nonexistent::\n", $1, $2}'
} >"$USERS"
chmod 0644 "$USERS"

RESULTS=$TMP/results
: >"$RESULTS"

# Per running server: its socket, pid and log file.
declare -A SOCK SPID SLOG

# run_one SERVER SCHEME CONNS INFLIGHT: one measurement; skipped (with the end of
# the server's log) if the server process has died.
run_one() {
    local server=$1 scheme=$2 conns=$3 inflight=$4 variant=${5:-} rc=0 wrong=$WRONG case=$2
    if [[ -n $variant ]]; then
        server=$server+$variant
        case=$scheme/$variant
        if [[ $variant == delay2s ]]; then wrong=1; fi
    fi
    [[ -n ${SOCK[$server]:-} ]] || return 0
    if ! kill -0 "${SPID[$server]}" 2>/dev/null; then
        echo "run.sh: $server (pid ${SPID[$server]}) is not running; last lines of ${SLOG[$server]}:" >&2
        tail -n 5 "${SLOG[$server]}" | sed "s/^/  $server: /" >&2
        failed=1
        unset "SOCK[$server]"
        return 0
    fi
    "$LOADGEN" --socket "${SOCK[$server]}" --connections "$conns" --inflight "$inflight" \
        --duration "$DURATION" --warmup "$WARMUP" --users "$TMP/creds-$scheme" \
        --wrong-ratio "$wrong" --label "${server%%+*}/$case/${conns}x$inflight" \
        >"$TMP/out" || rc=$?
    sed '/^RESULT /d' "$TMP/out"
    grep '^RESULT ' "$TMP/out" >>"$RESULTS" || true
    if ((rc != 0)); then
        echo "  ^ loadgen exit status $rc (errors or unexpected replies)"
        failed=1
    fi
}

# wait_for WHAT PID TEST...: poll until the command succeeds or PID dies.
wait_for() {
    local what=$1 pid=$2 i
    shift 2
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        "$@" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: $what exited during startup" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "run.sh: $what not ready after ${STARTUP_TIMEOUT}s" >&2
    return 1
}

# --- postern -----------------------------------------------------------------
start_postern() {
    local variant=${1:-} posternd=$BUILD/posternd pid name=postern delay=0 cache=""
    if [[ -n $variant ]]; then name=postern+$variant; fi
    if [[ $variant == delay2s ]]; then delay=2; fi
    if [[ $variant == cached ]]; then cache=$(printf '[cache]\nttl = "1h"\n'); fi
    if [[ ! -x $posternd ]]; then
        echo "run.sh: $posternd not built" >&2
        failed=1
        return 0
    fi
    cat >"$TMP/$name.conf" <<EOF
[daemon]
hash_threads = 0

[log]
level = "warning"

[auth]
mechanisms = ["PLAIN", "LOGIN"]
failure_delay = $delay

[penalty]
enabled = false

$cache

[[listener]]
type = "unix"
path = "$TMP/$name-auth"
mode = "0666"
role = "client"

[[passdb]]
driver = "passwd-file"
path = "$USERS"

[[userdb]]
driver = "passwd-file"
path = "$USERS"
EOF
    echo "$name: $posternd, failure delay ${delay}s, cache ${cache:+on}${cache:-off}"
    "$posternd" -c "$TMP/$name.conf" 2>"$TMP/$name.log" &
    pid=$!
    PIDS+=("$pid")
    if ! wait_for posternd "$pid" grep -q 'posternd: ready' "$TMP/$name.log"; then
        sed 's/^/  posternd: /' "$TMP/$name.log" >&2
        failed=1
        stop_pid "$pid"
        forget_pid "$pid"
        return 0
    fi
    SOCK[$name]=$TMP/$name-auth
    SPID[$name]=$pid
    SLOG[$name]=$TMP/$name.log
}

# --- dovecot -----------------------------------------------------------------
start_dovecot() {
    local variant=${1:-} pid extra="" name=dovecot delay=0 cache=""
    if [[ -n $variant ]]; then name=dovecot+$variant; fi
    if [[ $variant == delay2s ]]; then delay=2s; fi
    if [[ $variant == cached ]]; then cache=$(printf 'auth_cache_size = 10M\nauth_cache_ttl = 1 hour\n'); fi
    if ! command -v dovecot >/dev/null; then
        echo "dovecot: not installed (package dovecot-core), skipped"
        return 0
    fi
    mkdir -p "$TMP/$name-run" "$TMP/$name-state"
    if [[ $(id -u) != 0 ]]; then
        # Unprivileged private instance: every service runs as the invoking user.
        extra="default_internal_user = $(id -un)
default_internal_group = $(id -gn)
default_login_user = $(id -un)"
    fi
    cat >"$TMP/$name.conf" <<EOF
# Private Dovecot running only its auth service, for comparison.
base_dir = $TMP/$name-run
state_dir = $TMP/$name-state
instance_name = postern-bench-$name-$$
protocols =
ssl = no
log_path = $TMP/$name.log
$extra
$cache
auth_mechanisms = plain login
auth_failure_delay = $delay
disable_plaintext_auth = no
service auth {
  unix_listener auth-client {
    path = $TMP/$name-auth
    mode = 0666
  }
}
passdb {
  driver = passwd-file
  args = $USERS
}
userdb {
  driver = passwd-file
  args = $USERS
}
EOF
    echo "$name: $(command -v dovecot) $(dovecot --version 2>/dev/null | head -n 1), failure delay $delay, auth cache ${cache:+on}${cache:-off}"
    dovecot -c "$TMP/$name.conf" -F 2>>"$TMP/$name.log" &
    pid=$!
    PIDS+=("$pid")
    if ! wait_for dovecot "$pid" test -S "$TMP/$name-auth"; then
        sed 's/^/  dovecot: /' "$TMP/$name.log" >&2
        failed=1
        stop_pid "$pid"
        forget_pid "$pid"
        return 0
    fi
    SOCK[$name]=$TMP/$name-auth
    SPID[$name]=$pid
    SLOG[$name]=$TMP/$name.log
}

# Both servers run side by side (an idle one costs nothing) and each case is
# measured on one right after the other, so both see the same machine noise.
VARIANTS=${BENCH_VARIANTS-cached delay2s}
for server in $SERVERS; do
    case $server in
    postern | dovecot) ;;
    *) echo "run.sh: unknown server '$server' in BENCH_SERVERS" >&2; exit 2 ;;
    esac
    for variant in "" $VARIANTS; do "start_$server" "$variant"; done
done
echo

for scheme in "${SCHEMES[@]}"; do
    for load in "${LOADS[@]}"; do
        read -r conns inflight <<<"$load"
        for server in $SERVERS; do run_one "$server" "$scheme" "$conns" "$inflight"; done
    done
done
for variant in $VARIANTS; do
    for load in "${LOADS[@]}"; do
        read -r conns inflight <<<"$load"
        for server in $SERVERS; do run_one "$server" SHA512-CRYPT "$conns" "$inflight" "$variant"; done
    done
done
echo

for server in "${!SPID[@]}"; do
    stop_pid "${SPID[$server]}"   # Dovecot's master stops its children on SIGTERM
    forget_pid "${SPID[$server]}"
    if grep -Eqi 'error|fatal|panic|critical' "${SLOG[$server]}"; then
        echo "$server logged errors:"
        grep -Ei 'error|fatal|panic|critical' "${SLOG[$server]}" | head -n 10 | sed 's/^/  /'
        echo
    fi
done

# --- summary -----------------------------------------------------------------
echo "== summary: auths/s (higher is better), latency in ms; ratio = postern / dovecot auths/s"
awk '
function field(line, key,    n, i, parts, kv) {
    n = split(line, parts, " ")
    for (i = 1; i <= n; i++) {
        if (index(parts[i], key "=") == 1) return substr(parts[i], length(key) + 2)
    }
    return ""
}
{
    label = field($0, "label")
    nl = split(label, l, "/")
    key = (nl == 4) ? l[2] "/" l[3] " " l[4] : l[2] " " l[3]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    rate[l[1], key] = field($0, "auths_per_s")
    p50[l[1], key] = field($0, "p50_ms")
    p99[l[1], key] = field($0, "p99_ms")
    errs[l[1], key] = field($0, "errors") + field($0, "unexpected")
}
function cell(s, key) {
    if (!((s, key) in rate)) return sprintf("%10s %8s %8s", "-", "-", "-")
    return sprintf("%10.0f %8.3f %8.3f", rate[s, key], p50[s, key], p99[s, key])
}
END {
    printf "%-30s | %10s %8s %8s | %10s %8s %8s | %6s\n", "case (conns x inflight)", \
        "postern/s", "p50", "p99", "dovecot/s", "p50", "p99", "ratio"
    for (i = 1; i <= n; i++) {
        k = order[i]
        ratio = "-"
        if (((("postern", k) in rate) && (("dovecot", k) in rate)) && (rate["dovecot", k] + 0) > 0 && (rate["postern", k] + 0) > 0)
            ratio = sprintf("%.2f", rate["postern", k] / rate["dovecot", k])
        note = ""
        if (errs["postern", k] > 0 || errs["dovecot", k] > 0) note = "  (errors, see above)"
        printf "%-30s | %s | %s | %6s%s\n", k, cell("postern", k), cell("dovecot", k), ratio, note
    }
}' "$RESULTS"
exit "$failed"
