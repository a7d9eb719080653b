#!/usr/bin/env bash
# Checks that every real peer the tests drive can do its job here, not just that
# it is installed. tests/run.sh runs it first; contrib/install-deps.sh --test
# installs all of it. One line per peer, "ok NAME" or
#   MISSING NAME: <what failed> (install Debian package PKG)
# and exit 1 when any peer is missing.
set -uo pipefail

# Paths as the tests find them (tests/integration/databases.py, pam_support.py,
# test_imap.py): not all of them are on PATH.
PG_BIN=/usr/lib/postgresql/15/bin
LIBDIR=/usr/lib/x86_64-linux-gnu
DOVECOT_LIBEXEC=/usr/lib/dovecot

repo=$(cd "$(dirname "$0")/.." && pwd)
missing=0
tmp=$(mktemp -d /tmp/postern-check-deps.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# check NAME PKG FUNCTION [ARGS...]: FUNCTION returns non-zero when the peer
# cannot do its job; its output then says what failed. PKG "-": no package helps.
check() {
    local name=$1 pkg=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        echo "ok $name"
    else
        # One line; Perl's @INC list says nothing useful here.
        out=$(sed -E 's/ \(@INC contains:.*//' <<<"$out" | tr '\n' ' ' | sed -E 's/ +/ /g; s/ $//' | cut -c1-200)
        if [[ $pkg == - ]]; then
            echo "MISSING $name: ${out:-check failed}"
        else
            [[ $pkg == *' '* ]] && pkg="packages $pkg" || pkg="package $pkg"
            echo "MISSING $name: ${out:-check failed} (install Debian $pkg)"
        fi
        missing=$((missing + 1))
    fi
}

# first_of PATH...: the first executable one, else nothing.
first_of() {
    local p
    for p in "$@"; do [[ -x $p ]] && { echo "$p"; return 0; }; done
    return 1
}

# first_file PATH...: the first that exists, else nothing.
first_file() {
    local p
    for p in "$@"; do [[ -e $p ]] && { echo "$p"; return 0; }; done
    return 1
}

# tool NAME: NAME on PATH or in the sbin directories (tests run as root, but
# PATH may lack them), as shutil.which plus the tests' fallbacks do.
tool() {
    command -v "$1" 2>/dev/null || first_of "/usr/sbin/$1" "/usr/bin/$1" "/sbin/$1" ||
        { echo "$1 not found" >&2; return 1; }
}

# --- the build ---------------------------------------------------------------

check_build() {
    local t
    for t in meson ninja g++ pkg-config; do tool "$t" >/dev/null || return 1; done
}

check_ccache() {
    tool ccache >/dev/null || return 1
    ccache --version >/dev/null
}

check_clang_fuzzer() {
    tool clang++ >/dev/null || return 1
    # The fuzz build links -fsanitize=fuzzer with ASan and UBSan (tests/fuzz/meson.build).
    cat >"$tmp/fuzz.cpp" <<'EOF'
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return size > 0 && data[0] == 0xff ? 0 : 0;
}
EOF
    clang++ -fsanitize=fuzzer,address,undefined -o "$tmp/fuzz" "$tmp/fuzz.cpp" || return 1
    "$tmp/fuzz" -runs=16 >"$tmp/fuzz.log" 2>&1 || { tail -n 5 "$tmp/fuzz.log"; return 1; }
}

check_libsystemd() {
    pkg-config --exists libsystemd || { echo "pkg-config finds no libsystemd"; return 1; }
    [[ -e /usr/include/systemd/sd-daemon.h ]] || { echo "sd-daemon.h not found"; return 1; }
}

# The Redis client (src/util/redis) parses and encodes RESP with hiredis.
check_hiredis() {
    pkg-config --exists hiredis || { echo "pkg-config finds no hiredis"; return 1; }
    [[ -e /usr/include/hiredis/hiredis.h ]] || { echo "hiredis/hiredis.h not found"; return 1; }
}

# posternd's allocator (meson links it when pkg-config finds it).
check_jemalloc() {
    pkg-config --exists jemalloc || { echo "pkg-config finds no jemalloc"; return 1; }
    [[ -e /usr/include/jemalloc/jemalloc.h ]] || { echo "jemalloc/jemalloc.h not found"; return 1; }
}

# tests/util/redis_test.cpp and test_cluster.py start private redis-servers:
# no persistence, a unix socket and a loopback port in a temporary directory.
check_redis() {
    local r answer
    r=$(tool redis-server) || return 1
    tool redis-cli >/dev/null || return 1
    "$r" --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" --daemonize no \
        --logfile "$tmp/redis.log" &
    local pid=$! i
    for i in $(seq 50); do [[ -S $tmp/redis.sock ]] && break; sleep 0.1; done
    answer=$(redis-cli -s "$tmp/redis.sock" ping 2>&1)
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    [[ $answer == PONG ]] || { echo "redis-server did not answer PING: $answer"; return 1; }
}

# test_systemd.py passes real sockets to posternd through it.
check_socket_activate() {
    tool systemd-socket-activate >/dev/null || return 1
    systemd-socket-activate --version >/dev/null
}

# test_package.py: dpkg-buildpackage, debhelper (compat 13), lintian, and
# debootstrap when the clean Debian 12 root is not cached yet.
check_packaging() {
    local t
    for t in dpkg-buildpackage dh lintian fakeroot debootstrap; do tool "$t" >/dev/null || return 1; done
    dh_assistant supported-compat-levels 2>/dev/null | grep -q '"HIGHEST_STABLE_COMPAT_LEVEL":1[3-9]' ||
        { echo "debhelper too old (no compat 13)"; return 1; }
}

# --- the peers of the integration tests --------------------------------------

check_python() {
    tool python3 >/dev/null || return 1
    # The standard modules the harness and the tests import (crypt is optional:
    # the harness falls back to doveadm pw).
    python3 -c '
import sys
if sys.version_info < (3, 9):
    sys.exit(f"python {sys.version.split()[0]} is older than 3.9")
import csv, grp, hashlib, hmac, imaplib, json, pwd, resource, secrets, socket, struct, unittest'
}

check_openssl() {
    tool openssl >/dev/null || return 1
    # What the tests do with it: a self-signed certificate for Postfix's TLS,
    # an RSA key pair and a signature for the JWT tests.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
        -days 1 -subj /CN=localhost >/dev/null 2>&1 || { echo "openssl req -x509 failed"; return 1; }
    echo x | openssl dgst -sha256 -sign "$tmp/key.pem" >/dev/null
}

check_postfix() {
    tool postfix >/dev/null || return 1
    tool postconf >/dev/null || return 1
    postconf -d mail_version | grep -q '^mail_version = [0-9]' || { echo "postconf -d mail_version failed"; return 1; }
    getent passwd postfix >/dev/null || { echo "no postfix user"; return 1; }
    getent group postdrop >/dev/null || { echo "no postdrop group"; return 1; }
}

check_swaks() {
    tool swaks >/dev/null || return 1
    local support f
    support=$(swaks --support 2>&1)
    # PLAIN and LOGIN are "Basic AUTH"; STARTTLS is "TLS".
    for f in "Basic AUTH" "AUTH CRAM-MD5" "AUTH DIGEST-MD5" "TLS"; do
        grep -q "^=== $f supported" <<<"$support" || { grep -F "$f" <<<"$support"; return 1; }
    done
}

# swaks checks only that Authen::SASL loads; its DIGEST-MD5 client also needs
# Digest::HMAC_MD5, which libauthen-sasl-perl merely suggests. Run a real step.
check_perl_digest_md5() {
    perl -MDigest::HMAC_MD5 -MAuthen::SASL -e '
my $c = Authen::SASL->new(mechanism => "DIGEST-MD5",
                          callback => {user => "u", pass => "p", authname => "u"})
    ->client_new("smtp", "localhost");
$c->client_start;
my $r = $c->client_step(q{realm="r",nonce="n",qop="auth",charset=utf-8,algorithm=md5-sess});
die(($c->error || "no response") . "\n") unless defined $r && $r =~ /response=[0-9a-f]{32}/;'
}

# swaks --tls: the Net::SSLeay context swaks sets up before STARTTLS.
check_perl_tls() {
    perl -MNet::SSLeay -MIO::Socket::SSL -e '
Net::SSLeay::load_error_strings();
Net::SSLeay::SSLeay_add_ssl_algorithms();
Net::SSLeay::CTX_new() or die "Net::SSLeay::CTX_new failed\n";'
}

check_gsasl() {
    tool gsasl >/dev/null || return 1
    local mechs m
    mechs=$(gsasl --client-mechanisms 2>&1) || { echo "$mechs"; return 1; }
    for m in SCRAM-SHA-1 SCRAM-SHA-256 CRAM-MD5 DIGEST-MD5 PLAIN LOGIN; do
        grep -qw -- "$m" <<<"$mechs" || { echo "gsasl has no $m client"; return 1; }
    done
}

check_doveadm() {
    tool doveadm >/dev/null || return 1
    local out
    out=$(doveadm -c /dev/null pw -s SHA512-CRYPT -p check 2>&1)
    [[ $out == "{SHA512-CRYPT}\$6\$"* ]] || { echo "doveadm pw: $out"; return 1; }
}

check_dovecot_imap() {
    local d f
    d=$(tool dovecot) || return 1
    for f in imap imap-login; do
        [[ -x $DOVECOT_LIBEXEC/$f ]] || { echo "$DOVECOT_LIBEXEC/$f not found"; return 1; }
    done
    "$d" --version >/dev/null
}

# tests/bench/sql_bench.py compares with Dovecot's own sql driver.
check_dovecot_sql() {
    local drv
    for drv in mysql pgsql; do
        [[ -f $DOVECOT_LIBEXEC/modules/auth/libdriver_$drv.so ]] ||
            { echo "$DOVECOT_LIBEXEC/modules/auth/libdriver_$drv.so not found"; return 1; }
    done
}

check_sasldb() {
    local pw list
    pw=$(tool saslpasswd2) || return 1
    list=$(tool sasldblistusers2) || return 1
    printf 'check-password' | "$pw" -p -c -f "$tmp/sasldb2" -u check.invalid checkuser || return 1
    "$list" -f "$tmp/sasldb2" | grep -q '^checkuser@check.invalid:' ||
        { echo "sasldblistusers2 does not list the user saslpasswd2 wrote"; return 1; }
}

# test_postfix_backends.py runs a Postfix smtpd with smtpd_sasl_type = cyrus
# (pwcheck_method: saslauthd): Cyrus SASL must offer PLAIN and LOGIN.
check_cyrus_plugins() {
    local viewer mechs m
    viewer=$(tool saslpluginviewer) || return 1
    mechs=$("$viewer" -s 2>&1 | sed -n '/configured SASL (server side) mechanisms are:/{n;p;}')
    for m in PLAIN LOGIN; do
        grep -qw -- "$m" <<<"$mechs" || { echo "Cyrus SASL has no $m server plugin (server mechanisms:${mechs:- none})"; return 1; }
    done
}

check_cyrus_sql_plugin() {
    local f
    for f in /usr/lib/*/sasl2/libsql.so* /usr/lib/sasl2/libsql.so*; do
        [[ -e $f ]] && return 0
    done
    echo "Cyrus SASL's sql auxprop plugin (libsql.so) not found"
    return 1
}

check_testsaslauthd() {
    local t out
    t=$(tool testsaslauthd) || return 1
    # No socket there: it must start and fail to connect.
    out=$("$t" -u u -p p -f "$tmp/no-such-mux" 2>&1)
    grep -qi 'connect' <<<"$out" || { echo "testsaslauthd: $out"; return 1; }
}

check_pam_wrapper() {
    local lib matrix out
    lib=$(first_file "$LIBDIR/libpam_wrapper.so" /usr/lib/libpam_wrapper.so)
    matrix=$(first_file "$LIBDIR/pam_wrapper/pam_matrix.so" /usr/lib/pam_wrapper/pam_matrix.so)
    [[ -n $lib ]] || { echo "libpam_wrapper.so not found"; return 1; }
    [[ -n $matrix ]] || { echo "pam_matrix.so not found"; return 1; }
    # Preloading it must work (ld.so only warns on stderr when it does not).
    out=$(LD_PRELOAD=$lib PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$tmp true 2>&1)
    [[ -z $out ]] || { echo "$out"; return 1; }
    if ldd "$matrix" | grep -q 'not found'; then ldd "$matrix" | grep 'not found'; return 1; fi
}

check_pam_unix() {
    # test_pam.py's pam_unix test makes a throwaway account.
    local t
    for t in useradd userdel chpasswd; do tool "$t" >/dev/null || return 1; done
    [[ -f /lib/x86_64-linux-gnu/security/pam_unix.so || -f /usr/lib/x86_64-linux-gnu/security/pam_unix.so ]] ||
        { echo "pam_unix.so not found"; return 1; }
    getent passwd nobody >/dev/null || { echo "no nobody user"; return 1; }
}

# test_metrics.py starts a private Prometheus that scrapes posternd and checks
# the alert rules with promtool.
check_prometheus() {
    local p t
    p=$(tool prometheus) || return 1
    t=$(tool promtool) || return 1
    "$p" --version >/dev/null 2>&1 || { echo "prometheus --version failed"; return 1; }
    "$t" --version >/dev/null 2>&1 || { echo "promtool --version failed"; return 1; }
}

# test_privileges.py starts posternd as nobody from the build directory, which a
# checkout under root's 0700 home (/root/postern) hides from it.
check_checkout() {
    [[ $(id -u) -eq 0 ]] || return 0  # not root: those tests skip
    local d
    for d in "$repo" ${POSTERN_TEST_BUILD:+"$(dirname "$POSTERN_TEST_BUILD")"} \
             ${POSTERN_ASAN_BUILD:+"$(dirname "$POSTERN_ASAN_BUILD")"}; do
        # shellcheck disable=SC2016  # $1 is for the inner shell
        setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups sh -c 'cd "$1"' _ "$d" \
            >/dev/null 2>&1 ||
            { echo "user nobody cannot reach $d, and the tests run posternd as nobody: clone it outside /root, or chmod o+x the directories above it"; return 1; }
    done
}

check_fail2ban() {
    tool fail2ban-regex >/dev/null || return 1
    local out
    out=$(fail2ban-regex "2024-01-02 03:04:05 check failed from 192.0.2.1" "check failed from <HOST>" 2>&1)
    grep -q '1 matched' <<<"$out" || { tail -n 3 <<<"$out"; return 1; }
}

check_mariadb() {
    local d
    d=$(tool mariadbd 2>/dev/null || tool mysqld 2>/dev/null) || { echo "mariadbd not found"; return 1; }
    tool mariadb-install-db >/dev/null 2>&1 || tool mysql_install_db >/dev/null 2>&1 ||
        { echo "mariadb-install-db not found"; return 1; }
    tool mariadb >/dev/null 2>&1 || tool mysql >/dev/null 2>&1 || { echo "mariadb client not found"; return 1; }
    "$d" --no-defaults --version >/dev/null
}

check_postgresql() {
    local initdb postgres
    initdb=$(first_of "$PG_BIN/initdb") || initdb=$(tool initdb) || return 1
    postgres=$(first_of "$PG_BIN/postgres") || postgres=$(tool postgres) || return 1
    first_of "$PG_BIN/pg_ctl" >/dev/null || tool pg_ctl >/dev/null || return 1
    tool psql >/dev/null || return 1
    "$initdb" --version >/dev/null && "$postgres" --version >/dev/null
}

check_slapd() {
    local slapd s
    slapd=$(tool slapd) || return 1
    tool ldapadd >/dev/null || return 1
    # What tests/integration/ldap_support.py does: Debian's schemas and the
    # mdb backend module in a private slapd.conf (slapd -Tt is slaptest).
    for s in core cosine inetorgperson nis; do
        [[ -e /etc/ldap/schema/$s.schema ]] || { echo "/etc/ldap/schema/$s.schema missing"; return 1; }
    done
    mkdir -p "$tmp/slapd-db"
    cat >"$tmp/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "dc=example,dc=com"
directory $tmp/slapd-db
EOF
    "$slapd" -Tt -f "$tmp/slapd.conf" -u >"$tmp/slaptest.log" 2>&1 || { tail -n 3 "$tmp/slaptest.log"; return 1; }
    "$(tool ldapadd)" -VV 2>&1 | grep -q 'ldapadd' || { echo "ldapadd -VV failed"; return 1; }
}

check build "meson ninja-build g++ pkg-config" check_build
check libsystemd libsystemd-dev check_libsystemd
check hiredis libhiredis-dev check_hiredis
check jemalloc libjemalloc-dev check_jemalloc
check redis-server redis-server check_redis
check systemd-socket-activate systemd check_socket_activate
check debian-packaging "dpkg-dev debhelper lintian fakeroot debootstrap" check_packaging
check ccache ccache check_ccache
check clang-libfuzzer "clang libclang-rt-14-dev" check_clang_fuzzer
check python3 python3 check_python
check openssl openssl check_openssl
check postfix postfix check_postfix
check swaks swaks check_swaks
check swaks-digest-md5 libdigest-hmac-perl check_perl_digest_md5
check swaks-tls "libnet-ssleay-perl libio-socket-ssl-perl" check_perl_tls
check gsasl gsasl check_gsasl
check doveadm dovecot-core check_doveadm
check dovecot-imap dovecot-imapd check_dovecot_imap
check dovecot-sql "dovecot-mysql dovecot-pgsql" check_dovecot_sql
check saslpasswd2 sasl2-bin check_sasldb
check testsaslauthd sasl2-bin check_testsaslauthd
check cyrus-sasl-plugins "libsasl2-modules sasl2-bin" check_cyrus_plugins
check cyrus-sasl-sql "libsasl2-modules-sql" check_cyrus_sql_plugin
check pam_wrapper libpam-wrapper check_pam_wrapper
check pam_unix "passwd libpam-modules" check_pam_unix
check fail2ban-regex fail2ban check_fail2ban
check mariadb mariadb-server check_mariadb
check postgresql postgresql check_postgresql
check slapd "slapd ldap-utils" check_slapd
check prometheus prometheus check_prometheus
check checkout-access - check_checkout

if ((missing)); then
    echo "check_deps: $missing check(s) failed; contrib/install-deps.sh --test (as root) installs every package named above"
    exit 1
fi
