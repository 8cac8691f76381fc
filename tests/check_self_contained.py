#!/usr/bin/env python3
"""The self-containment check (docs/conventions.md 14).

The specification (docs/model.md), the coding conventions (docs/conventions.md) and
the raw data (data/raw/) live in the repository, and no file may refer to a document
or path outside it. This check reads every file git knows of (tracked, plus untracked
files that are not ignored) and fails on:

* a string that points outside the repository (the list OUTSIDE below: the sibling
  folder that once held the specification, the style guide and the raw data, and the
  absolute work path);
* the same sibling folder as a path joined from parts (a parent step, then
  its shared folder);
* a markdown link `[text](target)` whose target starts with a parent step and
  resolves outside the repository root.

A bare "MODEL.md §2.5" is not a path outside the repository and is not flagged.
Binary files and data CSVs are skipped. Prints one line per problem
(file:line: what) and exits 1 if there is any, else prints a summary and exits 0.
`--root DIR` checks another checkout; `--self-test` checks that the scanner flags
planted references (and only those) and exits 0 when it does. Standard library only.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys

# Written in pieces so that this file does not flag itself.
PARENT = ".." + "/"
OUTSIDE = [
    PARENT + "shared",  # the sibling folder beside the repository
    "/" + "work" + "/",  # an absolute path of the machine it was written on
    "shared" + "/MODEL.md",  # the old specification
    "shared" + "/data",  # the old home of data/raw
    "STYLE" + ".md",  # the old style guide, now docs/conventions.md
]
# The same sibling folder as a path built from parts (a join of the parent step, then "shared").
JOINED = re.compile(r"""["']\.\.["']\s*,\s*["']""" + "shared" + r"""["']""")
LINK = re.compile(r"\]\(\s*<?(" + re.escape(PARENT) + r"[^)\s>]*)")
BINARY_SNIFF = 8192


def scan_text(relpath, text, root):
    """[(line number, offending text)] for one file's text.

    relpath: the file's path relative to the repository root (POSIX separators);
    root: the repository root, an absolute path (only used to resolve links).
    """
    found = []
    root = os.path.normpath(str(root))
    folder = os.path.dirname(os.path.join(root, relpath))
    for n, line in enumerate(text.splitlines(), 1):
        for s in OUTSIDE:
            if s in line:
                found.append((n, s))
        if JOINED.search(line):
            found.append((n, "a path joined from the parent folder and its shared folder"))
        for m in LINK.finditer(line):
            target = m.group(1).split("#", 1)[0].split("?", 1)[0]
            resolved = os.path.normpath(os.path.join(folder, target))
            if resolved != root and not resolved.startswith(root + os.sep):
                found.append((n, f"link ({m.group(1)}) resolves outside the repository"))
    return found


def skipped(relpath, data):
    """Why a file is not scanned ('' if it is): data CSVs and binary files."""
    if relpath.lower().endswith(".csv"):
        return "data CSV"
    if b"\0" in data[:BINARY_SNIFF]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return ""


def git_files(root):
    """Tracked files plus untracked files that are not ignored, relative to root."""
    names = set()
    for extra in ([], ["--others", "--exclude-standard"]):
        try:
            out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *extra],
                                 check=True, capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"check_self_contained: error: cannot list the files of {root} with git: {e}",
                  file=sys.stderr)
            sys.exit(2)
        names.update(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)
    return sorted(names)


def check(root):
    """Scans the checkout at root; returns the exit status."""
    root = pathlib.Path(root).resolve()
    problems, scanned, skips = [], 0, 0
    for rel in git_files(root):
        path = root / rel
        if rel.startswith(".git/") or not path.is_file() or path.is_symlink():
            continue  # deleted in the work tree, a submodule, or a link
        data = path.read_bytes()
        if skipped(rel, data):
            skips += 1
            continue
        scanned += 1
        for n, what in scan_text(rel, data.decode("utf-8"), root):
            problems.append(f"{rel}:{n}: refers outside the repository: {what}")
    for p in problems:
        print(p)
    if problems:
        print(f"check_self_contained: {len(problems)} reference(s) outside the repository "
              f"in {scanned} text files")
        return 1
    print(f"check_self_contained: {scanned} text files refer to nothing outside the repository "
          f"({skips} binary or data CSV files skipped)")
    return 0


def self_test():
    """Plants references in memory and checks the scanner flags exactly those."""
    root = os.path.abspath(os.sep + "repo")
    cases = [
        # (path, text, number of findings expected)
        ("README.md", "The spec is [MODEL.md](" + PARENT + "shared" + "/MODEL.md).\n", 3),
        ("docs/x.md", "see [up](" + PARENT + PARENT + "outside.md#a) and [in](" + PARENT
         + "README.md)\n", 1),
        ("data/build.py", "default=" + repr("/" + "work/shared" + "/data") + "\n", 2),
        (".clang-format", "# the format (" + "STYLE" + ".md 8)\n", 1),
        ("bench/tool", "run([os.path.join(ROOT, '..', 'sha" + "red', 'tools', 'x')])\n", 1),
        ("core/a.hpp", "/// The rule of MODEL.md §2.5 and docs/model.md §2.6.\n", 0),
        ("docs/y.md", "[ok](model.md) [ok](" + PARENT + "docs/model.md) [web](https://x.org/a)\n", 0),
    ]
    bad = []
    for rel, text, want in cases:
        got = scan_text(rel, text, root)
        if len(got) != want:
            bad.append(f"{rel}: expected {want} finding(s), got {len(got)}: {got}")
    if skipped("data/raw/gdp.csv", b"a,b\n") != "data CSV" or skipped("x.png", b"\x89PNG\0") != "binary":
        bad.append("skipped(): data CSVs and binary files are not skipped")
    if skipped("notes.md", "plain text".encode()):
        bad.append("skipped(): a text file is skipped")
    for b in bad:
        print(f"check_self_contained --self-test: {b}")
    if bad:
        return 1
    print(f"check_self_contained --self-test: the scanner flags every planted reference "
          f"({len(cases)} cases)")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1],
                    help="the checkout to check (default: this script's repository)")
    ap.add_argument("--self-test", action="store_true",
                    help="check that the scanner flags planted references")
    args = ap.parse_args()
    sys.exit(self_test() if args.self_test else check(args.root))


if __name__ == "__main__":
    main()
