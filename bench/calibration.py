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

sys.path.insert(0, os.path.join(ROOT, "python", "src"))  # the cutoff_analysis package, installed or not
from cutoff_analysis.calibration import BANDS, TARGETS, band_hit, measures, p_min, target_hit  # noqa: E402


def run(binary, scenario, seed, ticks, sets, out):
    cmd = [binary, "run", scenario, "-o", out, "--seed", str(seed), "--ticks", str(ticks), "-q"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True)
    return xr.open_dataset(out, group="metrics", engine="h5netcdf")


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
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            ds = run(args.cutoff, args.scenario, seed, args.calib_tick + 1, args.set, os.path.join(tmp, f"s{seed}.h5"))
            rows.append({k: float(v) for k, v in measures(ds, args.calib_tick, p_min(ds), args.growth_from).items()})
            ds.close()
    keys = rows[0].keys()
    mean = {k: np.mean([r[k] for r in rows]) for k in keys}
    sd = {k: np.std([r[k] for r in rows], ddof=1) if len(rows) > 1 else 0.0 for k in keys}
    ok = True
    print(f"baseline at tick {args.calib_tick}, {args.seeds} seeds, 1e5 firms, 1e6 users; sets: {args.set or 'none'}")
    print(f"{'measure':26s} {'target':>14s} {'model mean':>11s} {'seed sd':>9s}  verdict")
    for k, target in TARGETS.items():
        hit = target_hit(k, mean[k])
        ok &= hit
        print(f"{k:26s} {target:14.3f} {mean[k]:11.4f} {sd[k]:9.4f}  {'within 10%' if hit else 'MISS'}")
    for k, (_, _, _, band) in BANDS.items():
        hit = band_hit(k, [r[k] for r in rows])
        ok &= hit
        band = band.format(growth_from=args.growth_from, calib=args.calib_tick)
        print(f"{k:26s} {band:>14s} {mean[k]:11.4f} {sd[k]:9.4f}  {'inside' if hit else 'OUTSIDE'}")
    print(f"{'users_capped_share':26s} {'(no target)':>14s} {mean['users_capped_share']:11.4f} {sd['users_capped_share']:9.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
