#!/usr/bin/env python3
"""The architecture check (docs/architecture.md, "Layers").

Reads the table of rooms and arrows from docs/architecture.md and checks, for the
source tree and the top-level CMakeLists.txt:

* every project #include of a file in core/, agents/ or cuda/ goes to its own room
  or to a room its arrows allow;
* the arrows have no cycle;
* each room's CMake target links only the rooms its arrows allow, and every room a
  room's sources include is on its link line;
* no string literal outside core/app names a command-line flag (only core/app
  knows them).

Prints one line per problem (file:line: what) and exits 1 if there is any, else
prints a summary and exits 0. `--root DIR` checks another tree; `--self-test`
checks that the check fails on a copy of this tree with planted problems.
"""
import argparse
import pathlib
import re
import shutil
import sys
import tempfile

SOURCE_SUFFIXES = {".hpp", ".cpp", ".cu", ".cuh", ".in"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A flag inside a string literal: "--name" at the start of the literal or after a space or a quote.
FLAG = re.compile(r'(?:^|[\s`\'(/])(--[a-z][a-z0-9-]+)')
GENERATED = {"cutoff_version.hpp": "core/hd"}  # generated from core/hd/version.hpp.in


def parse_arrows(doc):
    """{room: set of rooms it may include}, from the table after '<!-- arrows -->'."""
    text = doc.read_text()
    start = text.find("<!-- arrows -->")
    if start < 0:
        sys.exit(f"{doc}: no '<!-- arrows -->' table")
    rooms, targets = {}, {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rooms:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue  # header or rule
        room = cells[0].strip("`").rstrip("/")
        targets[room] = cells[1].strip("`")
        allowed = re.findall(r"`([^`]+)`", cells[3])
        rooms[room] = {a.rstrip("/") for a in allowed}
    if not rooms:
        sys.exit(f"{doc}: the arrows table is empty")
    for room, allowed in rooms.items():
        unknown = allowed - set(rooms)
        if unknown:
            sys.exit(f"{doc}: room {room} allows unknown rooms {sorted(unknown)}")
    return rooms, targets


def room_of(path, rooms):
    """The room of a repository-relative path, or None outside the rooms."""
    best = None
    for room in rooms:
        if path == room or path.startswith(room + "/"):
            if best is None or len(room) > len(best):
                best = room
    return best


def find_cycle(rooms):
    state = {}

    def visit(r, stack):
        state[r] = 1
        for n in sorted(rooms[r]):
            if state.get(n) == 1:
                return stack + [r, n]
            if n not in state:
                c = visit(n, stack + [r])
                if c:
                    return c
        state[r] = 2
        return None

    for r in sorted(rooms):
        if r not in state:
            c = visit(r, [])
            if c:
                return c
    return None


def strip_comments(src):
    """Source with comments blanked (line structure kept), string literals intact."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def cmake_links(cmake, targets):
    """{target: set of cutoff_* targets on its link lines}."""
    text = re.sub(r"#.*", "", cmake.read_text())
    links = {t: set() for t in targets.values()}
    for m in re.finditer(r"target_link_libraries\(\s*(\w+)([^)]*)\)", text):
        if m.group(1) in links:
            links[m.group(1)] |= set(re.findall(r"\b(cutoff_\w+)\b", m.group(2)))
    return links


def check(root):
    rooms, targets = parse_arrows(root / "docs" / "architecture.md")
    problems = []
    cycle = find_cycle(rooms)
    if cycle:
        problems.append("docs/architecture.md: the arrows have a cycle: " + " -> ".join(cycle))

    room_of_target = {t: r for r, t in targets.items()}
    links = cmake_links(root / "CMakeLists.txt", targets)
    for room, target in targets.items():
        if target not in links:
            continue
        for dep in sorted(links[target]):
            if dep in room_of_target and room_of_target[dep] not in rooms[room]:
                problems.append(f"CMakeLists.txt: {target} links {dep}, but {room} may not use "
                                f"{room_of_target[dep]} (docs/architecture.md)")

    n_files = n_includes = 0
    for path in sorted(root.rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        room = room_of(rel, rooms)
        if room is None:
            continue
        n_files += 1
        src = path.read_text(errors="replace")
        for m in INCLUDE.finditer(src):
            inc = m.group(1)
            line = src.count("\n", 0, m.start()) + 1
            to = GENERATED.get(inc) or room_of(inc, rooms)
            if to is None:
                if (root / inc).exists():
                    problems.append(f"{rel}:{line}: includes {inc}, which is in no room")
                continue
            n_includes += 1
            if to != room and to not in rooms[room]:
                problems.append(f"{rel}:{line}: {room} may not include {inc} ({to}); "
                                f"allowed: {', '.join(sorted(rooms[room])) or 'nothing'}")
            elif to != room and targets.get(room) in links and targets.get(to) not in links[targets[room]]:
                problems.append(f"{rel}:{line}: includes {inc} ({to}), but {targets[room]} does not link "
                                f"{targets[to]}")
        if room != "core/app":
            code = strip_comments(src)
            for sm in STRING.finditer(code):
                for fm in FLAG.finditer(sm.group(1)):
                    line = code.count("\n", 0, sm.start()) + 1
                    problems.append(f"{rel}:{line}: names the command-line flag {fm.group(1)}; "
                                    f"only core/app knows flags")
    return problems, n_files, n_includes, rooms


def self_test(root):
    """The check passes on a copy of the tree and fails, naming each, on planted problems."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp)
        for d in ("core", "agents", "cuda", "docs"):
            shutil.copytree(root / d, copy / d)
        shutil.copy(root / "CMakeLists.txt", copy / "CMakeLists.txt")
        problems, *_ = check(copy)
        if problems:
            print("self-test: the unmodified copy fails:", *problems, sep="\n  ")
            return 1
        plants = {
            "core/hd/hd.hpp": ('\n#include "core/sim/simulation.hpp"\n', "core/hd may not include core/sim/simulation.hpp"),
            "core/model/params.cpp": ('\nstatic const char* kPlanted = "use --backend cpu";\n',
                                      "names the command-line flag --backend"),
            "CMakeLists.txt": ("\ntarget_link_libraries(cutoff_market PUBLIC cutoff_model)\n",
                               "cutoff_market links cutoff_model"),
        }
        for rel, (text, _) in plants.items():
            with open(copy / rel, "a") as f:
                f.write(text)
        problems, *_ = check(copy)
        missed = [want for _, want in plants.values() if not any(want in p for p in problems)]
        if missed:
            print("self-test: the check missed:", *missed, sep="\n  ")
            print("it reported:", *problems, sep="\n  ")
            return 1
        print(f"check_includes self-test: caught all {len(plants)} planted problems")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    ap.add_argument("--self-test", action="store_true", help="plant problems in a copy and expect each caught")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.root)
    problems, n_files, n_includes, rooms = check(args.root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_includes: {len(problems)} problem(s)")
        return 1
    print(f"check_includes: {n_files} files, {n_includes} project includes across {len(rooms)} rooms: "
          "every include follows an arrow, no cycle, link lines match, flags only in core/app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
