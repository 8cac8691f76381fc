#!/usr/bin/env python3
"""Mutation harness for the model's rules (issue 42; runs outside CI).

Each mutant in mutants.txt is one exact text substitution in one rule file: the
snippet must occur exactly once in that file (matched by text, not by line, so the
list survives edits elsewhere in the file). For each mutant the harness copies the
tree to a scratch directory (once, incrementally), applies the substitution there,
builds `cutoff_rule_tests` incrementally (CUDA off, Release: the libraries and the
per-rule test files only) and runs it with --gtest_fail_fast; only a mutant those
tests do not kill gets `cutoff_tests` built and the rest of the suite run. It reports
the mutant killed (with the first failing test), killed by a timeout, stillborn (it
does not compile) or survived. The working tree is never modified.

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
# The fast per-rule tests run first, so most killed mutants stop within seconds. Their
# suites are wholly in the files of CUTOFF_RULE_TEST_SOURCES (tests/CMakeLists.txt), which
# make cutoff_rule_tests: a mutant of a rule header rebuilds the libraries and those files,
# not the whole suite, before these tests run (--check checks the partition).
# They run in two calls, the oracles (a second in all) before the solvers' and the access
# tests (a minute or more), as fail-fast stops only within one call.
FAST_PHASES = ("Oracle*.*:Eligibility.*:Providers.*", "Clearing.*:WaterFill.*:Access.*")
FAST_FILTER = ":".join(FAST_PHASES)
TESTS_CMAKE = ROOT / "tests" / "CMakeLists.txt"
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


def rule_sources(cmake_text):
    """The files of set(CUTOFF_RULE_TEST_SOURCES ...), relative to tests/."""
    m = re.search(r"set\(CUTOFF_RULE_TEST_SOURCES\s([^)]*)\)", cmake_text)
    return set(m.group(1).split()) if m else set()


def partition_problems(tests_dir, cmake_text):
    """Where a suite that FAST_FILTER selects has a test outside the rule files (the fast
    phase would then miss it, and the slow phase, run with -FAST_FILTER, too)."""
    from fnmatch import fnmatchcase
    pats = [f.split(".")[0] for f in FAST_FILTER.split(":")]
    rules = rule_sources(cmake_text)
    if not rules:
        return ["tests/CMakeLists.txt has no set(CUTOFF_RULE_TEST_SOURCES ...)"]
    out = [f"{r}: in CUTOFF_RULE_TEST_SOURCES but not in tests/" for r in sorted(rules)
           if not (tests_dir / r).is_file()]
    for f in sorted(tests_dir.rglob("*.cpp")):
        rel = f.relative_to(tests_dir).as_posix()
        if rel in rules:
            continue
        for suite in sorted(set(re.findall(r"^\s*TEST(?:_F|_P)?\(\s*(\w+)\s*,", f.read_text(encoding="utf-8"),
                                           re.M))):
            if any(fnmatchcase(suite, p) for p in pats):
                out.append(f"tests/{rel}: suite {suite} is in FAST_FILTER but the file is not in "
                           "CUTOFF_RULE_TEST_SOURCES")
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
    # The partition check: a FAST_FILTER suite in a file outside the rule files, and a
    # rule file that does not exist, are named; a suite of neither kind is not.
    with tempfile.TemporaryDirectory() as d:
        tests = Path(d)
        (tests / "a").mkdir()
        (tests / "a" / "test_rule.cpp").write_text("TEST(OracleFirms, X) {}\n", encoding="utf-8")
        (tests / "a" / "test_slow.cpp").write_text("TEST(Model, Y) {}\nTEST(Clearing, Z) {}\n", encoding="utf-8")
        (tests / "a" / "test_ok.cpp").write_text("TEST(Model, W) {}\n", encoding="utf-8")
        cmake = "set(CUTOFF_RULE_TEST_SOURCES\n  a/test_rule.cpp\n  a/gone.cpp)\n"
        named = partition_problems(tests, cmake)
        if len(named) != 2 or not any("a/gone.cpp" in n for n in named) or \
                not any("a/test_slow.cpp: suite Clearing" in n for n in named):
            sys.exit(f"self-test: the partition check named {named}, not the two planted problems")
        if partition_problems(tests, "set(CUTOFF_RULE_TEST_SOURCES a/test_rule.cpp a/test_slow.cpp)"):
            sys.exit("self-test: the partition check names a problem in a sound partition")


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


def run_phase(binary, src, flt, timeout):
    """Runs `binary`'s tests that `flt` selects, fail-fast; returns (outcome, detail)."""
    env = dict(os.environ, CUTOFF_SOURCE_DIR=str(src))
    rc, out = sh([str(binary), "--gtest_fail_fast", "--gtest_brief=1", "--gtest_filter=" + flt], timeout=timeout,
                 cwd=src, env=env)
    if rc is None:
        return "killed", f"timeout after {timeout:.0f} s"
    if rc != 0:
        return "killed", first_failure(out)
    return "survived", ""


def run_fast(binary, src, timeout):
    """The fast tests (FAST_FILTER), FAST_PHASES in order, fail-fast."""
    t0 = time.time()
    for flt in FAST_PHASES:
        outcome, detail = run_phase(binary, src, flt, max(60.0, timeout - (time.time() - t0)))
        if outcome != "survived":
            break
    return outcome, detail


def listed(binary, flt):
    """The tests `binary` holds that `flt` selects (Suite.Name), from --gtest_list_tests."""
    rc, out = sh([str(binary), "--gtest_list_tests", "--gtest_filter=" + flt])
    if rc != 0:
        sys.exit(f"{binary} --gtest_list_tests failed:\n{out[-2000:]}")
    tests, suite = set(), ""
    for line in out.splitlines():
        if line and not line.startswith(" "):
            suite = line.split()[0]
        elif line.strip():
            tests.add(suite + line.split()[0])
    return tests


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
        bad += partition_problems(ROOT / "tests", TESTS_CMAKE.read_text(encoding="utf-8"))
        for b in bad:
            print(b)
        print(f"{len(mutants)} mutants, {len(mutants) - len(bad)} apply exactly once" if not bad else
              f"{len(bad)} problems: update tests/mutation/mutants.txt (or CUTOFF_RULE_TEST_SOURCES)")
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
    rule_binary, binary = build / "tests" / "cutoff_rule_tests", build / "tests" / "cutoff_tests"
    configure = ["cmake", "-S", str(src), "-B", str(build), "-DCUTOFF_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    # cutoff_rule_tests links core/sim and below (tests/CMakeLists.txt), cutoff_tests core/app too.
    make_libs = ["cmake", "--build", str(build), "-j", args.jobs, "--target", "cutoff_sim"]
    make_rule = ["cmake", "--build", str(build), "-j", args.jobs, "--target", "cutoff_rule_tests"]
    make = ["cmake", "--build", str(build), "-j", args.jobs, "--target", "cutoff_tests"]
    for cmd in (configure, make_rule, make):
        rc, out = sh(cmd)
        if rc != 0:
            sys.exit(out[-4000:] + "\nthe clean tree does not build")
    # The two phases together run the whole suite: cutoff_rule_tests holds every test of
    # cutoff_tests that FAST_FILTER selects (the slow phase runs cutoff_tests with -FAST_FILTER).
    fast, fast_full = listed(rule_binary, FAST_FILTER), listed(binary, FAST_FILTER)
    if not fast or fast != fast_full:
        sys.exit(f"cutoff_rule_tests and cutoff_tests differ in the fast tests: {sorted(fast ^ fast_full)[:10]}")
    # The clean tree must pass: the whole suite (which sets the timeout), or with
    # --timeout given the fast tests only (a rerun on a tree already checked).
    t0 = time.time()
    outcome, detail = run_fast(rule_binary, src, 3600)
    if outcome == "survived" and not args.timeout:
        outcome, detail = run_phase(binary, src, "-" + FAST_FILTER, 3600)
    clean_s = time.time() - t0
    if outcome != "survived":
        sys.exit(f"the clean tree fails its tests ({detail}): fix that first")
    timeout = args.timeout or 3 * clean_s + 60
    print(f"clean run: {clean_s:.0f} s ({len(fast)} fast tests); per-mutant test timeout {timeout:.0f} s", flush=True)

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout
    rows = []
    for m in mutants:
        f = src / m["file"]
        text = f.read_text(encoding="utf-8")
        f.write_text(text.replace(m["find"], m["replace"]), encoding="utf-8")
        t1 = time.time()
        steps = []  # (step, seconds): where the mutant's time went

        def step(name, fn):
            t = time.time()
            r = fn()
            steps.append((name, time.time() - t))
            return r
        try:
            # The per-rule tests first (core/sim and below, and six test files); the rest of the
            # suite (cutoff_tests: core/io, core/app and every test file) only for a mutant they
            # do not kill.
            outcome, detail = "stillborn", "does not compile"
            if step("build libraries", lambda: sh(make_libs)[0]) == 0 and \
                    step("build rule tests", lambda: sh(make_rule)[0]) == 0:
                outcome, detail = step("fast tests", lambda: run_fast(rule_binary, src, timeout))
                if outcome == "survived":
                    outcome, detail = "stillborn", "does not compile"
                    if step("build cutoff_tests", lambda: sh(make)[0]) == 0:
                        left = max(60.0, timeout - steps[2][1])
                        outcome, detail = step("rest", lambda: run_phase(binary, src, "-" + FAST_FILTER, left))
        finally:
            f.write_text(text, encoding="utf-8")
        rows.append((m, outcome, detail))
        report(rows, args, head, dirty)  # after each mutant: a stopped run leaves its results
        where = ", ".join(f"{n} {t:.0f} s" for n, t in steps)
        print(f"{m['id']:<34} {outcome:<9} {detail}  ({time.time() - t1:.0f} s: {where})", flush=True)
    t1 = time.time()
    sh(make_rule)  # leave the scratch build clean
    t2 = time.time()
    sh(make)
    print(f"the clean tree rebuilt: cutoff_rule_tests {t2 - t1:.0f} s, then cutoff_tests {time.time() - t2:.0f} s",
          flush=True)

    lines = report(rows, args, head, dirty)
    print(next(x for x in lines if " mutants run killed " in x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
