#!/usr/bin/env python3
"""Mutation harness for the model's rules (issue 42; runs outside CI).

Each mutant in mutants.txt is one exact text substitution in one rule file: the
snippet must occur exactly once in that file (matched by text, not by line, so the
list survives edits elsewhere in the file). For each mutant the harness copies the
tree to a scratch directory (once, incrementally), applies the substitution there,
builds `cutoff_tests` incrementally (CUDA off, Release), runs the GoogleTest binary
with --gtest_fail_fast (first the fast per-rule tests, then the whole suite) and
reports the mutant killed (with the first failing test), killed by a timeout,
stillborn (it does not compile) or survived. The working tree is never modified.

    tests/mutation/mutate.py --check            # every mutant applies exactly once (CI lint; self-tests first)
    tests/mutation/mutate.py [--only ID,...] [--out FILE] [--scratch DIR]
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = Path(__file__).resolve().parent / "mutants.txt"
# The fast per-rule tests run first, so most killed mutants stop within seconds.
FAST_FILTER = "Oracle*.*:Eligibility.*:Access.*:Clearing.*:Waterfill.*:Providers.*"
KEYS = ("id", "file", "find", "replace", "why")


def parse(path=LIST):
    """The mutants: blocks of `key: value` lines separated by blank lines; # comments."""
    mutants, cur = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines() + [""], 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                missing = [k for k in KEYS if k not in cur]
                if missing:
                    sys.exit(f"{path}:{n}: mutant {cur.get('id', '?')} lacks {', '.join(missing)}")
                mutants.append(cur)
                cur = {}
            continue
        key, sep, value = line.partition(": ")
        if not sep or key not in KEYS:
            sys.exit(f"{path}:{n}: expected one of {KEYS} as 'key: value', got {line!r}")
        cur[key] = value
    ids = [m["id"] for m in mutants]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit(f"{path}: duplicate ids {sorted(dup)}")
    return mutants


def problems(root, mutants):
    """Why mutants no longer apply to the tree at `root` (empty: all apply exactly once)."""
    out = []
    for m in mutants:
        f = root / m["file"]
        if not f.is_file():
            out.append(f"{m['id']}: {m['file']} does not exist")
            continue
        n = f.read_text(encoding="utf-8").count(m["find"])
        if n != 1:
            out.append(f"{m['id']}: the snippet occurs {n} times in {m['file']}: {m['find']!r}")
        if m["find"] == m["replace"]:
            out.append(f"{m['id']}: the replacement equals the snippet")
    return out


def self_test():
    """The check can fail (docs/conventions.md 13): planted mutants whose snippet is
    absent, occurs twice or equals its replacement, and a file that does not exist,
    must each be named."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "rule.hpp").write_text("a = b;\nc = d;\nc = d;\n", encoding="utf-8")
        planted = [dict(id="ok", file="rule.hpp", find="a = b;", replace="a = -b;"),
                   dict(id="absent", file="rule.hpp", find="e = f;", replace="e = -f;"),
                   dict(id="twice", file="rule.hpp", find="c = d;", replace="c = -d;"),
                   dict(id="same", file="rule.hpp", find="a = b;", replace="a = b;"),
                   dict(id="nofile", file="gone.hpp", find="x", replace="y")]
        named = {p.split(":")[0] for p in problems(root, planted)}
    if named != {"absent", "twice", "same", "nofile"}:
        sys.exit(f"self-test: the check named {sorted(named)}, not the four planted problems")


def sh(cmd, timeout=None, **kw):
    """Runs `cmd` at low priority; returns (return code or None on timeout, output)."""
    try:
        r = subprocess.run(["nice", "-n", "15"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout, errors="replace", **kw)
        return r.returncode, r.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out


def sync(scratch):
    """Copies the tree's tracked and untracked (not ignored) files into scratch/src.
    Only files whose content differs are written, and they get a new mtime, so the
    incremental build never mistakes an old object for a fresh one."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split("\0")
    for name in filter(None, files):
        src, dst = ROOT / name, scratch / "src" / name
        if not src.is_file():
            continue  # deleted in the work tree, or a submodule
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        dst.chmod(src.stat().st_mode & 0o777)


def first_failure(output):
    m = re.search(r"^\[  FAILED  \] (\S+)", output, re.M)
    return m.group(1) if m else "(no test named: the binary failed)"


def run_tests(binary, src, timeout):
    """Runs the suite, fast tests first; returns (outcome, detail)."""
    env = dict(os.environ, CUTOFF_SOURCE_DIR=str(src))
    for flt in (FAST_FILTER, "-" + FAST_FILTER):
        t0 = time.time()
        rc, out = sh([str(binary), "--gtest_fail_fast", "--gtest_brief=1", "--gtest_filter=" + flt], timeout=timeout,
                     cwd=src, env=env)
        if rc is None:
            return "killed", f"timeout after {timeout:.0f} s"
        if rc != 0:
            return "killed", first_failure(out)
        timeout = max(60.0, timeout - (time.time() - t0))
    return "survived", ""


def report(rows, args, head, dirty):
    """Writes the results file (a run of some mutants, --only, updates their rows)."""
    rows = list(rows)
    command = f"# command: tests/mutation/mutate.py {' '.join(sys.argv[1:])}".rstrip()
    commands = []
    if args.only and Path(args.out).is_file():
        done = {m["id"] for m, _, _ in rows}
        kept = []
        for line in Path(args.out).read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.split("|")]
            if line.startswith("# command:") and line not in commands:
                commands.append(line)
            if line.startswith("#") or len(cells) != 4 or cells[0] in done or cells[2] == "not-run":
                continue
            kept.append(({"id": cells[0], "file": cells[1]}, cells[2], cells[3]))
        index = {m["id"]: n for n, m in enumerate(parse())}
        rows = sorted(kept + rows, key=lambda r: index.get(r[0]["id"], len(index)))
    ran = {m["id"] for m, _, _ in rows}
    rows += [({"id": m["id"], "file": m["file"]}, "not-run", "") for m in parse() if m["id"] not in ran]
    live = [r for r in rows if r[1] in ("killed", "survived")]
    killed = sum(r[1] == "killed" for r in live)
    lines = [
        "# Mutation results (tests/mutation/mutate.py; issue 42)",
        *[c for c in commands if c != command],
        command,
        f"# tree: {head}{' + uncommitted changes' if dirty else ''}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"# {killed} of {len(live)} mutants run killed ({100.0 * killed / max(len(live), 1):.0f}%);"
        f" {sum(r[1] == 'stillborn' for r in rows)} stillborn, {sum(r[1] == 'not-run' for r in rows)} not run",
        "# id | file | outcome | first test that failed",
    ]
    lines += [f"{m['id']} | {m['file']} | {o} | {d}" for m, o, d in rows]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only check that every mutant applies exactly once")
    ap.add_argument("--only", help="comma-separated mutant ids to run")
    ap.add_argument("--scratch", default="/tmp/cutoff-mutation", help="scratch directory (copy and build)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.txt"), help="results file")
    ap.add_argument("--jobs", default="2", help="build jobs")
    ap.add_argument("--timeout", type=float, default=0, help="test timeout per mutant, s (0: 3x the clean run)")
    args = ap.parse_args()

    mutants = parse()
    bad = problems(ROOT, mutants)
    if args.check:
        self_test()
        for b in bad:
            print(b)
        print(f"{len(mutants)} mutants, {len(mutants) - len(bad)} apply exactly once" if not bad else
              f"{len(bad)} problems: update tests/mutation/mutants.txt")
        return 1 if bad else 0
    if bad:
        sys.exit("\n".join(bad))
    if args.only:
        want = args.only.split(",")
        unknown = set(want) - {m["id"] for m in mutants}
        if unknown:
            sys.exit(f"unknown ids: {sorted(unknown)}")
        by_id = {m["id"]: m for m in mutants}
        mutants = [by_id[i] for i in want]  # in the order given
    else:
        # Mutants of one file together: the build recompiles what depends on it once.
        order = {}
        for m in mutants:
            order.setdefault(m["file"], len(order))
        mutants.sort(key=lambda m: order[m["file"]])

    scratch = Path(args.scratch)
    src, build = scratch / "src", scratch / "build"
    sync(scratch)
    binary = build / "tests" / "cutoff_tests"
    configure = ["cmake", "-S", str(src), "-B", str(build), "-DCUTOFF_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    make = ["cmake", "--build", str(build), "-j", args.jobs, "--target", "cutoff_tests"]
    for cmd in (configure, make):
        rc, out = sh(cmd)
        if rc != 0:
            sys.exit(out[-4000:] + "\nthe clean tree does not build")
    # The clean tree must pass: the whole suite (which sets the timeout), or with
    # --timeout given the fast tests only (a rerun on a tree already checked).
    t0 = time.time()
    if args.timeout:
        rc, out = sh([str(binary), "--gtest_brief=1", "--gtest_filter=" + FAST_FILTER], cwd=src,
                     env=dict(os.environ, CUTOFF_SOURCE_DIR=str(src)))
        outcome, detail = ("survived", "") if rc == 0 else ("killed", first_failure(out))
    else:
        outcome, detail = run_tests(binary, src, timeout=3600)
    clean_s = time.time() - t0
    if outcome != "survived":
        sys.exit(f"the clean tree fails its tests ({detail}): fix that first")
    timeout = args.timeout or 3 * clean_s + 60
    print(f"clean run: {clean_s:.0f} s; per-mutant test timeout {timeout:.0f} s", flush=True)

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout
    rows = []
    for m in mutants:
        f = src / m["file"]
        text = f.read_text(encoding="utf-8")
        f.write_text(text.replace(m["find"], m["replace"]), encoding="utf-8")
        t1 = time.time()
        try:
            rc, out = sh(make)
            if rc != 0:
                outcome, detail = "stillborn", "does not compile"
            else:
                outcome, detail = run_tests(binary, src, timeout)
        finally:
            f.write_text(text, encoding="utf-8")
        rows.append((m, outcome, detail))
        report(rows, args, head, dirty)  # after each mutant: a stopped run leaves its results
        print(f"{m['id']:<34} {outcome:<9} {detail}  ({time.time() - t1:.0f} s)", flush=True)
    sh(make)  # leave the scratch build clean

    lines = report(rows, args, head, dirty)
    print(next(x for x in lines if " mutants run killed " in x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
