#!/usr/bin/env python3
"""Calibration check of the baseline (MODEL.md §8; docs/model.md "Calibration").

Runs the baseline at 1e5 firms and 1e6 users for several seeds up to the
calibration tick and prints each target and plausibility band beside the
model's mean and seed-to-seed standard deviation. Exit status 1 if a target
misses by more than 10% or a band is violated.

    python3 bench/calibration.py [--seeds 5] [--cutoff build/cutoff] [--set key=value]...
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import xarray as xr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# §8 targets: (name, value); "within 10%" of each.
TARGETS = {"top20_value_share": 0.74, "adoption_high": 0.275, "adoption_rest": 0.154}


def run(binary, scenario, seed, ticks, sets, out):
    cmd = [binary, "run", scenario, "-o", out, "--seed", str(seed), "--ticks", str(ticks), "-q"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True)
    return xr.open_dataset(out, group="metrics", engine="h5netcdf")


def measures(ds, calib, p_min, growth_from):
    pop = ds.population
    high = ds.income_group == "high"

    def adoption(t, mask):
        a = ds.adoption_share.isel(tick=t)
        return float((a * pop).where(mask).sum() / pop.where(mask).sum())

    hi, lo = adoption(calib, high), adoption(calib, ~high)
    hi0, lo0 = adoption(growth_from, high), adoption(growth_from, ~high)
    price = ds.compute_price.isel(tick=slice(0, calib + 1)) / p_min
    return {
        "top20_value_share": float(ds.top20_value_share.isel(tick=calib)),
        "adoption_high": hi,
        "adoption_rest": lo,
        "growth_ratio": (hi - hi0) / (lo - lo0) if lo != lo0 else float("inf"),
        "revenue_0_11_bn": float(ds.revenue.isel(tick=slice(0, 12)).sum()) / 1e9,
        "price_min_ratio": float(price.min()),
        "price_max_ratio": float(price.max()),
        "partners_per_release": float(ds.trusted_partners.isel(tick=calib).where(ds.trusted_partners.isel(tick=calib) > 0).mean()),
        "users_capped_share": float(ds.users_capped_share.isel(tick=calib)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cutoff", default=os.path.join(ROOT, "build", "cutoff"))
    ap.add_argument("--scenario", default=os.path.join(ROOT, "data", "scenarios", "baseline.toml"))
    ap.add_argument("--calib-tick", type=int, default=14)
    ap.add_argument("--growth-from", type=int, default=8,
                    help="tick from which the growth in percentage points is measured (H2 2025 -> Q1 2026)")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    p_min = 1.3 * (600 + 30000 / 36)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            ds = run(args.cutoff, args.scenario, seed, args.calib_tick + 1, args.set, os.path.join(tmp, f"s{seed}.h5"))
            rows.append(measures(ds, args.calib_tick, p_min, args.growth_from))
            ds.close()
    keys = rows[0].keys()
    mean = {k: np.mean([r[k] for r in rows]) for k in keys}
    sd = {k: np.std([r[k] for r in rows], ddof=1) if len(rows) > 1 else 0.0 for k in keys}
    ok = True
    print(f"baseline at tick {args.calib_tick}, {args.seeds} seeds, 1e5 firms, 1e6 users; sets: {args.set or 'none'}")
    print(f"{'measure':26s} {'target':>14s} {'model mean':>11s} {'seed sd':>9s}  verdict")
    for k, target in TARGETS.items():
        hit = abs(mean[k] - target) <= 0.1 * target
        ok &= hit
        print(f"{k:26s} {target:14.3f} {mean[k]:11.4f} {sd[k]:9.4f}  {'within 10%' if hit else 'MISS'}")
    checks = [
        ("growth_ratio", "> 2 (pp, ticks %d-%d)" % (args.growth_from, args.calib_tick), mean["growth_ratio"] > 2),
        ("revenue_0_11_bn", "30 to 90 ($bn)", 30 <= mean["revenue_0_11_bn"] <= 90),
        ("price_min_ratio", ">= 1 x p_min", mean["price_min_ratio"] >= 1 - 1e-9),
        ("price_max_ratio", "<= 5 x p_min", max(r["price_max_ratio"] for r in rows) <= 5),
        ("partners_per_release", "about 50 firms", 25 <= mean["partners_per_release"] <= 100),
    ]
    for k, band, hit in checks:
        ok &= hit
        print(f"{k:26s} {band:>14s} {mean[k]:11.4f} {sd[k]:9.4f}  {'inside' if hit else 'OUTSIDE'}")
    print(f"{'users_capped_share':26s} {'(no target)':>14s} {mean['users_capped_share']:11.4f} {sd['users_capped_share']:9.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
