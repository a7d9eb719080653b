#!/usr/bin/env bash
# Benchmark: posternd against a private Dovecot auth service on the same
# passwd-file, AUTH PLAIN over a unix socket, {PLAIN} and {SHA512-CRYPT} users,
# 1 connection x 1 in flight and 32 connections x 8 in flight (pipelined).
# More cases, each on another instance of both servers:
#   SHA512-CRYPT/cached   repeat logins of the same 1000 users with each
#                         server's auth cache on (postern [cache]; Dovecot
#                         auth_cache_size = 10M)
#   SHA512-CRYPT/delay2s  wrong passwords only, failure delay 2 s on both; the
#                         latency columns show how close each reply comes to
#                         its 2000 ms deadline
#   1m                    PLAIN logins spread over a passwd-file of 1,000,000
#                         users: load time, RSS and auths/s beside the
#                         1,000-user PLAIN case (Dovecot's auth process runs
#                         under its default memory limit and may refuse it),
#                         and beside "1k": the first 1,000 lines of the same
#                         file (the same names and line lengths), every one
#                         of them logging in, so that the ratio is the cost
#                         of the table's size alone
#   BENCH_VARIANTS="cached delay2s 1m"   which of these to run (default all; "" for none)
#
# Two yardsticks run in the same pass: tests/bench/limit_server (the cheapest
# auth-client responder: handshake, then OK for every AUTH) on the PLAIN cases,
# and tests/bench/crypt_limit (parallel crypt_rn loops through the libcrypt
# posternd links). The summary ends with each postern figure as a fraction of
# what they reach on this machine.
#
#   bash tests/bench/run.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Environment:
#   BENCH_DURATION=6        measured seconds per run (plus BENCH_WARMUP=1 before)
#   BENCH_SERVERS="postern dovecot limit"   which servers to measure
#   BENCH_WRONG_RATIO=0     fraction of requests with a wrong password
#   BENCH_KEEP=1            keep the temp dir (configs, logs, raw results)
#   BENCH_SUITE=ldap|sql|http  run tests/bench/ldap_bench.py, sql_bench.py or http_bench.py instead
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

# BENCH_SUITE=ldap, sql or http runs tests/bench/ldap_bench.py, sql_bench.py
# or http_bench.py instead (each starts its own server; same BENCH_* variables).
case ${BENCH_SUITE:-passwd-file} in
passwd-file) ;;
ldap | sql | http) exec python3 "$SRC/tests/bench/${BENCH_SUITE}_bench.py" "$BUILD" ;;
*) echo "run.sh: unknown BENCH_SUITE '$BENCH_SUITE' (passwd-file, ldap, sql, http)" >&2; exit 2 ;;
esac

DURATION=${BENCH_DURATION:-6}
WARMUP=${BENCH_WARMUP:-1}
SERVERS=${BENCH_SERVERS:-postern dovecot limit}
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

VARIANTS=${BENCH_VARIANTS-cached delay2s 1m}
# 1m: 1,000,000 {PLAIN} users with mail-server-like lines (about 90 bytes
# each); the load generator logs in as every tenth of them.
USERS1M=$TMP/users-1m
USERS1K=$TMP/users-1k
if [[ " $VARIANTS " == *" 1m "* ]]; then
    awk 'BEGIN { srand(7); for (i = 0; i < 1000000; i++) {
        pw = sprintf("pw%07d-%09d", i, int(rand() * 1e9))
        printf "m%07d@example.org:{PLAIN}%s:5000:5000::/var/vmail/example.org/m%07d::\n", i, pw, i > "/dev/stderr"
        if (i % 10 == 0) printf "m%07d@example.org:%s\n", i, pw
    } }' >"$TMP/creds-1m" 2>"$USERS1M"
    chmod 0644 "$USERS1M"
    echo "1m: $USERS1M, $(wc -l <"$USERS1M") users, $(($(stat -c %s "$USERS1M") / 1000000)) MB"
    head -n 1000 "$USERS1M" >"$USERS1K"
    chmod 0644 "$USERS1K"
    awk -F: '{ sub(/^\{PLAIN\}/, "", $2); print $1 ":" $2 }' "$USERS1K" >"$TMP/creds-1k"
    VARIANTS=${VARIANTS/1m/1k 1m}
fi

RESULTS=$TMP/results
: >"$RESULTS"
# Per server and variant: load time and RSS (1m).
MEMORY=$TMP/memory
: >"$MEMORY"

# rss_kb PID: resident set of a process in KiB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# cpu_ticks PID: CPU time (user + system, clock ticks) of PID and its
# children (Dovecot's auth process is a child of its master).
cpu_ticks() {
    local p total=0
    for p in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# first_login NAME: both servers read a passwd-file on its first lookup; one
# login through NAME's socket, timed (start-up excluded). The load generator
# gets one credential, not the 100,000 of creds-1m, which would take it about
# half a second to read.
first_login() {
    local t0
    head -n 1 "$TMP/creds-1m" >"$TMP/creds-1m-first"
    t0=$(date +%s.%N)
    "$LOADGEN" --socket "$TMP/$1-auth" --requests 1 --users "$TMP/creds-1m-first" --label "$1/first" >/dev/null 2>&1 || true
    awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.2f", t1 - t0}'
}

# users_file VARIANT: the passwd-file both servers of that variant read.
users_file() {
    case $1 in
    1m) echo "$USERS1M" ;;
    1k) echo "$USERS1K" ;;
    *) echo "$USERS" ;;
    esac
}

# Per running server: its socket, pid and log file.
declare -A SOCK SPID SLOG

# run_one SERVER SCHEME CONNS INFLIGHT: one measurement; skipped (with the end of
# the server's log) if the server process has died.
run_one() {
    local server=$1 scheme=$2 conns=$3 inflight=$4 variant=${5:-} rc=0 wrong=$WRONG case=$2 creds=$TMP/creds-$2
    if [[ -n $variant ]]; then
        server=$server+$variant
        case=$scheme/$variant
        if [[ $variant == delay2s ]]; then wrong=1; fi
        if [[ $variant == 1m || $variant == 1k ]]; then creds=$TMP/creds-$variant; fi
    fi
    [[ -n ${SOCK[$server]:-} ]] || return 0
    [[ $server != limit || $scheme == PLAIN ]] || return 0   # OK without a hash would measure nothing
    if ! kill -0 "${SPID[$server]}" 2>/dev/null; then
        echo "run.sh: $server (pid ${SPID[$server]}) is not running; last lines of ${SLOG[$server]}:" >&2
        tail -n 5 "${SLOG[$server]}" | sed "s/^/  $server: /" >&2
        failed=1
        unset "SOCK[$server]"
        return 0
    fi
    local before after
    before=$(cpu_ticks "${SPID[$server]}")
    "$LOADGEN" --socket "${SOCK[$server]}" --connections "$conns" --inflight "$inflight" \
        --duration "$DURATION" --warmup "$WARMUP" --users "$creds" \
        --wrong-ratio "$wrong" --label "${server%%+*}/$case/${conns}x$inflight" \
        >"$TMP/out" || rc=$?
    after=$(cpu_ticks "${SPID[$server]}")
    sed '/^RESULT /d' "$TMP/out"
    # The server's CPU over the whole run, warm-up included (as answered=).
    grep '^RESULT ' "$TMP/out" | sed "s/\$/ server_cpu_ticks=$((after - before)) hz=$(getconf CLK_TCK)/" >>"$RESULTS" || true
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
    local variant=${1:-} posternd=$BUILD/posternd pid name=postern delay=0 cache="" users level=warning t0
    if [[ -n $variant ]]; then name=postern+$variant; fi
    # The same log level as the 1,000-user case: at "info" every login
    # writes a result line, which costs about a fifth of the throughput.
    users=$(users_file "$variant")
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
level = "$level"

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
path = "$users"

[[userdb]]
driver = "passwd-file"
path = "$users"
EOF
    echo "$name: $posternd, failure delay ${delay}s, cache ${cache:+on}${cache:-off}"
    t0=$(date +%s.%N)
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
    if [[ $variant == 1m ]]; then
        t0=$(first_login "$name")
        echo "postern 1m: first login after $t0 s (the file is read then), RSS $(($(rss_kb "$pid") / 1024)) MiB" | tee -a "$MEMORY"
    fi
}

# --- limit -------------------------------------------------------------------
start_limit() {
    local variant=${1:-} pid name=limit bin=$BUILD/tests/bench/limit_server
    [[ -z $variant ]] || return 0   # a yardstick for the main PLAIN cases only
    if [[ ! -x $bin ]]; then
        echo "limit: $bin not built, skipped"
        return 0
    fi
    "$bin" "$TMP/$name-auth" 2>"$TMP/$name.log" &
    pid=$!
    PIDS+=("$pid")
    if ! wait_for limit_server "$pid" test -S "$TMP/$name-auth"; then
        failed=1
        stop_pid "$pid"
        forget_pid "$pid"
        return 0
    fi
    echo "limit: $bin (handshake, then OK for every AUTH; one thread, epoll)"
    SOCK[$name]=$TMP/$name-auth
    SPID[$name]=$pid
    SLOG[$name]=$TMP/$name.log
}

# --- dovecot -----------------------------------------------------------------
start_dovecot() {
    local variant=${1:-} pid extra="" name=dovecot delay=0 cache="" users t0 auth_pid
    if [[ -n $variant ]]; then name=dovecot+$variant; fi
    users=$(users_file "$variant")
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
  args = $users
}
userdb {
  driver = passwd-file
  args = $users
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
    if [[ $variant == 1m ]]; then
        t0=$(first_login "$name")
        # Process titles read "dovecot-<instance_name>/auth".
        auth_pid=$(pgrep -P "$pid" -f '/auth$' | head -n 1 || true)
        if [[ -n $auth_pid ]]; then auth_pid="$(($(rss_kb "$auth_pid") / 1024)) MiB"; else auth_pid="unknown (no auth process)"; fi
        echo "dovecot 1m: first login after $t0 s, auth process RSS $auth_pid" | tee -a "$MEMORY"
    fi
}

# Both servers run side by side (an idle one costs nothing) and each case is
# measured on one right after the other, so both see the same machine noise.
for server in $SERVERS; do
    case $server in
    postern | dovecot | limit) ;;
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
    scheme=SHA512-CRYPT
    [[ $variant != 1m && $variant != 1k ]] || scheme=PLAIN
    for load in "${LOADS[@]}"; do
        read -r conns inflight <<<"$load"
        for server in $SERVERS; do run_one "$server" "$scheme" "$conns" "$inflight" "$variant"; done
    done
done
echo

# crypt_rn alone, on one thread and on every core (same libcrypt as posternd).
CRYPT_LIMIT=$BUILD/tests/bench/crypt_limit
: >"$TMP/crypt"
if [[ -x $CRYPT_LIMIT ]]; then
    # The first SHA512-CRYPT user's password and hash: the same cost per hash.
    crypt_user=$(head -n 1 "$TMP/creds-SHA512-CRYPT")
    for threads in 1 "$(nproc)"; do
        "$CRYPT_LIMIT" "$threads" "$DURATION" "${crypt_user#*:}" "$(head -n 1 "$TMP/hashes")" | tee -a "$TMP/crypt"
    done
    echo
fi

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
echo "== summary: auths/s (higher is better), latency in ms, the server's CPU time per login in us"
echo "   (all its processes, from /proc); ratio = postern / dovecot auths/s"
awk '
function field(line, key,    n, i, parts, kv) {
    n = split(line, parts, " ")
    for (i = 1; i <= n; i++) {
        if (index(parts[i], key "=") == 1) return substr(parts[i], length(key) + 2)
    }
    return ""
}
FILENAME ~ /crypt$/ {
    crypt[field($0, "threads")] = field($0, "hashes_per_s")
    crypt_us[field($0, "threads")] = field($0, "us_per_hash")
    if (field($0, "threads") + 0 > cores) cores = field($0, "threads") + 0
    next
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
    if (field($0, "answered") + 0 > 0 && field($0, "hz") + 0 > 0)
        cpu[l[1], key] = 1e6 * field($0, "server_cpu_ticks") / field($0, "hz") / field($0, "answered")
}
function us(s, key) { return ((s, key) in cpu) ? sprintf("%8.1f", cpu[s, key]) : sprintf("%8s", "-") }
function cell(s, key) {
    if (!((s, key) in rate)) return sprintf("%10s %8s %8s", "-", "-", "-")
    return sprintf("%10.0f %8.3f %8.3f", rate[s, key], p50[s, key], p99[s, key])
}
function have(s, key) { return ((s, key) in rate) && (rate[s, key] + 0) > 0 }
END {
    printf "%-26s | %10s %8s %8s %8s | %10s %8s %8s %8s | %6s\n", "case (conns x inflight)", \
        "postern/s", "p50", "p99", "cpu us", "dovecot/s", "p50", "p99", "cpu us", "ratio"
    for (i = 1; i <= n; i++) {
        k = order[i]
        ratio = "-"
        if (have("postern", k) && have("dovecot", k))
            ratio = sprintf("%.2f", rate["postern", k] / rate["dovecot", k])
        note = ""
        if (errs["postern", k] > 0 || errs["dovecot", k] > 0) note = "  (errors, see above)"
        printf "%-26s | %s %s | %s %s | %6s%s\n", k, cell("postern", k), us("postern", k), cell("dovecot", k), \
            us("dovecot", k), ratio, note
    }
    # The yardsticks: limit_server on the same load, crypt_rn loops.
    print ""
    print "== postern against what this machine allows"
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (!have("postern", k)) continue
        if (have("limit", k))
            printf "%-26s | limit_server %10.0f/s, p50 %.3f ms | postern at %5.1f %%\n", k, rate["limit", k], \
                p50["limit", k], 100 * rate["postern", k] / rate["limit", k]
    }
    if (1 in crypt) {
        k = "SHA512-CRYPT 1x1"
        rtt = have("limit", "PLAIN 1x1") ? p50["limit", "PLAIN 1x1"] * 1000 : 0
        bound = 1e6 / (crypt_us[1] + rtt)
        printf "%-26s | 1 / (hash %.0f us + round trip %.0f us) = %.0f/s", k, crypt_us[1], rtt, bound
        if (have("postern", k)) printf " | postern at %5.1f %%", 100 * rate["postern", k] / bound
        printf "\n"
    }
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (k !~ /^PLAIN\/1m /) continue
        base = k
        sub(/\/1m/, "", base)
        if (have("postern", k) && have("postern", base))
            printf "%-26s | postern with 1,000,000 users at %5.1f %% of its 1,000-user %s\n", k, \
                100 * rate["postern", k] / rate["postern", base], base
        same = k
        sub(/\/1m/, "/1k", same)
        if (have("postern", k) && have("postern", same))
            printf "%-26s | postern with 1,000,000 users at %5.1f %% of the first 1,000 of that file (%s)\n", k, \
                100 * rate["postern", k] / rate["postern", same], same
    }
    if (cores > 1 && (cores in crypt)) {
        k = "SHA512-CRYPT 32x8"
        printf "%-26s | %d parallel crypt_rn loops %.0f/s", k, cores, crypt[cores]
        if (have("postern", k)) printf " | postern at %5.1f %%", 100 * rate["postern", k] / crypt[cores]
        printf "\n"
    }
}' "$RESULTS" "$TMP/crypt"
if [[ -s $MEMORY ]]; then
    echo
    echo "== 1,000,000 users"
    cat "$MEMORY"
fi
exit "$failed"
