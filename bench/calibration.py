#!/usr/bin/env python3
"""Calibration and plausibility of the baseline (docs/model.md §8; docs/model.md "Calibration").

Runs the baseline as an ensemble (`cutoff ensemble`, --seeds replicates, 1e5 firms,
1e6 users, 120 ticks by default) and prints every §8 target at the calibration tick,
every band up to it and every v4 band over the horizon, beside the ensemble mean, its
95% interval over replicates (Student t) and a verdict: a target within 10%, a band
holding the ensemble mean. (v5) It also prints the Census BTOS reference beside the
model's US firms using AI (a comparison, never a miss), and whether anything saturates
(users capped below 0.9 at every tick; no size class with 95% of its firms in one
status after 2025, in the US and in tier 2). Exit status 1 on any miss.

With --sizes it runs the same ensemble at other agent counts and prints the
convergence table: every figure's mean at each size, the difference to the first
size and whether it lies within two combined standard errors (docs/model.md §8),
including (v5) who is cut off: each size class's share of firms in each status for
the US and tiers 2 and 3 at ticks 24, 59 and 119. About one figure in twenty falls
outside two standard errors by chance, so it also marks the differences that stand at
a 5% false discovery rate over the table (Welch t-tests, Benjamini-Hochberg), and with
--control-seed runs the first size again on other random numbers: the control column,
whose disagreements are chance alone.

    python3 bench/calibration.py [--seeds 5] [--firms N --users N] [--ticks 120] [--jobs 2]
        [--sizes 5e4/5e5,2e5/2e6 [--control-seed S]] [--set key=value]... [--keep DIR] [--json FILE]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

sys.path.insert(0, os.path.join(ROOT, "python", "src"))  # the cutoff_analysis package, installed or not
from cutoff_analysis.calibration import (BANDS, BTOS, BTOS_LABELS, BTOS_TICKS, HORIZON_BANDS,  # noqa: E402
                                         HORIZON_LABELS, LABELS, SATURATION_BANDS, SATURATION_LABELS, TARGETS,
                                         TOLERANCE, btos_measures, cut_off_measures, horizon_measures, measures,
                                         p_min, saturation_measures)
from cutoff_analysis.io import open_ensemble  # noqa: E402


def ensemble(binary, scenario, outdir, seeds, firms, users, ticks, jobs, sets, sweeps=(), seed=None):
    """Runs (or resumes) the ensemble into outdir (the scenario's seed, or ``seed``); returns
    its Dataset and wall seconds."""
    cmd = [binary, "ensemble", scenario, "-o", outdir, "--replicates", str(seeds), "--firms", str(firms),
           "--users", str(users), "--ticks", str(ticks), "--jobs", str(jobs), "-q"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    for s in sets:
        cmd += ["--set", s]
    for s in sweeps:
        cmd += ["--sweep", s]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    return open_ensemble(outdir), time.time() - t0


def values(ds, calib, growth_from, cut_off=False):
    """Every figure as one value per replicate (numpy arrays); with cut_off, also who is
    cut off (size class x status shares for the US and tiers 2 and 3)."""
    pm = p_min(ds)
    out = {k: np.asarray(v.values, dtype=float).ravel() for k, v in measures(ds, calib, pm, growth_from).items()}
    if ds.sizes["tick"] >= 24:
        out.update({k: np.asarray(v.values, dtype=float).ravel() for k, v in horizon_measures(ds, calib, pm).items()})
    if ds.sizes["tick"] > BTOS_TICKS[1]:
        out.update({k: np.asarray(v.values, dtype=float).ravel() for k, v in btos_measures(ds).items()})
    if ds.sizes["tick"] > 24:
        out.update({k: np.asarray(v.values, dtype=float).ravel() for k, v in saturation_measures(ds).items()})
    if cut_off:
        out.update({k: np.asarray(v.values, dtype=float).ravel() for k, v in cut_off_measures(ds).items()})
    return out


def interval(x):
    """Mean, 95% half-width (Student t over replicates) and standard error."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(np.mean(x))
    if x.size < 2:
        return m, math.nan, math.nan
    se = float(np.std(x, ddof=1) / math.sqrt(x.size))
    return m, float(stats.t.ppf(0.975, x.size - 1) * se), se


def compare(ref, other):
    """One figure at two sizes (replicate values): whether the difference of the means is
    within two combined standard errors, and the Welch t-test's p-value (two-sided; 0 or
    1 where both are constant over replicates, as they differ or not)."""
    m0, _, se0 = interval(ref)
    m1, _, se1 = interval(other)
    tol = 2 * math.sqrt((se0 if math.isfinite(se0) else 0) ** 2 + (se1 if math.isfinite(se1) else 0) ** 2)
    within = abs(m1 - m0) <= tol
    a, b = ref[np.isfinite(ref)], other[np.isfinite(other)]
    flat = 1e-12 * max(1.0, abs(m0), abs(m1))  # constant but for rounding (a share fixed by the data)
    if np.ptp(a) <= flat and np.ptp(b) <= flat:
        p = 1.0 if abs(m1 - m0) <= flat else 0.0
    else:
        with warnings.catch_warnings():  # one side constant (a share of 1 in every replicate) is fine for Welch
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return within, p


def convergence(columns, fdr=0.05):
    """The convergence table (docs/model.md §8): every figure's mean in each column (the
    first is the reference size), whether each other column agrees with it within two
    combined standard errors, and which differences stand at a false discovery rate of
    ``fdr`` over all the figures of a column (Benjamini-Hochberg on Welch t-tests). With
    M figures, about 5% of them fall outside two standard errors by chance alone: a
    control column (the reference size again on other random numbers) shows how many."""
    (ref_name, ref), others = columns[0], columns[1:]
    names = [n for n in ref if all(n in col for _, col in others)]  # (a share below 0.01 at one size is left out)
    lines = [f"\nconvergence against {ref_name} ('NO': |difference| > 2 combined SE; '*': it stands at a "
             f"{fdr:.0%} false discovery rate, Benjamini-Hochberg over the column's {len(names)} figures)",
             f"{'figure':30s} " + " ".join(f"{c:>12s}" for c, _ in columns) + "  agree"]
    verdicts = {}
    for col, vals in others:
        within, p = zip(*(compare(ref[n], vals[n]) for n in names))
        q = stats.false_discovery_control(np.asarray(p), method="bh")
        verdicts[col] = [("yes" if w else "NO") + ("*" if qi < fdr else "") for w, qi in zip(within, q)]
    for i, n in enumerate(names):
        cells = " ".join(f"{interval(col[n])[0]:12.4g}" for _, col in columns)
        lines.append(f"{n:30s} {cells}  " + " ".join(verdicts[c][i] for c, _ in others))
    lines.append("")
    for col, _ in others:
        outside = [n for n, v in zip(names, verdicts[col]) if v.startswith("NO")]
        stand = [n for n, v in zip(names, verdicts[col]) if v.endswith("*")]
        lines.append(f"{col}: {len(outside)} of {len(names)} figures outside 2 combined SE; "
                     f"{len(stand)} differ at the {fdr:.0%} false discovery rate"
                     + (": " + ", ".join(stand) if stand else ""))
    return "\n".join(lines)


def verdict(name, mean):
    if name in TARGETS:
        return "within 10%" if abs(mean - TARGETS[name]) <= TOLERANCE * TARGETS[name] else "MISS"
    if name in BTOS:  # a reference, not a target: never a miss
        lo, hi, _ = BTOS[name]
        if lo == hi:
            return f"reference: {mean / lo - 1:+.0%}"
        return "reference: inside" if lo <= mean <= hi else f"reference: {'below' if mean < lo else 'above'}"
    band = BANDS.get(name) or HORIZON_BANDS.get(name) or SATURATION_BANDS.get(name)
    if band is None:
        return ""
    lo, hi = band[0], band[1]
    return "inside" if lo - 1e-12 <= mean <= hi + 1e-12 else "OUTSIDE"


def wanted(name):
    if name in TARGETS:
        return f"{TARGETS[name]:.3f}"
    if name in BANDS:
        return BANDS[name][3]
    if name in HORIZON_BANDS:
        return HORIZON_BANDS[name][2]
    if name in SATURATION_BANDS:
        return SATURATION_BANDS[name][2]
    if name in BTOS:
        return "BTOS " + BTOS[name][2]
    return "(no band)"


def table(vals, title, calib, growth_from):
    lines = [title, f"{'figure':30s} {'target or band':>34s} {'mean':>10s} {'95% CI':>21s}  verdict"]
    ok = True
    for name, x in vals.items():
        m, hw, _ = interval(x)
        v = verdict(name, m)
        ok &= v not in ("MISS", "OUTSIDE")
        ci = f"[{m - hw:.4g}, {m + hw:.4g}]" if math.isfinite(hw) else ""
        band = wanted(name).format(growth_from=growth_from, calib=calib)
        lines.append(f"{name:30s} {band:>34s} {m:10.4g} {ci:>21s}  {v}")
    return "\n".join(lines), ok


def parse_size(text):
    f, u = text.split("/")
    return int(float(f)), int(float(u))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="replicates of the ensemble")
    ap.add_argument("--firms", type=float, default=1e5)
    ap.add_argument("--users", type=float, default=1e6)
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sizes", default="", help="other agent counts for the convergence table, e.g. 5e4/5e5,2e5/2e6")
    ap.add_argument("--control-seed", type=int,
                    help="with --sizes, also run the first size with this seed: the convergence table's control")
    ap.add_argument("--cutoff", default=os.path.join(ROOT, "build", "cutoff"))
    ap.add_argument("--scenario", default=os.path.join(ROOT, "data", "scenarios", "baseline.toml"))
    ap.add_argument("--calib-tick", type=int, default=14)
    ap.add_argument("--growth-from", type=int, default=8,
                    help="tick from which the growth in percentage points is measured (H2 2025 -> Q1 2026)")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--keep", help="directory for the ensembles (kept, and resumed when run again)")
    ap.add_argument("--json", help="write every figure's replicate values here")
    args = ap.parse_args()
    sizes = [(int(args.firms), int(args.users))] + [parse_size(s) for s in args.sizes.split(",") if s]
    base = args.keep or tempfile.mkdtemp(prefix="calibration-")
    results, ok = {}, True
    for firms, users in sizes:
        out = os.path.join(base, f"baseline-{firms:.0e}-{users:.0e}".replace("+", ""))
        ds, secs = ensemble(args.cutoff, args.scenario, out, args.seeds, firms, users, args.ticks, args.jobs, args.set)
        vals = values(ds, args.calib_tick, args.growth_from, cut_off=len(sizes) > 1)
        results[(firms, users)] = vals
        text, hit = table(vals, f"\nbaseline, {args.seeds} replicates, {firms:.0e} firms, {users:.0e} users, "
                                f"{args.ticks} ticks ({secs:.0f} s); sets: {args.set or 'none'}",
                          args.calib_tick, args.growth_from)
        print(text, flush=True)
        ok &= hit if (firms, users) == sizes[0] else True
    if len(sizes) > 1:
        columns = [(f"{f:.0e}/{u:.0e}", results[(f, u)]) for f, u in sizes]
        if args.control_seed is not None:
            firms, users = sizes[0]
            out = os.path.join(base, f"baseline-{firms:.0e}-{users:.0e}-seed{args.control_seed}".replace("+", ""))
            ds, _ = ensemble(args.cutoff, args.scenario, out, args.seeds, firms, users, args.ticks, args.jobs,
                             args.set, seed=args.control_seed)
            results[(firms, users, args.control_seed)] = values(ds, args.calib_tick, args.growth_from, cut_off=True)
            columns.append((f"seed {args.control_seed}", results[(firms, users, args.control_seed)]))
        print(convergence(columns))
    if args.json:  # keys "firms/users", and "firms/users seed S" for the control
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}/{k[1]}" + (f" seed {k[2]}" if len(k) > 2 else ""): {n: list(map(float, v))
                                                                                   for n, v in vals.items()}
                       for k, vals in results.items()}, f, indent=1)
    labels = {**LABELS, **HORIZON_LABELS, **BTOS_LABELS, **SATURATION_LABELS}
    print("\nfigures: " + "; ".join(f"{k}: {v}" for k, v in labels.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
