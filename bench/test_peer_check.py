#!/usr/bin/env python3
"""The peer check can fail: run by ctest (Peers.CheckCatchesAChangedParameter, v4,
Peers.V5CheckCatchesAChangedParameter, v5 without compute caps, and
Peers.V5CCCheckCatchesAChangedParameter, v5 as the baseline has it).

The NumPy peer and cutoff run the baseline (1e4 firms, 1e5 users, 24 ticks, ten
seeds: with five, v4's adapting budgets left access_cost=250 at z 3.86, not caught);
the check of bench/compare.py must pass for the peer as it is and fail when one
parameter of the peer alone is changed. `--part v4` runs the baseline as v4
(compare.V4_SETS: every v5 switch off, v4's budgets) on bench/compare.py's METRICS,
changing access_cost; `--part v5` runs it with v5's switches but compute caps
(compare.V5_SETS: seats, need_sat, plan_pass, plan_split, firm_bass, size_strata) on
compare.V5_METRICS (also revenue, plan prices and earnings, and each size class's share
of firms in each status), changing a v5 parameter (firm_adopt0); `--part v5cc` runs the
baseline as it is (v5, compute caps on: compare.CC_SETS is empty) on compare.CC_METRICS
(also tokens per adopter and the access gap), changing p_repick; `--part both` runs v4
and v5 (v5cc has its own ctest entry). Seeds are fixed, so the verdict is the same on
every run. Exit 0 when both hold, 1 otherwise, 77 (skip) when the Python modules are
missing or (v5cc) the cutoff has no compute_caps.
"""
import argparse
import os
import subprocess
import sys
import time

try:
    import numpy  # noqa: F401
    import xarray  # noqa: F401
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402


def check(binary, scenario, seeds, sets, change, metrics, label):
    """The peer as it is must agree with cutoff, and the peer with `change` must not."""
    firms, users, ticks = 10_000, 100_000, 24
    checked = [12, ticks - 1]
    start = time.perf_counter()
    _, cut = compare.first_runs(lambda s: compare.cutoff_metrics(binary, scenario, firms, users, ticks, s, sets),
                                seeds)
    _, same = compare.first_runs(
        lambda s: compare.peer_metrics("numpy", scenario, firms, users, ticks, s, binary, sets), seeds)
    _, changed = compare.first_runs(
        lambda s: compare.peer_metrics("numpy", scenario, firms, users, ticks, s, binary, tuple(sets) + (change,)),
        seeds)
    same = [r["metrics"] for r in same]
    changed = [r["metrics"] for r in changed]
    rows_same = compare.agreement(cut, same, checked, metrics=metrics)
    rows_changed = compare.agreement(cut, changed, checked, metrics=metrics)
    on = f" with --set {' '.join(sets)}" if sets else ""
    print(f"== {label}: cutoff and the NumPy peer{on}, {seeds} seeds, {firms} firms, {users} users, {ticks} ticks")
    print("NumPy peer as it is:\n" + compare.format_rows(rows_same))
    print(f"\nNumPy peer with --set {change}:\n" + compare.format_rows(rows_changed))
    ok_same = all(r["ok"] for r in rows_same)
    caught = not all(r["ok"] for r in rows_changed)
    print(f"\n{label}: unchanged peer agrees: {ok_same}; changed peer caught: {caught} "
          f"({sum(not r['ok'] for r in rows_changed)} of {len(rows_changed)} rows fail); "
          f"{time.perf_counter() - start:.0f} s\n")
    return ok_same and caught


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cutoff", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--part", choices=("v4", "v5", "v5cc", "both"), default="both")
    ap.add_argument("--change", default="access_cost=250", help="the parameter changed in the peer only (v4 part)")
    ap.add_argument("--v5-change", default="firm_adopt0=0.03",
                    help="the parameter changed in the peer only (v5 part)")
    ap.add_argument("--cc-change", default="p_repick=1",
                    help="the parameter changed in the peer only (v5cc part)")
    args = ap.parse_args()
    os.environ.setdefault("CUTOFF_PYTHON", sys.executable)
    scenario = os.path.join(os.path.dirname(HERE), "data", "scenarios", "baseline.toml")
    ok = True
    if args.part in ("v4", "both"):
        ok &= check(args.cutoff, scenario, args.seeds, compare.V4_SETS, args.change, compare.METRICS, "v4")
    if args.part in ("v5", "both"):
        ok &= check(args.cutoff, scenario, args.seeds, compare.V5_SETS, args.v5_change, compare.V5_METRICS,
                    "v5 without compute caps")
    if args.part == "v5cc":
        known = subprocess.run([args.cutoff, "validate", scenario, "--set", "compute_caps=true"],
                               capture_output=True)
        if known.returncode != 0:
            print(f"skipping: {args.cutoff} has no compute_caps ({known.stderr.decode().strip()})")
            return 77
        ok &= check(args.cutoff, scenario, args.seeds, compare.CC_SETS, args.cc_change, compare.CC_METRICS,
                    "v5 (the baseline)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
