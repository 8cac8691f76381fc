#!/usr/bin/env python3
"""v5 trials: consumer need's bound, seats and priced plans (docs/model.md "v5").

    python3 bench/need_trial.py [--seeds 5] [--ticks 120] [--firms 1e5 --users 1e6] \
        [--sat inf,100,30,10 | --configs 'LABEL:key=value,key=value;LABEL:...'] \
        [--scenarios baseline,moratorium,buildout] [--set key=value ...] [--layers] [--keep DIR]

For each configuration (by default one per saturation level `need_sat`, inf being v4's
unbounded curve; `--configs` names any set of parameters instead) runs each scenario as
an ensemble on the same replicates (paired: member k of every run shares its draws) and
prints, at ticks 24, 59 and 119:
  capped        share of AI users compute-capped (baseline level, mean and 95% interval)
  capped_max    the baseline's largest capped share over all ticks (mean over replicates)
  us_price      US-homed labs' compute price over p_min (baseline level)
  <scenario>    the scenario's effect on capped and on us_price, scenario − baseline per
                replicate, mean and 95% interval (Student t over the pairs)
With --layers, also per tier 1 and 2 the firms with 1–9 and with 250+ employees on
each access layer (api, seats, none; baseline level and each scenario's effect), the
world's tokens per adopter (Mtok a month, weighted by adopters), the
US labs' plus plan price over its list price, and their plan layer's earnings per
H100e over their compute price (plan_value / compute_price).
"""
import argparse
import os
import shlex
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from calibration import ensemble  # noqa: E402
from compare import world_cc  # noqa: E402
from paired import fmt, level, parse_configs, us_plan, us_plan_value, us_price  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
from cutoff_analysis import access_layers  # noqa: E402

TICKS = (24, 59, 119)


def configs(a):
    """[(label, [key=value, ...])] from --configs, or one per --sat level."""
    if a.configs:
        return parse_configs(a.configs)
    return [(f"need_sat = {sat}", [] if sat == "inf" else [f"need_sat={sat}"]) for sat in a.sat.split(",")]


def world_tokens(ds, t):
    """Per replicate, the world's tokens per adopter in the market at tick t (Mtok a month;
    the countries' tokens_per_adopter weighted by their adopters, bench/compare.py)."""
    at = ds.sel(tick=t)
    return np.asarray(world_cc(at["tokens_per_adopter"].values, at["access_gap"].values,
                               at["adoption_share"].values, at["population"].values)["tokens_per_adopter"])


def layer_rows(runs, scenarios, t):
    base = runs[scenarios[0]]
    rows = []
    layers = {name: access_layers(ds, by="tier").sel(tick=t) for name, ds in runs.items()}
    for tier in (1, 2):
        for size in ("1-9", "250+"):
            sel = {"tier": tier, "size_class": size}
            row = [f"    tier {tier} {size:>4s}"]
            for layer in ("api", "seats", "none"):
                cell = f"{layer} {level(layers[scenarios[0]].sel(layer=layer, **sel).values)}"
                for name in scenarios[1:]:
                    cell += f" {name} {fmt((layers[name] - layers[scenarios[0]]).sel(layer=layer, **sel).values)}"
                row.append(cell)
            rows.append(" | ".join(row))
    tokens = {name: world_tokens(ds, t) for name, ds in runs.items()}
    row = [f"    tokens/adopter {level(tokens[scenarios[0]])}"]
    for name in scenarios[1:]:
        row.append(f"{name}: tokens/adopter {fmt(tokens[name] - tokens[scenarios[0]])}")
    rows.append(" | ".join(row))
    row = [f"    us plus/list {level(us_plan(base, 1).sel(tick=t).values)}",
           f"us plan_value/price {level(us_plan_value(base).sel(tick=t).values)}"]
    for name in scenarios[1:]:
        row.append(f"{name}: plus/list {fmt((us_plan(runs[name], 1) - us_plan(base, 1)).sel(tick=t).values)}")
    rows.append(" | ".join(row))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--firms", type=float, default=1e5)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sat", default="inf,100,30,10")
    ap.add_argument("--configs", default=None, help="'LABEL:key=value,...;LABEL:...' (replaces --sat)")
    ap.add_argument("--scenarios", default="baseline,moratorium,buildout")
    ap.add_argument("--layers", action="store_true", help="also access layers, plan prices and plan value")
    ap.add_argument("--cutoff", default=os.path.join(ROOT, "build", "cutoff"))
    ap.add_argument("--set", action="append", default=[], help="key=value for every run (e.g. seats=true)")
    ap.add_argument("--keep", default=None, help="directory for the ensembles (kept and resumed)")
    a = ap.parse_args()
    print("command: python3 bench/need_trial.py " + shlex.join(sys.argv[1:]))
    keep = a.keep or tempfile.mkdtemp(prefix="need-trial-")
    scenarios = a.scenarios.split(",")
    ticks = [t for t in TICKS if t < a.ticks]
    for label, config in configs(a):
        sets = list(a.set) + config
        runs = {}
        for name in scenarios:
            out = os.path.join(keep, name + "".join("-" + s.replace("=", "") for s in sets))
            ds, _ = ensemble(a.cutoff, os.path.join(ROOT, "data", "scenarios", name + ".toml"), out, a.seeds,
                             int(a.firms), int(a.users), a.ticks, a.jobs, sets)
            runs[name] = ds
        base = runs[scenarios[0]]
        capped = base["users_capped_share"]
        print(f"\n{label} ({' '.join(sets) or 'defaults'}): {a.seeds} replicates, {int(a.firms)} firms, "
              f"{int(a.users)} users, {a.ticks} ticks")
        print(f"  capped_max (baseline, over all ticks): {level(capped.max('tick').values)}")
        for t in ticks:
            row = [f"tick {t:3d}", f"capped {level(capped.sel(tick=t).values)}",
                   f"us_price {level(us_price(base).sel(tick=t).values)}"]
            for name in scenarios[1:]:
                d_cap = (runs[name]["users_capped_share"] - capped).sel(tick=t).values
                d_pr = (us_price(runs[name]) - us_price(base)).sel(tick=t).values
                row.append(f"{name}: capped {fmt(d_cap)} us_price {fmt(d_pr)}")
            print("  " + " | ".join(row))
            if a.layers:
                print("\n".join(layer_rows(runs, scenarios, t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
