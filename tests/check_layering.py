#!/usr/bin/env python3
"""Checks the include layering of src/, protocol/ and backends/.

Every source file belongs to a layer; a file may include project headers of
its own layer and of the layers listed for it, nothing else. The rules are the
ones README.md's "Layout" section states:

  util           nothing
  password       util
  vocabulary     util                 (auth/params.hpp, auth/fields.hpp,
                                       auth/request_info.*: plain request types)
  protocol       util password vocabulary
  config         util password protocol
  backends       util password vocabulary config
  auth           util password vocabulary protocol config backends
  server         util password vocabulary protocol config backends auth
  cli            util password vocabulary protocol config backends auth
  main           everything            (src/posternd.cpp, src/postern.cpp)

Usage: check_layering.py [ROOT]   (default: the checkout this file is in)
Prints one line per forbidden include (file:line: layer -> layer "header")
and exits 1 if there is any, 0 otherwise.
"""

import os
import re
import sys

VOCABULARY = ("src/auth/params.hpp", "src/auth/fields.hpp", "src/auth/request_info.hpp",
              "src/auth/request_info.cpp")

ALLOWED = {
    "util": set(),
    "password": {"util"},
    "vocabulary": {"util"},
    "protocol": {"util", "password", "vocabulary"},
    "config": {"util", "password", "protocol"},
    "backends": {"util", "password", "vocabulary", "config"},
    "auth": {"util", "password", "vocabulary", "protocol", "config", "backends"},
    "server": {"util", "password", "vocabulary", "protocol", "config", "backends", "auth"},
    "cli": {"util", "password", "vocabulary", "protocol", "config", "backends", "auth"},
    "main": None,  # may include anything
}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCE_DIRS = ("src", "protocol", "backends")
EXTENSIONS = (".hpp", ".cpp", ".h", ".c")


def layer_of(path):
    """Layer of a checkout-relative path ("src/auth/engine.cpp"), or None."""
    if path in VOCABULARY:
        return "vocabulary"
    parts = path.split("/")
    if parts[0] == "protocol":
        return "protocol"
    if parts[0] == "backends":
        return "backends"
    if parts[0] == "src":
        if len(parts) == 2:
            return "main"
        if parts[1] in ALLOWED:
            return parts[1]
    return None


def header_path(include):
    """Checkout-relative path of a project include ("auth/x.hpp" -> "src/auth/x.hpp")."""
    head = include.split("/")[0]
    if head in ("protocol", "backends"):
        return include
    return "src/" + include


def check(root):
    problems = []
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith(EXTENSIONS):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                layer = layer_of(rel)
                if layer is None:
                    problems.append(f"{rel}: belongs to no layer (add it to tests/check_layering.py and the README)")
                    continue
                allowed = ALLOWED[layer]
                with open(full, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = header_path(m.group(1))
                        if not os.path.exists(os.path.join(root, target)):
                            continue  # a generated or system header in quotes
                        to = layer_of(target)
                        if allowed is None or to == layer or to in allowed:
                            continue
                        problems.append(f'{rel}:{lineno}: {layer} -> {to} "{m.group(1)}"')
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) break the layering (README.md, Layout)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
