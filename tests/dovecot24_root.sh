#!/usr/bin/env bash
# A Debian 13 (trixie) root with Dovecot 2.4 (dovecot-core, dovecot-imapd,
# dovecot-mysql, dovecot-pgsql) for the tests of posternd against Dovecot 2.4
# clients (test_dovecot24.py) and the import differentials
# (test_dovecot_import.py, test_dovecot_import_sql.py): built
# once with debootstrap through the Debian mirror apt already uses on this
# machine, kept outside the checkout and reused by every later run. A root
# that is missing, half built, lacks one of the packages or whose dovecot does
# not run is built again.
#
#   bash tests/dovecot24_root.sh          prints the root's path on success
#
# Environment: POSTERN_DOVECOT24_ROOT (default /var/cache/postern-ci/dovecot24-root).
# Exit status 0 when the root is ready, 1 when it cannot be built (the 2.4
# tests then skip and say why).
set -uo pipefail

root=${POSTERN_DOVECOT24_ROOT:-/var/cache/postern-ci/dovecot24-root}
marker=$root/.postern-dovecot24-ready
packages=dovecot-core,dovecot-imapd,dovecot-mysql,dovecot-pgsql

ready() {
    local p
    [[ -f $marker ]] || return 1
    for p in ${packages//,/ }; do
        [[ -f $root/var/lib/dpkg/info/$p.list ]] || return 1
    done
    chroot "$root" /usr/sbin/dovecot --version 2>/dev/null | grep -q '^2\.4\.'
}

# The first Debian mirror apt reads packages from (not the security one):
# deb822 .sources files first, then one-line sources.list entries.
mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        while read -r uri; do
            [[ $uri == *security* ]] && continue
            echo "$uri"
            return 0
        done < <(sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n' | grep -v '^$')
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
        if [[ -n $uri ]]; then
            echo "$uri"
            return 0
        fi
    done
    return 1
}

if ready; then
    echo "$root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "dovecot24_root: debootstrap is not installed (contrib/install-deps.sh --test installs it)" >&2
    exit 1
fi
url=$(mirror) || { echo "dovecot24_root: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }

echo "dovecot24_root: building $root from $url (debootstrap trixie, $packages)" >&2
started=$SECONDS
mkdir -p "$(dirname "$root")"
rm -rf "$root.new"
log=$root.log
if ! debootstrap --variant=minbase --include=$packages trixie "$root.new" "$url" >"$log" 2>&1; then
    echo "dovecot24_root: debootstrap failed; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    rm -rf "$root.new"
    exit 1
fi
touch "$root.new/.postern-dovecot24-ready"
rm -rf "$root"
mv "$root.new" "$root"
if ! ready; then
    echo "dovecot24_root: the new root's dovecot does not report version 2.4" >&2
    exit 1
fi
echo "dovecot24_root: built in $((SECONDS - started)) s: $(chroot "$root" /usr/sbin/dovecot --version)" >&2
echo "$root"
