#!/usr/bin/env python3
"""Statistical comparison of the NumPy peer with cutoff (baseline scenario).

Runs the first N seeds of each that derive τ0 (at 10,000 firms about 40% of
seeds cannot reach tightness0 in either program, which both stop with exit
status 2), then compares the four metrics at ticks 12 and 23: means, seed-to-seed
standard errors, and the verdict |Δ| ≤ max(3·sqrt(se_a² + se_b²), 2% of cutoff's mean).
`--set key=value` goes to the peer only (a sensitivity check must then disagree);
`--both key=value` to both (v5's switches: bench/compare.py V5_SETS). Both derive τ0
and need0 on their own population (tau0_ref_firms=0, as bench/compare.py).

  python3 bench/peers/numpy/compare_cutoff.py [--firms 10000 --users 100000 --ticks 24 --seeds 5]
          [--work /tmp/cutoff_np_cmp] [--tag base] [--cutoff build/cutoff] [--set key=value]...
          [--both key=value]...
Needs h5py and numpy (cutoff writes HDF5).
"""

import argparse
import json
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
KEYS = ["mean_price", "top20_value_share", "adoption_share", "users_capped_share"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--firms", type=int, default=10000)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--ticks", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scenario", default="data/scenarios/baseline.toml")
    ap.add_argument("--work", default="/tmp/cutoff_np_cmp")
    ap.add_argument("--tag", default="base")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--both", action="append", default=[], help="a parameter for cutoff and the peer")
    ap.add_argument("--cutoff", default=f"{REPO}/build/cutoff")
    a = ap.parse_args()
    both = [x for kv in ["tau0_ref_firms=0"] + a.both for x in ("--set", kv)]
    os.makedirs(a.work, exist_ok=True)
    size = ["--firms", str(a.firms), "--users", str(a.users), "--ticks", str(a.ticks)]
    stem = f"{a.firms}_{a.users}_{a.ticks}" + "".join(f"_{kv}" for kv in a.both)

    def ref(s):
        out = f"{a.work}/ref_{stem}_s{s}.h5"
        if not os.path.exists(out):
            r = subprocess.run([a.cutoff, "run", a.scenario, "-o", out, *size, "--seed", str(s), "-q", *both],
                               cwd=REPO, stderr=subprocess.DEVNULL)
            if r.returncode:
                return None
        f = h5py.File(out)["metrics"]
        pop = f["population"][:]
        return {"seed": s, "tau0": f["tokens_per_worker"][0], "mean_price": f["compute_price"][:].mean(axis=1),
                "top20_value_share": f["top20_value_share"][:],
                "adoption_share": (f["adoption_share"][:] * pop).sum(axis=1) / pop.sum(),
                "users_capped_share": f["users_capped_share"][:]}

    def peer(s):
        out = f"{a.work}/np_{a.tag}_{stem}_s{s}.json"
        if os.path.exists(out + ".fail"):
            return None
        if not os.path.exists(out):
            cmd = [sys.executable, f"{HERE}/cutoff_np.py", a.scenario, *size, "--seed", str(s), "--out", out,
                   "--diagnostics", "--cutoff", a.cutoff, *both] + [x for kv in a.sets for x in ("--set", kv)]
            r = subprocess.run(cmd, cwd=REPO, stderr=subprocess.DEVNULL)
            if r.returncode == 2:
                open(out + ".fail", "w").close()
                return None
            r.check_returncode()
        d = json.load(open(out))
        r = {k: np.array(d["metrics"][k], dtype=float) for k in KEYS}
        r.update(seed=s, tau0=d["diagnostics"]["tokens_per_worker"][0], tick=np.mean(d["tick_seconds"]),
                 init=d["init_seconds"])
        return r

    def first(fn):
        got, failed, s = [], [], 1
        while len(got) < a.seeds:
            r = fn(s)
            (got if r is not None else failed).append(r if r is not None else s)
            s += 1
        return got, failed

    R, fr = first(ref)
    N, fn = first(peer)
    print(f"== {a.scenario} {a.firms} firms {a.users} users {a.ticks} ticks; both --set {a.both}; peer --set {a.sets}")
    print("cutoff seeds", [r["seed"] for r in R], "no tau0:", fr, "tau0", np.round([r["tau0"] for r in R], 2))
    print("peer   seeds", [r["seed"] for r in N], "no tau0:", fn, "tau0", np.round([r["tau0"] for r in N], 2))
    print(f"{'metric':20s}{'tick':>5s}{'cutoff':>12s}{'se':>10s}{'peer':>12s}{'se':>10s}{'diff':>11s}"
          f"{'3 se_c':>10s}{'2% rel':>10s}  verdict")
    bad = 0
    for k in KEYS:
        for t in (12, 23):
            if t >= a.ticks:
                continue
            x = np.array([r[k][t] for r in R])
            y = np.array([r[k][t] for r in N])
            sx, sy = x.std(ddof=1) / np.sqrt(len(x)), y.std(ddof=1) / np.sqrt(len(y))
            tol3, tol2 = 3 * np.hypot(sx, sy), 0.02 * abs(x.mean())
            ok = abs(y.mean() - x.mean()) <= max(tol3, tol2)
            bad += not ok
            print(f"{k:20s}{t:5d}{x.mean():12.5g}{sx:10.3g}{y.mean():12.5g}{sy:10.3g}{y.mean() - x.mean():11.3g}"
                  f"{tol3:10.3g}{tol2:10.3g}  {'agree' if ok else 'DISAGREE'}")
    print("disagreements:", bad, f"| peer init {np.mean([r['init'] for r in N]):.3f} s, "
          f"tick {np.mean([r['tick'] for r in N]) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
