#!/usr/bin/env python3
"""Fails on an #include that runs up the layers (../shared/DESIGN.md §2, issue 19).

Every target puts the repository root on its include path, so the compiler lets any file
include any header; this check is what keeps `wire <- auth <- core <- io <- app` true for
#include lines. The top CMakeLists.txt (tern_check_layers) checks the same table for the
libraries the targets link: keep the two alike.

Usage: check_layers.py [REPOSITORY_ROOT]   (python3 standard library only)
Prints file:line for each include that runs up, and exits 1 if there is any.
"""

import pathlib
import re
import sys

# A layer may include its own headers and those of the layers listed for it.
MAY_INCLUDE = {
    "wire": set(),
    "auth": {"wire"},
    "counters": {"wire", "auth"},
    "core": {"wire", "auth", "counters"},
    "client": {"wire", "auth"},
    "config": {"wire", "auth", "counters"},
    "exporter": {"wire", "auth", "counters"},
    "io": {"wire", "auth", "counters", "core", "config", "exporter"},
    "app": {"wire", "auth", "counters", "core", "client", "config", "exporter", "io"},
}

FOLDERS = {
    "relay/wire": "wire",
    "auth": "auth",
    "relay/core": "core",
    "relay/client": "client",
    "relay/config": "config",
    "relay/io": "io",
    "relay/app": "app",
    "metrics": "exporter",  # but for the plain counters below
}
# metrics/ holds two libraries: these files are tern_counters (plain atomics, no dependency),
# the rest is the exporter, tern_metrics (prometheus-cpp, libmicrohttpd).
COUNTERS = {"metrics/worker_counters.hpp", "metrics/worker_counters.cpp"}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def layer_of(path: str):
    """The layer of a repository-relative path, or None outside the layered folders."""
    if path in COUNTERS:
        return "counters"
    for folder, layer in FOLDERS.items():
        if path.startswith(folder + "/"):
            return layer
    return None


def check(root: pathlib.Path) -> list:
    problems = []
    sources = [p for folder in FOLDERS for p in (root / folder).rglob("*")
               if p.suffix in (".hpp", ".cpp", ".h", ".cc")]
    for source in sorted(sources):
        name = source.relative_to(root).as_posix()
        layer = layer_of(name)
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            included = match.group(1)
            # Includes are written from the repository root; one written relative to the
            # including file is resolved from there.
            if not (root / included).exists() and (source.parent / included).exists():
                included = (source.parent / included).resolve().relative_to(root.resolve()).as_posix()
            target = layer_of(included)
            if target is None or target == layer or target in MAY_INCLUDE[layer]:
                continue
            allowed = ", ".join(sorted(MAY_INCLUDE[layer])) or "only itself"
            problems.append(f"{name}:{number}: {included} is {target}, which {layer} may not include "
                            f"(an arrow up or across the layers); {layer} may include: {allowed}")
    return problems


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} #include line(s) run up the layers (see ../shared/DESIGN.md §2)")
        return 1
    print("every #include in relay/, auth/ and metrics/ runs down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
