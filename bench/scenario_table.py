#!/usr/bin/env python3
"""The scenario table (issue 35, item 5): every scenario against the baseline, paired, side
by side for several configurations of the model (v4 and v5).

    python3 bench/scenario_table.py [--configs 'v4:seats=false,...;v5:'] \
        [--scenarios buildout,moratorium,...] [--seeds 5] [--firms 1e5 --users 1e6] [--ticks 120] \
        [--subset LABEL=a,b]... [--jobs 2] [--cutoff PATH] [--set key=value]... [--keep DIR] [--csv FILE]

For each configuration (`--configs 'LABEL:key=value,...;LABEL:...'`, an empty list being
the scenario files' own values; default DEFAULT_CONFIGS: v4, versions.V4_SETS, beside
v5, the files' own; `--set` adds keys to every configuration) it runs the
baseline and the scenarios (default: every other scenario in data/scenarios) as one
`cutoff ensemble --scenarios` (member R of every scenario shares seed and replicate R:
common random numbers, docs/ensembles.md), and prints at ticks 24, 59 and 119 the
baseline's level (mean [95% interval] over the replicates) and each scenario's effect,
scenario − baseline per replicate, mean [95% interval] (Student t over the pairs,
`cutoff_analysis.compare`), configurations side by side. `--subset LABEL=a,b` runs only
some of the scenarios for one configuration (its other cells read "not run"). The figures:

  tierT SIZE LAYER   share of the real firms of size class SIZE (employees 1-9, 10-49,
                     50-249, 250+) in tier T's countries on access layer LAYER: api
                     (rationed, budget-bound, served), seats (seats, seats capped) or none
                     (no access, no value, no budget, priced out, not adopted);
                     `cutoff_analysis.access_layers`, docs/model.md §7
  users_capped       share of AI users (people) compute-capped (§7)
  us_plus/list       the US labs' plus plan price over its list price, mean over the labs
  us_pro/list        the same for the pro plan (§2.9: list × (π_p(t−1)/p_min)^plan_pass)
  us_price/p_min     the US labs' compute price over p_min, mean over the labs
  tier3_gap          tier 3's access gap: best released K less the K its AI users access,
                     population-weighted over its countries (§6, §7; `access_gap`)
  tier3_K_gap_firms  tier 3's firms alone: best released K less their K accessed,
                     employment-weighted (`K_gap`, §7)
  follower_lag       the followers' lag, mean over the 12 ticks to the tick (§7)
  hosts_K            K accessed by the firms of the countries that hold a
                     compute-for-access deal at the tick in that replicate's
                     compute-for-access member (the same countries in every scenario),
                     employment-weighted, 0 for firms that bought nothing (§6, §7); only
                     when compute-for-access is among the scenarios

An effect whose interval excludes 0 is marked `*`, or `!` where it is opposite to the
direction docs/model.md states for that scenario (EXPECTED below); the directions are
then listed, each with whether it comes out per configuration and tick. `--csv FILE`
writes every cell (config, tick, figure, scenario, kind, mean, lo, hi, n, expected,
verdict). Exit 2 with one line naming the flag and the value on a bad --configs,
--scenarios or --set.
"""
import argparse
import csv
import hashlib
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import xarray as xr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from calibration import interval  # noqa: E402
from paired import (UsageError, deal_hosts, hosts_K, parse_configs, scenario_path, shipped_scenarios,  # noqa: E402
                    us_plan, us_price)
from versions import V4_SETS  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
from cutoff_analysis import access_gap_by_tier, access_layers  # noqa: E402
from cutoff_analysis.compare import compare  # noqa: E402
from cutoff_analysis.explore import CutoffError, run_scenarios  # noqa: E402
from cutoff_analysis.schema import default_cutoff  # noqa: E402

TICKS = (24, 59, 119)
#: v4 (versions.V4_SETS) beside v5 (the scenario files' own values; docs/model.md "v5").
DEFAULT_CONFIGS = "v4:" + ",".join(V4_SETS) + ";v5:"
TIERS = (1, 2, 3)
SIZES = ("1-9", "10-49", "50-249", "250+")
LAYERS = ("api", "seats", "none")
SMALL = ("1-9", "10-49")

#: The directions docs/model.md states for the scenarios: (scenario, figures, sign, where).
#: §0 lists what the background texts say each lever does; the v5 section "Plans priced by
#: scarcity" adds the seeds' "hit twice" (tighter caps and dearer plans). No direction is
#: stated for open-weights or diffusion-rule.
EXPECTED = [
    ("moratorium", ["us_price/p_min", "us_plus/list", "us_pro/list"], +1,
     "§0: raises prices; v5 'Plans priced by scarcity': dearer plans"),
    ("moratorium", ["users_capped"], +1, "§0: raises caps"),
    ("moratorium", [f"tier{t} {s} none" for t in TIERS for s in SMALL], +1,
     "§0: pushes small firms and poor countries out"),
    ("buildout", ["us_price/p_min", "us_plus/list", "us_pro/list"], -1, "§0: lowers prices"),
    ("buildout", ["users_capped"], -1, "§0: lowers caps"),
    ("first-resort", [f"tier{t} {s} api" for t in (2, 3) for s in SIZES], -1,
     "§0: serves the home country's firms first and prices the rest out"),
    ("compute-for-access", ["hosts_K"], +1, "§0, §6: raises the hosts' access"),
    ("crackdown", ["follower_lag"], +1, "§0: lengthens the follower lag"),
    ("crackdown", ["tier3_gap", "tier3_K_gap_firms"], +1, "§0: widens tier 3's gap"),
]


def expected(scenario, figure):
    """(sign, where) of the direction docs/model.md states, or (0, '')."""
    for s, figures, sign, where in EXPECTED:
        if s == scenario and figure in figures:
            return sign, where
    return 0, ""


def verdict(sign, mean, lo, hi):
    """Whether a stated direction comes out: 'holds' (the interval excludes 0 on its side),
    'opposite' (it excludes 0 on the other side), 'n.s.' (it includes 0), 'n/a' (no interval)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    if lo > 0 or hi < 0:
        return "holds" if (mean > 0) == (sign > 0) else "opposite"
    return "n.s."


# ---------------------------------------------------------------------------------------
# The figures


def tier3_K_gap_firms(ds):
    """Tier 3's best released K less its firms' K accessed, employment-weighted over its
    countries and size classes (`K_gap`, §7)."""
    emp = ds["employment_by_status"].sum("status").where(ds["tier"] == 3, 0.0)
    gap = ds["K_gap"].where(emp > 0, 0.0).fillna(0.0)
    return (gap * emp).sum(("country", "size_class")) / emp.sum(("country", "size_class")).where(lambda w: w > 0)


def follower_lag(ds, ticks):
    """The followers' lag, mean over the 12 ticks to each tick and over the followers (as
    `cutoff_analysis.explore.output_arrays`)."""
    lag = ds["follower_lag"]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for t in ticks:
            out.append(lag.sel(tick=slice(t - 11, t)).mean(("tick", "provider")))
    return xr.concat(out, dim=xr.DataArray(list(ticks), dims="tick", name="tick"), coords="minimal", compat="override")


def figures(ds, ticks, hosts=None):
    """Every figure per replicate at the ticks: a DataArray over (replicate, tick, figure).
    hosts: {tick: the deal hosts per replicate and country}, or None (no hosts_K)."""
    at = ds.sel(tick=list(ticks))
    cols = []
    layers = access_layers(at, by="tier")
    for t in TIERS:
        for s in SIZES:
            for la in LAYERS:
                if t in layers["tier"].values:
                    cols.append((f"tier{t} {s} {la}", layers.sel(tier=t, size_class=s, layer=la, drop=True)))
                else:  # a tier without countries in this table
                    cols.append((f"tier{t} {s} {la}", xr.full_like(at["users_capped_share"], np.nan)))
    cols.append(("users_capped", at["users_capped_share"]))
    cols.append(("us_plus/list", us_plan(at, 1)))
    cols.append(("us_pro/list", us_plan(at, 2)))
    cols.append(("us_price/p_min", us_price(at)))
    cols.append(("tier3_gap", access_gap_by_tier(at).sel(tier=3, drop=True)))
    cols.append(("tier3_K_gap_firms", tier3_K_gap_firms(at)))
    cols.append(("follower_lag", follower_lag(ds, ticks)))
    if hosts is not None:
        k = [hosts_K(ds, hosts[t], int(np.flatnonzero(ds["tick"].values == t)[0])) for t in ticks]
        cols.append(("hosts_K", xr.concat(k, dim=xr.DataArray(list(ticks), dims="tick", name="tick"),
                                          coords="minimal", compat="override")))
    arrays = []
    for name, da in cols:
        da = da.drop_vars([c for c in da.coords if c not in da.dims and c not in ("tick", "replicate")])
        arrays.append(da.transpose("replicate", "tick").astype(float).expand_dims(figure=[name]))
    return xr.concat(arrays, dim="figure", coords="minimal", compat="override")


def deal_hosts_by_tick(runs, ticks):
    """{tick: deal hosts per replicate and country} from the compute-for-access member, or None."""
    cfa = runs.get("compute-for-access")
    if cfa is None:
        return None
    return {t: deal_hosts(cfa, int(np.flatnonzero(cfa["tick"].values == t)[0])) for t in ticks}


def effects(runs, ticks):
    """The table of one configuration: ``runs`` maps scenario names to ensembles (the
    baseline first, the same replicates in each). Returns (levels, res, hosts): levels over
    (stat: mean, lo, hi, n; tick, figure) for the baseline, res the paired comparison of
    every other scenario (`cutoff_analysis.compare`: effect, lo, hi, n over scenario,
    tick, figure) and the deal hosts (or None)."""
    hosts = deal_hosts_by_tick(runs, ticks)
    names = list(runs)
    fig = {n: figures(runs[n], ticks, hosts) for n in names}
    base = fig[names[0]]
    stats = []
    for t in ticks:
        for f in base["figure"].values:
            m, hw, _ = interval(np.asarray(base.sel(tick=t, figure=f).values, dtype=float))
            n = int(np.isfinite(base.sel(tick=t, figure=f).values).sum())
            stats.append((t, f, m, m - hw, m + hw, n))
    levels = {(t, f): (m, lo, hi, n) for t, f, m, lo, hi, n in stats}
    res = compare(fig, lambda da: da) if len(names) > 1 else None
    return levels, res, hosts


# ---------------------------------------------------------------------------------------
# Printing


def cell_level(v):
    m, lo, hi, _ = v
    if not math.isfinite(m):
        return "nan"
    if not math.isfinite(lo):
        return f"{m:.3f}"
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def cell_effect(m, lo, hi, sign):
    if not math.isfinite(m):
        return "nan"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{m:+.3f}"
    mark = " "
    if lo > 0 or hi < 0:
        mark = "!" if sign and (m > 0) != (sign > 0) else "*"
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"


NOT_RUN = (math.nan, math.nan, math.nan, 0)


def effect_at(res, scenario, t, f):
    """(mean, lo, hi, n) of a scenario's effect, or None where the configuration did not run it
    (--subset) or has no such figure."""
    if res is None or scenario not in res["scenario"].values or f not in res["figure"].values:
        return None
    r = res.sel(scenario=scenario, tick=t, figure=f)
    return float(r["effect"]), float(r["lo"]), float(r["hi"]), int(r["n"])


def print_table(tables, scenarios, ticks, out=sys.stdout):
    """tables: [(label, levels, res, hosts)] per configuration. Returns the CSV rows and the
    directions' verdicts."""
    labels = [t[0] for t in tables]
    figs = []  # every configuration's figures, in order (hosts_K only where compute-for-access ran)
    for _, levels, _, _ in tables:
        for _, f in levels:
            if f not in figs:
                figs.append(f)
    width = 25
    head = f"{'figure':20s} {'exp':>3s} " + " ".join(f"{f'{la} t{t}':>{width}s}" for t in ticks for la in labels)
    rows = []
    print("\nbaseline: level, mean [95% interval] over the replicates", file=out)
    print(head, file=out)
    for f in figs:
        cells = []
        for t in ticks:
            for label, levels, _, _ in tables:
                v = levels.get((t, f))
                cells.append(cell_level(v) if v else "-")
                if v:
                    rows.append([label, t, f, "baseline", "level", *v, "", ""])
        print(f"{f:20s} {'':>3s} " + " ".join(f"{c:>{width}s}" for c in cells), file=out)
    found = []
    for s in scenarios:
        print(f"\n{s} − baseline: paired effect, mean [95% interval] over the replicate pairs "
              "(* excludes 0; ! excludes 0 against the stated direction)", file=out)
        print(head, file=out)
        for f in figs:
            sign, where = expected(s, f)
            cells = []
            for t in ticks:
                for label, _, res, _ in tables:
                    e = effect_at(res, s, t, f)
                    if e is None:
                        cells.append("not run" if res is None or s not in res["scenario"].values else "-")
                        continue
                    m, lo, hi, n = e
                    cells.append(cell_effect(m, lo, hi, sign))
                    v = verdict(sign, m, lo, hi) if sign else ""
                    rows.append([label, t, f, s, "effect", m, lo, hi, n, "+" if sign > 0 else "-" if sign else "", v])
                    if sign:
                        found.append((s, f, sign, where, label, t, v, m, lo, hi))
            exp = "+" if sign > 0 else "-" if sign < 0 else ""
            print(f"{f:20s} {exp:>3s} " + " ".join(f"{c:>{width}s}" for c in cells), file=out)
    return rows, found


def print_directions(found, labels, ticks, out=sys.stdout):
    """Each stated direction: per configuration and tick, whether it comes out."""
    print("\nthe directions docs/model.md states, and whether they come out (holds: the 95% interval "
          "excludes 0 on the stated side; opposite: on the other side; n.s.: it includes 0)", file=out)
    keys = []
    for s, f, *_ in found:
        if (s, f) not in keys:
            keys.append((s, f))
    by = {(s, f, la, t): (v, m) for s, f, _, _, la, t, v, m, _, _ in found}
    for s, f in keys:
        sign, where = expected(s, f)
        cells = []
        for la in labels:
            got = [f"t{t} {by[(s, f, la, t)][0]}" for t in ticks if (s, f, la, t) in by]
            cells.append(f"{la}: " + (", ".join(got) if got else "not run"))
        print(f"  {s:18s} {f:20s} {'+' if sign > 0 else '-'}  " + " | ".join(cells) + f"   ({where})", file=out)
    total = {la: sum(1 for x in found if x[4] == la) for la in labels}
    for la in labels:
        counts = {v: sum(1 for x in found if x[4] == la and x[6] == v) for v in ("holds", "opposite", "n.s.", "n/a")}
        print(f"  {la}: of {total[la]} (direction, tick) cells, " +
              ", ".join(f"{k} {c}" for k, c in counts.items() if c or k != "n/a"), file=out)


# ---------------------------------------------------------------------------------------
# Running


def config_dir(label, sets, names, a):
    """The ensemble directory of one configuration under --keep: its label, sizes and a digest
    of its sets and scenarios (cutoff refuses another command in an ensemble's directory)."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
    digest = hashlib.sha1(("\n".join(sets) + "\n|" + ",".join(names)).encode()).hexdigest()[:8]
    return f"{safe}-{int(a.firms):.0e}-{int(a.users):.0e}-{a.ticks}t-{a.seeds}r-{digest}".replace("+", "")


def run_config(label, sets, names, a, keep):
    """Runs (or resumes) the baseline and the scenarios of one configuration as one
    `cutoff ensemble --scenarios`; returns {scenario: Dataset}, the baseline first."""
    out = os.path.join(keep, config_dir(label, sets, names, a))
    return run_scenarios([scenario_path(n) for n in ["baseline"] + names], out, replicates=a.seeds,
                         firms=int(a.firms), users=int(a.users), ticks=a.ticks, jobs=a.jobs, cutoff=a.cutoff,
                         sets=sets)


def check_args(a):
    """[(label, sets)] and the scenarios, or UsageError naming the flag and the value."""
    configs = parse_configs(a.configs)
    names = [s.strip() for s in a.scenarios.split(",") if s.strip()] if a.scenarios else shipped_scenarios()
    if not names:
        raise UsageError(f"--scenarios: '{a.scenarios}' names no scenario")
    for s in names:
        if s == "baseline":
            raise UsageError(f"--scenarios: '{s}': the baseline is always run; name the others")
        if not os.path.isfile(scenario_path(s)):
            known = ",".join(shipped_scenarios())
            raise UsageError(f"--scenarios: unknown scenario '{s}' (no data/scenarios/{s}.toml; known: {known})")
    if len(set(names)) != len(names):
        raise UsageError(f"--scenarios: '{a.scenarios}' names a scenario twice")
    subset = {}
    for item in a.subset:
        label, eq, which = item.partition("=")
        chosen = [w.strip() for w in which.split(",") if w.strip()]
        if not eq or not chosen or label.strip() not in [c[0] for c in configs] or label.strip() in subset:
            raise UsageError(f"--subset: '{item}': expected LABEL=a,b with LABEL one of --configs' labels, once")
        for w in chosen:
            if w not in names:
                raise UsageError(f"--subset: '{item}': '{w}' is not among --scenarios ({','.join(names)})")
        subset[label.strip()] = [n for n in names if n in chosen]
    for s in a.set:
        key, eq, value = s.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise UsageError(f"--set: '{s}': expected key=value")
    if a.seeds < 2:
        raise UsageError(f"--seeds: {a.seeds}: a paired interval needs at least 2 replicates")
    if a.cutoff is None or not os.path.isfile(a.cutoff):
        raise UsageError(f"--cutoff: '{a.cutoff}': no cutoff binary there (build it, or set CUTOFF_BIN)")
    # The keys and values, checked by cutoff itself before anything runs: --set's alone, then each configuration's.
    sizes = [f"n_firms={int(a.firms)}", f"n_users={int(a.users)}", f"horizon={a.ticks}"]
    checks = [("--firms/--users/--ticks", None, sizes), ("--set", None, list(a.set))]
    checks += [("--configs", label, list(a.set) + c) for label, c in configs]
    for flag, label, sets in checks:
        cmd = [a.cutoff, "validate", scenario_path("baseline")]
        for s in sets:
            cmd += ["--set", s]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()
            what = f"'{','.join(sets)}'" if label is None else f"'{a.configs}': configuration '{label}'"
            raise UsageError(f"{flag}: {what}: " + (why[-1] if why else f"cutoff validate exited {done.returncode}"))
    return configs, names, subset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="'LABEL:key=value,...;LABEL:...' (LABEL: alone: the scenario files' values)")
    ap.add_argument("--scenarios", default=None, help="comma-separated (default: every one in data/scenarios)")
    ap.add_argument("--subset", action="append", default=[],
                    help="LABEL=a,b: configuration LABEL runs only these of --scenarios (repeatable)")
    ap.add_argument("--seeds", type=int, default=5, help="replicates of each scenario (paired)")
    ap.add_argument("--firms", type=float, default=1e5)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cutoff", default=default_cutoff(), help="the binary ($CUTOFF_BIN, build/cutoff or PATH)")
    ap.add_argument("--set", action="append", default=[], help="key=value for every configuration, repeatable")
    ap.add_argument("--keep", default=None, help="directory for the ensembles (kept, and resumed when run again)")
    ap.add_argument("--csv", default=None, help="also write every cell here")
    a = ap.parse_args(argv)
    try:
        configs, names, subset = check_args(a)
    except UsageError as e:
        print(f"scenario_table: {e}", file=sys.stderr)
        return 2
    ticks = [t for t in TICKS if t < a.ticks]
    if not ticks:
        print(f"scenario_table: --ticks: {a.ticks}: the table's ticks are {TICKS}; run at least 25", file=sys.stderr)
        return 2
    print("command: python3 bench/scenario_table.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    keep = a.keep or tempfile.mkdtemp(prefix="scenario-table-")
    tables = []
    for label, config in configs:
        sets = list(a.set) + config
        t0 = time.time()
        try:
            runs = run_config(label, sets, subset.get(label, names), a, keep)
        except CutoffError as e:
            print(f"scenario_table: configuration '{label}': {e}", file=sys.stderr)
            return 1
        secs = time.time() - t0
        levels, res, hosts = effects(runs, ticks)
        tables.append((label, levels, res, hosts))
        reps = runs["baseline"].sizes["replicate"]
        line = (f"{label}: {' '.join(sets) or 'defaults'}; {reps} replicates of {len(runs)} scenarios, "
                f"{int(a.firms)} firms, {int(a.users)} users, {a.ticks} ticks; one cutoff ensemble --scenarios "
                f"({secs:.0f} s)")
        if hosts is not None:
            n = {t: hosts[t].sum("country").values for t in ticks}
            line += "; deal hosts per replicate " + ", ".join(
                f"t{t} {int(np.min(v))}-{int(np.max(v))}" for t, v in n.items())
        print(line, flush=True)
    rows, found = print_table(tables, names, ticks)
    print_directions(found, [t[0] for t in tables], ticks)
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["config", "tick", "figure", "scenario", "kind", "mean", "lo", "hi", "n", "expected", "verdict"])
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
