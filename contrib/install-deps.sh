#!/usr/bin/env bash
# Installs what postern needs on Debian 12 (run as root).
#   contrib/install-deps.sh          build dependencies
#   contrib/install-deps.sh --test   build dependencies + the real peers the tests drive
set -euo pipefail

build_pkgs=(meson ninja-build g++ pkg-config libasio-dev libtomlplusplus-dev libcli11-dev doctest-dev
    libexpected-dev libfmt-dev libssl-dev libcrypt-dev libargon2-dev libsodium-dev libpam0g-dev libdb-dev
    libmariadb-dev libpq-dev libldap2-dev libcurl4-openssl-dev nlohmann-json3-dev libsystemd-dev ccache prometheus-cpp-dev libhiredis-dev
    libjemalloc-dev)
# tests/check_deps.sh checks that each of these can do its job. swaks's DIGEST-MD5
# goes through Authen::SASL's Perl code, which needs Digest::HMAC_MD5
# (libdigest-hmac-perl: only suggested, and apt runs without recommends here).
# Postfix's Cyrus smtpd needs Cyrus SASL's PLAIN and LOGIN plugins (libsasl2-modules,
# only recommended by libsasl2-2), and its sql auxprop plugin (libsasl2-modules-sql)
# for the Cyrus-to-postern import test. debootstrap builds the Debian 13 root
# the Dovecot 2.4 tests run from (tests/dovecot24_root.sh) and the clean Debian 12
# root the package test installs into; systemd has systemd-socket-activate
# (test_systemd); debhelper, lintian and fakeroot build and check the Debian
# package (test_package: dpkg-buildpackage -us -uc -b); prometheus scrapes
# posternd in test_metrics, and tmux holds the terminal postern top draws on.
test_pkgs=(python3 openssl postfix swaks libnet-ssleay-perl libio-socket-ssl-perl gsasl dovecot-core dovecot-imapd
    libauthen-sasl-perl libdigest-hmac-perl sasl2-bin libsasl2-modules libsasl2-modules-sql libpam-wrapper fail2ban mariadb-server postgresql
    clang libclang-rt-14-dev dovecot-mysql dovecot-pgsql slapd ldap-utils dovecot-ldap debootstrap systemd debhelper lintian fakeroot prometheus tmux redis-server)

pkgs=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix must not ask questions or take over the machine's mail setup.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Nor slapd build a directory of its own: the tests run private instances.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
