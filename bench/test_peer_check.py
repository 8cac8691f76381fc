#!/usr/bin/env python3
"""The peer check can fail: run by ctest (Peers.CheckCatchesAChangedParameter).

The NumPy peer and cutoff run the baseline (1e4 firms, 1e5 users, 24 ticks, ten
seeds: with five, v4's adapting budgets left access_cost=250 at z 3.86, not caught);
the check of bench/compare.py must pass for the peer as it is and fail when one
parameter of the peer alone is changed. Seeds are fixed, so the verdict
is the same on every run. Exit 0 when both hold, 1 otherwise, 77 (skip) when the
Python modules are missing.
"""
import argparse
import os
import sys

try:
    import numpy  # noqa: F401
    import xarray  # noqa: F401
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cutoff", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--change", default="access_cost=250", help="the parameter changed in the peer only")
    args = ap.parse_args()
    os.environ.setdefault("CUTOFF_PYTHON", sys.executable)
    scenario = os.path.join(os.path.dirname(HERE), "data", "scenarios", "baseline.toml")
    firms, users, ticks = 10_000, 100_000, 24
    checked = [12, ticks - 1]
    n = args.seeds
    _, cut = compare.first_runs(lambda s: compare.cutoff_metrics(args.cutoff, scenario, firms, users, ticks, s), n)
    _, same = compare.first_runs(
        lambda s: compare.peer_metrics("numpy", scenario, firms, users, ticks, s, args.cutoff), n)
    _, changed = compare.first_runs(
        lambda s: compare.peer_metrics("numpy", scenario, firms, users, ticks, s, args.cutoff, [args.change]), n)
    same = [r["metrics"] for r in same]
    changed = [r["metrics"] for r in changed]
    rows_same = compare.agreement(cut, same, checked)
    rows_changed = compare.agreement(cut, changed, checked)
    print("NumPy peer as it is:\n" + compare.format_rows(rows_same))
    print(f"\nNumPy peer with --set {args.change}:\n" + compare.format_rows(rows_changed))
    ok_same = all(r["ok"] for r in rows_same)
    caught = not all(r["ok"] for r in rows_changed)
    print(f"\nunchanged peer agrees: {ok_same}; changed peer caught: {caught}")
    return 0 if ok_same and caught else 1


if __name__ == "__main__":
    sys.exit(main())
