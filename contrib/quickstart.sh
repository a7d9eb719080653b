#!/usr/bin/env bash
# Quick start: install dependencies, build, and run posternd on its built-in
# demo configuration (users file and auth socket in ./demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build --buildtype=release >/dev/null; fi
ninja -C build posternd postern
exec build/posternd --demo "$PWD/demo"
