#!/usr/bin/python3
"""Fails on a doctest TEST_CASE name that holds a ';'.

CTest learns the test names from `--list-test-cases` (doctest_discover_tests), which CMake
keeps as a ';'-separated list: such a name becomes two CTest tests, each of which matches no
test case, runs nothing and passes. Commas are escaped by doctest's script and are fine.

usage: check_test_names.py SOURCE_DIR
"""
import pathlib
import re
import sys

CASE = re.compile(r'\bTEST_CASE\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)')
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    bad = []
    for path in sorted((root / "tests").rglob("*.cpp")):
        text = path.read_text(encoding="utf-8")
        for match in CASE.finditer(text):
            name = "".join(LITERAL.findall(match.group(1)))
            if ";" in name:
                line = text.count("\n", 0, match.start()) + 1
                bad.append(f"{path.relative_to(root)}:{line}: {name}")
    for b in bad:
        print(f"a ';' in a test case name runs nothing under CTest: {b}")
    if not bad:
        print("no test case name holds a ';'")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
