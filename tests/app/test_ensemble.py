#!/usr/bin/env python3
"""Ensemble tests that need processes and files (ctest runs each case; exit 77 = skipped).

  member-is-run   a member is the run `cutoff run --set ... --replicate R` writes
  kill-resume     SIGKILL at random moments (seeded, printed), then the same command:
                  every file identical to an uninterrupted ensemble's
  flipped-byte    a finished member with one byte flipped is detected and redone
  mpi             `mpirun -n 2` gives the files one process gives, bit for bit
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
SMALL = ["--firms", "8000", "--users", "20000", "--set", "n_large=2500", "--set", "tau0_ref_firms=0", "--ticks", "6"]
PROVENANCE_EXTRA = {"member", "ensemble_point"}


def ensemble_args(cutoff, extra=()):
    return [cutoff, "ensemble", SCENARIO, "-o", "ens", "--replicates", "3", "--sweep", "bm=2,3",
            *SMALL, "--jobs", "2", "-q", *extra]


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
    m, r = h5py.File(os.path.join(d, "ens", "members", "m000004.h5")), h5py.File(os.path.join(d, "run.h5"))
    provenance = set(r.attrs["provenance_attributes"].split())
    for k, v in r.attrs.items():
        if k not in provenance and not np.array_equal(np.asarray(m.attrs[k]), np.asarray(v)):
            sys.exit(f"FAIL: root attribute {k} differs: {m.attrs[k]!r} vs {v!r}")
    extra = set(m.attrs) - set(r.attrs)
    if extra != PROVENANCE_EXTRA | {"bm"}:
        sys.exit(f"FAIL: member adds attributes {extra}")
    if (m.attrs["member"], m.attrs["ensemble_point"], m.attrs["bm"]) != (4, 1, 3.0):
        sys.exit(f"FAIL: member attributes {dict(m.attrs)}")
    names = []
    r.visit(names.append)
    checked = 0
    for n in names:
        a, b = r[n], m[n]
        if isinstance(a, h5py.Dataset):
            va, vb = a[()], b[()]
            same = va.tolist() == vb.tolist() if va.dtype == object else va.tobytes() == vb.tobytes()
            if a.dtype != b.dtype or a.shape != b.shape or not same:
                sys.exit(f"FAIL: dataset {n} differs")
            checked += 1
        for k, v in a.attrs.items():
            if k in ("DIMENSION_LIST", "REFERENCE_LIST"):
                continue
            if not np.array_equal(np.asarray(b.attrs[k]), np.asarray(v)):
                sys.exit(f"FAIL: attribute {n}@{k} differs")
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


def kill_resume(cutoff, tmp, seed):
    ref, took = reference(cutoff, tmp)
    rng = random.Random(seed)
    d = os.path.join(tmp, "b")
    os.makedirs(d)
    for k in range(3):
        delay = rng.uniform(0.0, 1.1 * took)
        p = subprocess.Popen(ensemble_args(cutoff), cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = sorted(os.listdir(os.path.join(d, "ens", "members"))) if os.path.isdir(os.path.join(d, "ens", "members")) else []
        print(f"kill {k}: after {delay:.2f} s of {took:.2f} s (seed {seed}); left {len(left)} files")
    run(ensemble_args(cutoff), d)  # the same command: even the provenance attributes agree
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["member-is-run", "kill-resume", "flipped-byte", "mpi", "checkpoint"])
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
        elif a.case == "mpi":
            mpi(cutoff, tmp, a.mpi.upper() in ("ON", "1", "TRUE", "YES"))
        else:
            checkpoint(cutoff, tmp, seed)


if __name__ == "__main__":
    main()
