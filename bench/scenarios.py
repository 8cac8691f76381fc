#!/usr/bin/env python3
"""The scenarios' effects against the baseline (docs/model.md §4), and the κ sweep of §9.

    python3 bench/scenarios.py table [--seeds 5] [--ticks 120] [--firms 1e5 --users 1e6] [--scenarios a,b] [--set k=v]... [--keep DIR]
    python3 bench/scenarios.py kappa [--seeds 3] [--points 5] [--scenarios baseline,buildout] [--keep DIR]

`table` runs the baseline and the shipped scenarios (all seven, or those of
`--scenarios`) as one `cutoff ensemble --scenarios` (member R of every scenario shares seed
and replicate R: common random numbers, so the same random numbers wherever a scenario
does not change them, and the same τ0 and need0), and prints, at ticks 59 and the last,
each measure's mean effect (scenario − baseline, per replicate) with its 95% interval
(Student t over the pairs; `cutoff_analysis.compare`), beside the baseline's level, and
how much wider unpaired intervals would be. The measures are the package's standard
outputs (`cutoff_analysis.explore.OUTPUT_DOC`) and one of this script's:

  us_price        US-homed labs' compute price, mean over the labs [× p_min]
  users_capped    share of AI users compute-capped
  tier3_gap       access gap of tier-3 countries, population-weighted [K]
  follower_lag    the followers' lag, mean over the 12 ticks to the tick [ticks]
  small_cut_off   share of real firms with 1–49 employees cut off (no value, no budget, priced out, rationed)
  large_cut_off   the same for firms with 250 or more employees
  hosts_K         K accessed, employment-weighted, in the countries that host a deal under
                  compute-for-access at that tick (the same countries in every scenario) [K];
                  only when compute-for-access is among the scenarios

`kappa` sweeps κ (serving cost per unit of capability) from ln 1.5 to ln 2.5 on each
scenario and prints the users capped and the US labs' price (means over the last 12
ticks) with their 95% intervals.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import xarray as xr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from calibration import ensemble, interval  # noqa: E402
from paired import SCENARIOS, deal_hosts, hosts_K, scenario_path  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
import cutoff_analysis as ca  # noqa: E402
from cutoff_analysis.calibration import p_min  # noqa: E402
from cutoff_analysis.compare import interval_gain as compare_gain  # noqa: E402
from cutoff_analysis.explore import output_arrays, run_scenarios  # noqa: E402

MEASURES = ["us_price", "users_capped", "tier3_gap", "follower_lag", "small_cut_off", "large_cut_off", "hosts_K"]


#: This script's names for the package's standard outputs (cutoff_analysis.explore.OUTPUTS).
STANDARD = {"us_price": "us_price", "users_capped": "users_capped", "tier3_gap": "tier3_gap",
            "follower_lag": "follower_lag", "small_cut_off": "cut_off_small_world",
            "large_cut_off": "cut_off_large_world"}


def measures(ds, t, hosts):
    """Every measure at tick index t, per replicate, as one DataArray over (replicate, measure)."""
    out = output_arrays(ds, int(ds["tick"].values[t]))
    cols = [out[v].rename(k) for k, v in STANDARD.items()]
    if hosts is not None:
        cols.append(hosts_K(ds, hosts, t).rename("hosts_K"))
    return xr.concat([c.drop_vars([v for v in c.coords if v not in c.dims]) for c in cols],
                     dim=xr.DataArray([c.name for c in cols], dims="measure", name="measure"))


def run_table(args):
    names = ["baseline"] + [s for s in (args.scenarios.split(",") if args.scenarios else SCENARIOS) if s != "baseline"]
    ticks = [t for t in (59, args.ticks - 1) if t < args.ticks]
    out = os.path.join(args.keep, f"scenarios-{args.firms:.0e}-{args.users:.0e}".replace("+", ""))
    t0 = time.time()
    runs = run_scenarios([scenario_path(n) for n in names], out, replicates=args.seeds, firms=int(args.firms),
                         users=int(args.users), ticks=args.ticks, jobs=args.jobs, cutoff=args.cutoff, sets=args.set)
    print(f"{len(names)} scenarios x {args.seeds} replicates, one cutoff ensemble --scenarios (common random "
          f"numbers): {time.time() - t0:.0f} s", flush=True)
    others = names[1:]
    for t in ticks:
        hosts = None
        if "compute-for-access" in runs:
            hosts = deal_hosts(runs["compute-for-access"], t)
            n_hosts = hosts.sum("country").values
        res = ca.compare(runs, lambda ds: measures(ds, t, hosts))
        print(f"\ntick {t}: effect = scenario - baseline, mean [95% CI] over {args.seeds} paired replicates"
              + (f" ({int(np.min(n_hosts))}-{int(np.max(n_hosts))} deal hosts)" if hosts is not None else ""))
        print(f"{'measure':14s} {'baseline':>10s} " + " ".join(f"{s:>24s}" for s in others))
        for m in res["measure"].values:
            cells = []
            for s in others:
                r = res.sel(scenario=s, measure=m)
                mean, lo, hi = float(r["effect"]), float(r["lo"]), float(r["hi"])
                cells.append(f"{mean:+.3g} [{lo:+.2g},{hi:+.2g}]" if math.isfinite(hi) else f"{mean:+.3g}")
            base = float(res["baseline"].sel(measure=m).isel(scenario=0))
            print(f"{str(m):14s} {base:10.4g} " + " ".join(f"{c:>24s}" for c in cells))
        print(f"(pairing: the unpaired intervals would be {compare_gain(res):.1f}x as wide, median over cells)")


def run_kappa(args):
    lo, hi = math.log(1.5), math.log(2.5)
    for name in (args.scenarios or "baseline,buildout").split(","):
        out = os.path.join(args.keep, f"kappa-{name}-{args.firms:.0e}-{args.users:.0e}".replace("+", ""))
        ds, secs = ensemble(args.cutoff, scenario_path(name), out, args.seeds, int(args.firms), int(args.users),
                            args.ticks, args.jobs, [], [f"kappa={lo}:{hi}:{args.points}"])
        us = ds["provider_home"] == "USA"
        last = slice(args.ticks - 12, args.ticks)
        capped = ds["users_capped_share"].isel(tick=last).mean("tick")
        price = (ds["compute_price"].isel(tick=last).where(us).mean(("tick", "provider"))) / p_min(ds)
        mid = ds["users_capped_share"].isel(tick=59)
        print(f"\n{name}: kappa sweep, {args.seeds} replicates per point ({secs:.0f} s); means over ticks "
              f"{args.ticks - 12}-{args.ticks - 1} [95% CI]")
        print(f"{'kappa':>8s} {'ln of':>6s} {'users capped':>24s} {'capped at tick 59':>24s} {'US price x p_min':>24s}")
        for k in ds["kappa"].values:
            row = []
            for da in (capped, mid, price):
                m, hw, _ = interval(np.asarray(da.sel(kappa=k).values, float))
                row.append(f"{m:.4g} [{m - hw:.4g}, {m + hw:.4g}]")
            print(f"{k:8.4f} {math.exp(k):6.3f} " + " ".join(f"{c:>24s}" for c in row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["table", "kappa"])
    ap.add_argument("--seeds", type=int, default=None, help="replicates (default 5 for table, 3 for kappa)")
    ap.add_argument("--firms", type=float, default=1e5)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--points", type=int, default=5)
    ap.add_argument("--scenarios", default=None,
                    help="comma-separated scenario names (table: default all; kappa: default baseline,buildout)")
    ap.add_argument("--cutoff", default=os.path.join(ROOT, "build", "cutoff"))
    ap.add_argument("--set", action="append", default=[], help="key=value override of every member (table), repeatable")
    ap.add_argument("--keep", default=None, help="directory for the ensembles (kept and resumed)")
    args = ap.parse_args()
    args.seeds = args.seeds or (5 if args.what == "table" else 3)
    if args.keep is None:
        import tempfile
        args.keep = tempfile.mkdtemp(prefix="scenarios-")
    os.makedirs(args.keep, exist_ok=True)
    (run_table if args.what == "table" else run_kappa)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
