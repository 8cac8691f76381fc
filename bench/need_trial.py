#!/usr/bin/env python3
"""v5 trial of consumer need's own, bounded growth (docs/model.md §2.5, "v5").

    python3 bench/need_trial.py [--seeds 5] [--ticks 120] [--firms 1e5 --users 1e6] \
        [--sat inf,100,30,10] [--scenarios baseline,moratorium,buildout] [--set key=value ...] [--keep DIR]

For each saturation level `need_sat` (inf: v4's unbounded curve) runs each scenario as
an ensemble on the same replicates (paired: member k of every run shares its draws) and
prints, at ticks 24, 59 and 119:
  capped        share of AI users compute-capped (baseline level, mean and 95% interval)
  capped_max    the baseline's largest capped share over all ticks (mean over replicates)
  us_price      US-homed labs' compute price over p_min (baseline level)
  <scenario>    the scenario's effect on capped and on us_price, scenario − baseline per
                replicate, mean and 95% interval (Student t over the pairs)
"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from calibration import ensemble, interval  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
from cutoff_analysis.calibration import p_min  # noqa: E402

TICKS = (24, 59, 119)


def us_price(ds):
    us = [p for p, h in zip(ds["provider"].values, ds["provider_home"].values) if h == "USA"]
    return ds["compute_price"].sel(provider=us).mean("provider") / p_min(ds)


def fmt(x):
    m, hw, _ = interval(np.asarray(x, dtype=float).ravel())
    return f"{m:+.3f} [{m - hw:+.3f}, {m + hw:+.3f}]" if not math.isnan(m) else "nan"


def level(x):
    m, hw, _ = interval(np.asarray(x, dtype=float).ravel())
    return f"{m:.3f} [{m - hw:.3f}, {m + hw:.3f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--firms", type=float, default=1e5)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sat", default="inf,100,30,10")
    ap.add_argument("--scenarios", default="baseline,moratorium,buildout")
    ap.add_argument("--cutoff", default=os.path.join(ROOT, "build", "cutoff"))
    ap.add_argument("--set", action="append", default=[], help="key=value for every run (e.g. seats=true)")
    ap.add_argument("--keep", default=None, help="directory for the ensembles (kept and resumed)")
    a = ap.parse_args()
    print("command: python3 bench/need_trial.py " + " ".join(sys.argv[1:]))
    keep = a.keep or tempfile.mkdtemp(prefix="need-trial-")
    scenarios = a.scenarios.split(",")
    ticks = [t for t in TICKS if t < a.ticks]
    for sat in a.sat.split(","):
        sets = list(a.set) + ([] if sat == "inf" else [f"need_sat={sat}"])
        runs = {}
        for name in scenarios:
            out = os.path.join(keep, f"{name}-sat{sat}" + "".join("-" + s.replace("=", "") for s in a.set))
            ds, _ = ensemble(a.cutoff, os.path.join(ROOT, "data", "scenarios", name + ".toml"), out, a.seeds,
                             int(a.firms), int(a.users), a.ticks, a.jobs, sets)
            runs[name] = ds
        base = runs[scenarios[0]]
        capped = base["users_capped_share"]
        print(f"\nneed_sat = {sat}: {a.seeds} replicates, {int(a.firms)} firms, {int(a.users)} users, {a.ticks} ticks")
        print(f"  capped_max (baseline, over all ticks): {level(capped.max('tick').values)}")
        for t in ticks:
            row = [f"tick {t:3d}", f"capped {level(capped.sel(tick=t).values)}",
                   f"us_price {level(us_price(base).sel(tick=t).values)}"]
            for name in scenarios[1:]:
                d_cap = (runs[name]["users_capped_share"] - capped).sel(tick=t).values
                d_pr = (us_price(runs[name]) - us_price(base)).sel(tick=t).values
                row.append(f"{name}: capped {fmt(d_cap)} us_price {fmt(d_pr)}")
            print("  " + " | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
