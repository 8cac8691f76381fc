#!/usr/bin/env python3
"""Ensemble tests that need processes and files (ctest runs each case; exit 77 = skipped).

  member-is-run   a member is the run `cutoff run --set ... --replicate R` writes
  kill-resume     SIGKILL at random moments (seeded, printed), then the same command:
                  every file identical to an uninterrupted ensemble's
  flipped-byte    a finished member with one byte flipped is detected and redone
  mpi             `mpirun -n 2` gives the files one process gives, bit for bit (a sweep,
                  and --scenarios with --design)
  scenarios       --scenarios: common random numbers (one file under two names gives
                  identical members), a member is `cutoff run <its scenario>`, the gathered
                  contract, another scenario list in the same OUTDIR refused
  design          --design: the gathered contract, a member is `cutoff run --set <its row>`,
                  a changed design in the same OUTDIR refused, each bad design exits 2
                  naming the file, row and column
  design-kill-resume  kill-resume with --design
  checkpoint      `cutoff run --checkpoint-every K` killed at a random tick resumes to the
                  uninterrupted output; a checkpoint of another run is refused

Sizes are tiny (the small-run flags of tests/support.hpp).
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = os.path.join(ROOT, "data", "scenarios", "baseline.toml")
MORATORIUM = os.path.join(ROOT, "data", "scenarios", "moratorium.toml")
SMALL = ["--firms", "8000", "--users", "20000", "--set", "n_large=2500", "--set", "tau0_ref_firms=0", "--ticks", "6"]
PROVENANCE_EXTRA = {"member", "ensemble_point"}


def ensemble_args(cutoff, extra=()):
    return [cutoff, "ensemble", SCENARIO, "-o", "ens", "--replicates", "3", "--sweep", "bm=2,3",
            *SMALL, "--jobs", "2", "-q", *extra]


# A design of three points: a real, a provider field and a boolean (0/1 and true).
DESIGN = "bm, provider.0.offset,seats\n2,0.1,0\n3,0.5,true\n2.5,0,1\n"
DESIGN_SETS = [["bm=2", "provider.0.offset=0.1", "seats=false"], ["bm=3", "provider.0.offset=0.5", "seats=true"],
               ["bm=2.5", "provider.0.offset=0", "seats=true"]]


def design_args(cutoff, extra=()):
    """An ensemble of DESIGN (written as design.csv in the working directory)."""
    return [cutoff, "ensemble", SCENARIO, "-o", "ens", "--replicates", "2", "--design", "design.csv",
            *SMALL, "--jobs", "2", "-q", *extra]


def write_design(d, text=DESIGN, name="design.csv"):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def same_as_run(member, run_file, extra_attrs, ignore=()):
    """Every dataset and non-provenance attribute of @member equals @run_file's (root
    attributes in @ignore aside); the member adds exactly @extra_attrs at the root. Returns
    the number of datasets compared."""
    m, r = h5py.File(member), h5py.File(run_file)
    provenance = set(r.attrs["provenance_attributes"].split()) | set(ignore)
    for k, v in r.attrs.items():
        if k not in provenance and not np.array_equal(np.asarray(m.attrs[k]), np.asarray(v)):
            sys.exit(f"FAIL: {member}: root attribute {k} differs: {m.attrs[k]!r} vs {v!r}")
    extra = set(m.attrs) - set(r.attrs)
    if extra != set(extra_attrs):
        sys.exit(f"FAIL: {member} adds attributes {sorted(extra)}, expected {sorted(extra_attrs)}")
    names = []
    r.visit(names.append)
    checked = 0
    for n in names:
        a, b = r[n], m[n]
        if isinstance(a, h5py.Dataset):
            va, vb = a[()], b[()]
            same = va.tolist() == vb.tolist() if va.dtype == object else va.tobytes() == vb.tobytes()
            if a.dtype != b.dtype or a.shape != b.shape or not same:
                sys.exit(f"FAIL: {member}: dataset {n} differs from {run_file}'s")
            checked += 1
        for k, v in a.attrs.items():
            if k in ("DIMENSION_LIST", "REFERENCE_LIST"):
                continue
            if not np.array_equal(np.asarray(b.attrs[k]), np.asarray(v)):
                sys.exit(f"FAIL: {member}: attribute {n}@{k} differs")
    return checked


def run(cmd, cwd, check=True):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr}")
    return r


def files(d):
    out = {}
    for base, _, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            out[os.path.relpath(p, d)] = open(p, "rb").read()
    return out


def same_files(a, b):
    fa, fb = files(a), files(b)
    if sorted(fa) != sorted(fb):
        sys.exit(f"FAIL: file lists differ:\n  {sorted(fa)}\n  {sorted(fb)}")
    bad = [k for k in fa if fa[k] != fb[k]]
    if bad:
        sys.exit(f"FAIL: files differ: {bad}")
    return len(fa)


def reference(cutoff, tmp, extra=()):
    d = os.path.join(tmp, "ref")
    os.makedirs(d)
    t = time.time()
    run(ensemble_args(cutoff, extra), d)
    return d, time.time() - t


def member_is_run(cutoff, tmp):
    d = os.path.join(tmp, "a")
    os.makedirs(d)
    run(ensemble_args(cutoff), d)
    run([cutoff, "run", SCENARIO, "-o", "run.h5", "--set", "bm=3", "--replicate", "1", *SMALL, "-q"], d)
    # bm=3 is sweep point 1; replicate 1: member 1 * 3 + 1.
    member = os.path.join(d, "ens", "members", "m000004.h5")
    checked = same_as_run(member, os.path.join(d, "run.h5"), PROVENANCE_EXTRA | {"bm"})
    m, r = h5py.File(member), h5py.File(os.path.join(d, "run.h5"))
    provenance = set(r.attrs["provenance_attributes"].split())
    if (m.attrs["member"], m.attrs["ensemble_point"], m.attrs["bm"]) != (4, 1, 3.0):
        sys.exit(f"FAIL: member attributes {dict(m.attrs)}")
    # And the ensemble file holds it at (bm=3, replicate=1).
    e = h5py.File(os.path.join(d, "ens", "ensemble.h5"))
    if e["metrics/member"][1, 1] != 4 or not np.array_equal(e["metrics/capacity"][1, 1], r["metrics/capacity"][()]):
        sys.exit("FAIL: ensemble.h5 does not hold member 4 at (bm=3, replicate=1)")
    try:
        import xarray as xr
    except ImportError:
        xr = None
    if xr is not None:  # named dims in xarray, both files
        x = xr.open_dataset(os.path.join(d, "ens", "ensemble.h5"), group="metrics", engine="h5netcdf")
        y = xr.open_dataset(os.path.join(d, "ens", "summary.h5"), group="metrics", engine="h5netcdf")
        if x.capacity.dims != ("bm", "replicate", "tick", "provider") or list(x.bm.values) != [2.0, 3.0]:
            sys.exit(f"FAIL: ensemble.h5 dims {x.capacity.dims}")
        if y.capacity.dims != ("stat", "bm", "tick", "provider") or list(y.stat.values)[:2] != ["mean", "std"]:
            sys.exit(f"FAIL: summary.h5 dims {y.capacity.dims}")
        q = np.nanquantile(x.capacity.values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1)
        if not np.array_equal(q, y.capacity.values[2:], equal_nan=True):
            sys.exit("FAIL: summary quantiles differ from numpy's")
    print(f"ok: member 4 equals the run ({checked} datasets, attributes but {sorted(provenance)})")


def kill_resume(cutoff, tmp, seed, args=ensemble_args, design=False):
    d = os.path.join(tmp, "b")
    os.makedirs(d)
    if design:
        os.makedirs(os.path.join(tmp, "ref"))
        write_design(os.path.join(tmp, "ref"))
        write_design(d)
    t = time.time()
    if design:
        run(args(cutoff), os.path.join(tmp, "ref"))
        ref, took = os.path.join(tmp, "ref"), time.time() - t
    else:
        ref, took = reference(cutoff, tmp)
    rng = random.Random(seed)
    for k in range(3):
        delay = rng.uniform(0.0, 1.1 * took)
        p = subprocess.Popen(args(cutoff), cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = sorted(os.listdir(os.path.join(d, "ens", "members"))) if os.path.isdir(os.path.join(d, "ens", "members")) else []
        print(f"kill {k}: after {delay:.2f} s of {took:.2f} s (seed {seed}); left {len(left)} files")
    run(args(cutoff), d)  # the same command: even the provenance attributes agree
    n = same_files(os.path.join(ref, "ens"), os.path.join(d, "ens"))
    print(f"ok: after kills and a resume, {n} files identical to the uninterrupted ensemble")


def flipped_byte(cutoff, tmp, seed):
    ref, _ = reference(cutoff, tmp)
    d = os.path.join(tmp, "c")
    shutil.copytree(ref, d)
    victim = os.path.join(d, "ens", "members", "m000002.h5")
    members = os.path.join(d, "ens", "members")
    before = {n: os.stat(os.path.join(members, n)).st_mtime_ns for n in os.listdir(members)}
    data = bytearray(open(victim, "rb").read())
    at = random.Random(seed).randrange(len(data))
    data[at] ^= 0x01
    open(victim, "wb").write(bytes(data))
    print(f"flipped bit 0 of byte {at} of {victim} (seed {seed})")
    run(ensemble_args(cutoff), d)
    redone = sorted(n for n, t in before.items() if os.stat(os.path.join(members, n)).st_mtime_ns != t)
    if redone != ["m000002.h5", "m000002.h5.done"]:
        sys.exit(f"FAIL: expected only member 2 redone, rewritten: {redone}")
    n = same_files(os.path.join(ref, "ens"), os.path.join(d, "ens"))
    print(f"ok: the flipped member was redone; {n} files identical")


def mpi(cutoff, tmp, have_mpi):
    mpirun = shutil.which("mpirun")
    if not have_mpi or not mpirun:
        print("skipping: " + ("no mpirun" if not mpirun else "cutoff built without MPI"))
        sys.exit(77)
    ref, _ = reference(cutoff, tmp)
    d = os.path.join(tmp, "m")
    os.makedirs(d)
    flags = ["--oversubscribe"]
    if os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    run([mpirun, *flags, "-n", "2", *ensemble_args(cutoff)], d)
    n = same_files(os.path.join(ref, "ens"), os.path.join(d, "ens"))
    print(f"ok: mpirun -n 2 wrote {n} files identical to one process's")
    # --scenarios with --design: members (s·P + p)·N + R spread over the ranks the same way.
    for sub in ("ref2", "m2"):
        os.makedirs(os.path.join(tmp, sub))
        write_design(os.path.join(tmp, sub))
    cmd = [cutoff, "ensemble", "--scenarios", f"{SCENARIO},{MORATORIUM}", "-o", "ens", "--replicates", "2",
           "--design", "design.csv", *SMALL, "--jobs", "2", "-q"]
    run(cmd, os.path.join(tmp, "ref2"))
    run([mpirun, *flags, "-n", "2", *cmd], os.path.join(tmp, "m2"))
    n = same_files(os.path.join(tmp, "ref2", "ens"), os.path.join(tmp, "m2", "ens"))
    print(f"ok: mpirun -n 2 of --scenarios with --design wrote {n} files identical to one process's")


def checkpoint(cutoff, tmp, seed):
    ticks = 40
    flags = ["--firms", "8000", "--users", "20000", "--set", "n_large=2500", "--set", "tau0_ref_firms=0", "--ticks", str(ticks),
             "-q"]
    cmd = [cutoff, "run", SCENARIO, "-o", "run.h5", *flags, "--checkpoint-every", "3"]
    ref = os.path.join(tmp, "ref")
    os.makedirs(ref)
    t = time.time()
    run(cmd, ref)
    took = time.time() - t
    d = os.path.join(tmp, "k")
    os.makedirs(d)
    rng = random.Random(seed)
    for k in range(2):
        # The first kill mid-run; the second early in the resumed run.
        delay = rng.uniform(0.2 * took, 0.9 * took) if k == 0 else rng.uniform(0.05 * took, 0.4 * took)
        p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        print(f"kill {k}: after {delay:.2f} s of {took:.2f} s (seed {seed}); files {sorted(os.listdir(d))}")
    run(cmd, d)
    a, b = open(os.path.join(ref, "run.h5"), "rb").read(), open(os.path.join(d, "run.h5"), "rb").read()
    if a != b:
        sys.exit("FAIL: resumed run.h5 differs from the uninterrupted one")
    if any(n != "run.h5" for n in os.listdir(d)):
        sys.exit(f"FAIL: files left behind: {os.listdir(d)}")
    # A checkpoint of another run is refused, naming the file and what differs.
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.6 * took)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if not any(n.endswith(".checkpoint") for n in os.listdir(d)):
        print("note: no checkpoint left at 60% (a fast machine); refusal not checked")
    else:
        r = run(cmd + ["--seed", "7"], d, check=False)
        if r.returncode != 2 or "checkpoint" not in r.stderr or "seed" not in r.stderr:
            sys.exit(f"FAIL: a checkpoint of another seed was not refused: {r.returncode} {r.stderr}")
        print("refused: " + r.stderr.strip())
    print("ok: a checkpointed run killed at random ticks resumed to identical output")


def scenarios(cutoff, tmp):
    d = os.path.join(tmp, "s")
    os.makedirs(os.path.join(d, "sub"))
    # One scenario under two names (a, b: the baseline, unchanged), then the moratorium.
    for n in ("a.toml", "b.toml", os.path.join("sub", "a.toml")):
        with open(os.path.join(d, n), "w") as f:
            f.write(f'inherits = "{SCENARIO}"\n')
    S, P, N = 3, 2, 2
    cmd = [cutoff, "ensemble", "--scenarios", f"a.toml, b.toml,{MORATORIUM}", "-o", "ens", "--replicates", str(N),
           "--sweep", "bm=2,3", *SMALL, "--jobs", "2", "-q"]
    run(cmd, d)
    members = os.path.join(d, "ens", "members")

    def path(s, p, r):
        return os.path.join(members, f"m{(s * P + p) * N + r:06d}.h5")

    def differ(f, g):  # the metrics that differ between two member files
        a, b = h5py.File(f)["metrics"], h5py.File(g)["metrics"]
        return [k for k in a if a[k].dtype == np.float64 and a[k][()].tobytes() != b[k][()].tobytes()]

    # Common random numbers: member (s, p, R) of a and b are the same run, bit for bit.
    for p in range(P):
        for r in range(N):
            same_as_run(path(1, p, r), path(0, p, r), set(), ignore={"member", "ensemble_scenario"})
    # ... and not trivially: replicates differ, and the moratorium is another scenario.
    if not differ(path(0, 0, 0), path(0, 0, 1)):
        sys.exit("FAIL: replicates 0 and 1 hold the same metrics")
    fm, fa = h5py.File(path(2, 0, 0)), h5py.File(path(0, 0, 0))
    if fm.attrs["scenario"] == fa.attrs["scenario"] or not differ(path(2, 0, 0), path(0, 0, 0)):
        sys.exit("FAIL: the moratorium's member is the baseline's")
    if (fm.attrs["ensemble_scenario"], fa.attrs["ensemble_scenario"]) != ("moratorium", "a"):
        sys.exit(f"FAIL: ensemble_scenario {fm.attrs['ensemble_scenario']!r}, {fa.attrs['ensemble_scenario']!r}")
    # A member of the moratorium is `cutoff run moratorium.toml --set bm=3 --replicate 1`.
    run([cutoff, "run", MORATORIUM, "-o", "run.h5", "--set", "bm=3", "--replicate", "1", *SMALL, "-q"], d)
    checked = same_as_run(path(2, 1, 1), os.path.join(d, "run.h5"),
                          {"member", "ensemble_point", "ensemble_scenario", "bm"})
    m = h5py.File(path(2, 1, 1))
    if (m.attrs["member"], m.attrs["ensemble_point"], m.attrs["bm"]) != (11, 1, 3.0):
        sys.exit(f"FAIL: member attributes {dict(m.attrs)}")
    # The gathered contract.
    e = h5py.File(os.path.join(d, "ens", "ensemble.h5"))
    if (e.attrs["scenarios"], e.attrs["sweep_keys"]) != ("a,b,moratorium", "bm"):
        sys.exit(f"FAIL: ensemble.h5 attributes {e.attrs['scenarios']!r} {e.attrs['sweep_keys']!r}")
    if [x.decode() if isinstance(x, bytes) else x for x in e["metrics/scenario"][()]] != ["a", "b", "moratorium"]:
        sys.exit(f"FAIL: scenario coordinate {e['metrics/scenario'][()]}")
    if not np.array_equal(e["metrics/member"][()], np.arange(S * P * N).reshape(S, P, N)):
        sys.exit(f"FAIL: member index {e['metrics/member'][()]}")
    if not np.array_equal(e["metrics/capacity"][2, 1, 1], h5py.File(os.path.join(d, "run.h5"))["metrics/capacity"][()]):
        sys.exit("FAIL: ensemble.h5 does not hold member 11 at (moratorium, bm=3, replicate=1)")
    try:
        import xarray as xr
    except ImportError:
        xr = None
    if xr is not None:
        x = xr.open_dataset(os.path.join(d, "ens", "ensemble.h5"), group="metrics", engine="h5netcdf")
        y = xr.open_dataset(os.path.join(d, "ens", "summary.h5"), group="metrics", engine="h5netcdf")
        if x.capacity.dims != ("scenario", "bm", "replicate", "tick", "provider"):
            sys.exit(f"FAIL: ensemble.h5 dims {x.capacity.dims}")
        if y.capacity.dims != ("stat", "scenario", "bm", "tick", "provider"):
            sys.exit(f"FAIL: summary.h5 dims {y.capacity.dims}")
        paired = x.capacity.sel(scenario="moratorium") - x.capacity.sel(scenario="a")
        if paired.dims != ("bm", "replicate", "tick", "provider"):
            sys.exit(f"FAIL: paired difference dims {paired.dims}")
    # Another scenario list (or order) in the same OUTDIR is refused; the same command resumes.
    other = [c if not c.startswith("a.toml") else f"b.toml,a.toml,{MORATORIUM}" for c in cmd]
    r = run(other, d, check=False)
    if r.returncode != 2 or "holds another ensemble" not in r.stderr:
        sys.exit(f"FAIL: another scenario list was not refused: {r.returncode} {r.stderr}")
    run(cmd, d)
    # Two files of one stem are refused, naming both.
    r = run([cutoff, "ensemble", "--scenarios", "a.toml,sub/a.toml", "-o", "ens2", "--replicates", "1", "-q"], d,
            check=False)
    if r.returncode != 2 or "'a.toml'" not in r.stderr or "'sub/a.toml'" not in r.stderr or os.path.exists(
            os.path.join(d, "ens2")):
        sys.exit(f"FAIL: a label collision was not refused: {r.returncode} {r.stderr}")
    print(f"ok: a and b gave identical members; member 11 equals the moratorium's run ({checked} datasets); "
          f"refused: {r.stderr.strip()}")


BAD_DESIGNS = [  # (file name, text, what the message must name)
    ("unknown.csv", "bm,bmm\n1,2\n", ["row 1 (line 2)", "column 'bmm'", "unknown key"]),
    ("range.csv", "bm,p_switch\n1,0.1\n1,7\n", ["row 2 (line 3)", "column 'p_switch'", "out of range"]),
    ("integer.csv", "n_firms\n2.5\n", ["row 1 (line 2)", "column 'n_firms'", "integers only"]),
    ("boolean.csv", "bm,seats\n1,2\n", ["row 1 (line 2)", "column 'seats'", "0, 1, true, false"]),
    ("string.csv", "lever_country\n1\n", ["column 1 'lever_country'", "a number or a boolean"]),
    ("word.csv", "bm\n1\nabc\n", ["row 2 (line 3)", "column 'bm'", "not a number"]),
    ("blank.csv", "bm,p_switch\n1,\n", ["row 1 (line 2)", "column 'p_switch'", "empty value"]),
    ("empty.csv", "", ["empty file"]),
    ("header.csv", "bm\n", ["no rows"]),
    ("ragged.csv", "bm,p_switch\n1,0.1\n2\n", ["row 2 (line 3)", "the header has 2"]),
    ("twice.csv", "bm,bm\n1,1\n", ["column 2 'bm'", "repeats column 1"]),
    ("horizon.csv", "horizon\n12\n", ["column 1 'horizon'", "--ticks"]),
    ("quoted.csv", 'bm\n"1"\n', ["line 2", "quoted"]),
    ("design.parquet", "PAR1", ["Parquet", "CSV"]),
]


def design(cutoff, tmp):
    import hashlib
    d = os.path.join(tmp, "d")
    os.makedirs(d)
    write_design(d)
    P, N = 3, 2
    run(design_args(cutoff), d)
    ens = os.path.join(d, "ens")
    keys = ["bm", "provider.0.offset", "seats"]
    coords = [[2, 0.1, 0], [3, 0.5, 1], [2.5, 0, 1]]
    e = h5py.File(os.path.join(ens, "ensemble.h5"))
    # Members are `cutoff run --set <the row> --replicate R`; the gathered file holds them.
    for p, r in [(1, 1), (2, 0)]:
        m = p * N + r
        sets = [x for kv in DESIGN_SETS[p] for x in ("--set", kv)]
        run([cutoff, "run", SCENARIO, "-o", f"run{m}.h5", *sets, "--replicate", str(r), *SMALL, "-q"], d)
        member = os.path.join(ens, "members", f"m{m:06d}.h5")
        same_as_run(member, os.path.join(d, f"run{m}.h5"), {"member", "ensemble_point", *keys})
        a = h5py.File(member).attrs
        if (a["member"], a["ensemble_point"]) != (m, p) or [a[k] for k in keys] != coords[p] or any(
                np.asarray(a[k]).dtype != np.float64 for k in keys):
            sys.exit(f"FAIL: member {m} attributes {dict(a)}")
        if not np.array_equal(e["metrics/capacity"][p, r], h5py.File(os.path.join(d, f"run{m}.h5"))["metrics/capacity"][()]):
            sys.exit(f"FAIL: ensemble.h5 does not hold member {m} at (point {p}, replicate {r})")
    sha = hashlib.sha256(DESIGN.encode()).hexdigest()
    want = {"design_keys": ",".join(keys), "design_file": "design.csv", "design_sha256": sha, "sweep_keys": ""}
    for k, v in want.items():
        if e.attrs[k] != v:
            sys.exit(f"FAIL: ensemble.h5 attribute {k} = {e.attrs[k]!r}, expected {v!r}")
    if e["metrics/point"].dtype != np.int64 or list(e["metrics/point"][()]) != list(range(P)):
        sys.exit(f"FAIL: point coordinate {e['metrics/point'].dtype} {e['metrics/point'][()]}")
    for c, k in enumerate(keys):
        v = e["metrics/" + k]
        if v.dtype != np.float64 or list(v[()]) != [row[c] for row in coords]:
            sys.exit(f"FAIL: design coordinate {k}: {v.dtype} {v[()]}")
    if [e["metrics/" + k].attrs["units"] for k in keys] != ["1", "K", "1"]:
        sys.exit("FAIL: design coordinates' units are not the schema's")
    if not np.array_equal(e["metrics/member"][()], np.arange(P * N).reshape(P, N)):
        sys.exit(f"FAIL: member index {e['metrics/member'][()]}")
    try:
        import xarray as xr
    except ImportError:
        xr = None
    if xr is not None:
        x = xr.open_dataset(os.path.join(ens, "ensemble.h5"), group="metrics", engine="h5netcdf")
        y = xr.open_dataset(os.path.join(ens, "summary.h5"), group="metrics", engine="h5netcdf")
        if x.capacity.dims != ("point", "replicate", "tick", "provider") or x["provider.0.offset"].dims != ("point",):
            sys.exit(f"FAIL: ensemble.h5 dims {x.capacity.dims}, {x['provider.0.offset'].dims}")
        if y.capacity.dims != ("stat", "point", "tick", "provider") or list(y.seats.values) != [0.0, 1.0, 1.0]:
            sys.exit(f"FAIL: summary.h5 dims {y.capacity.dims}")
        q = np.nanquantile(x.capacity.values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1)
        if not np.array_equal(q, y.capacity.values[2:], equal_nan=True):
            sys.exit("FAIL: summary quantiles differ from numpy's")
    # A changed design in the same OUTDIR is refused; --design with --sweep too.
    write_design(d, DESIGN.replace("2.5,0,1", "2.5,0,0"))
    r = run(design_args(cutoff), d, check=False)
    if r.returncode != 2 or "holds another ensemble" not in r.stderr:
        sys.exit(f"FAIL: a changed design was not refused: {r.returncode} {r.stderr}")
    r = run(design_args(cutoff, ["--sweep", "p_switch=0.1,0.2"]), d, check=False)
    if r.returncode != 2 or "--sweep" not in r.stderr:
        sys.exit(f"FAIL: --design with --sweep was not refused: {r.returncode} {r.stderr}")
    # Bad designs: exit 2, one line naming the file, the row and the column; nothing written.
    for name, text, needles in BAD_DESIGNS:
        write_design(d, text, name)
        out = "bad-" + name
        r = run([cutoff, "ensemble", SCENARIO, "-o", out, "--replicates", "1", "--design", name, *SMALL, "-q"], d,
                check=False)
        msg = r.stderr.strip()
        if r.returncode != 2 or "\n" in msg or f"--design '{name}'" not in msg or any(n not in msg for n in needles):
            sys.exit(f"FAIL: bad design {name}: exit {r.returncode}, {msg!r}; expected 2 naming {needles}")
        if os.path.exists(os.path.join(d, out)):
            sys.exit(f"FAIL: bad design {name} left {out}")
        print("refused: " + msg)
    print(f"ok: --design gathered as (point, replicate, ...); members equal runs; {len(BAD_DESIGNS)} bad designs refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["member-is-run", "kill-resume", "flipped-byte", "mpi", "checkpoint", "scenarios",
                                     "design", "design-kill-resume"])
    ap.add_argument("--cutoff", required=True)
    ap.add_argument("--mpi", default="OFF")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    cutoff = os.path.abspath(a.cutoff)
    with tempfile.TemporaryDirectory(prefix="cutoff-ens-") as tmp:
        if a.case == "member-is-run":
            member_is_run(cutoff, tmp)
        elif a.case == "kill-resume":
            kill_resume(cutoff, tmp, seed)
        elif a.case == "flipped-byte":
            flipped_byte(cutoff, tmp, seed)
        elif a.case == "scenarios":
            scenarios(cutoff, tmp)
        elif a.case == "design":
            design(cutoff, tmp)
        elif a.case == "design-kill-resume":
            kill_resume(cutoff, tmp, seed, args=design_args, design=True)
        elif a.case == "mpi":
            mpi(cutoff, tmp, a.mpi.upper() in ("ON", "1", "TRUE", "YES"))
        else:
            checkpoint(cutoff, tmp, seed)


if __name__ == "__main__":
    main()
