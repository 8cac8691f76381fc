#!/usr/bin/env python3
"""Compares the Mesa peer (JSON from cutoff_mesa.py) with cutoff (HDF5 from
``cutoff run``) on the four peer metrics, with --v5 also on what v5's mechanisms
move (bench/compare.py V5_METRICS: revenue, the plus plan's price, the plan layer's
earnings and revenue per Mtok, each size class's share of firms in each status), with --cc
also on what compute caps move (CC_METRICS: tokens per adopter, access gap), and with --diagnostics
on intermediate quantities; prints means and seed-to-seed standard errors.

    python3 bench/peers/mesa/compare.py --peer P1.json P2.json ... \\
        --ref R1.h5 R2.h5 ... [--ticks 12 23] [--v5] [--cc] [--diagnostics]

Both sides must have run with the same --set (for v5's switches: bench/compare.py
V5_SETS, and tau0_ref_firms=0 so that both derive τ0 on their own population).

Agreement rule (per metric and tick): |mean_peer − mean_ref| ≤
max(3·sqrt(se_peer² + se_ref²), 0.02·|mean_ref|).
"""

import argparse
import json
import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from compare import CC_METRICS, V5_METRICS, with_shares, world_cc  # noqa: E402  (bench/compare.py)

METRICS = ["mean_price", "top20_value_share", "adoption_share", "users_capped_share"]


def ref_series(path: str) -> dict:
    """The peer's metrics and diagnostics, computed from a cutoff HDF5 file."""
    m = h5py.File(path, "r")["metrics"]
    pop = m["population"][:]
    cap = m["capacity"][:]
    tier2 = m["tier"][:] == 2
    out = {
        "mean_price": m["compute_price"][:].mean(axis=1),
        "top20_value_share": m["top20_value_share"][:],
        "adoption_share": (m["adoption_share"][:] * pop).sum(axis=1) / pop.sum(),
        "users_capped_share": m["users_capped_share"][:],
        # diagnostics
        "tokens_per_worker": m["tokens_per_worker"][:],
        "capacity_total": cap.sum(axis=1),
        "revenue_total": m["revenue"][:].sum(axis=1),
        "utilisation_mean": m["utilisation"][:].mean(axis=1),
        "frontier_K_mean": m["frontier_K"][:].mean(axis=1),
        "K_lead": m["K_lead"][:],
        "released_frontier": m["released_frontier"][:],
        "gini_wealth": m["gini_wealth"][:],
        "negative_wealth_share": m["negative_wealth_share"][:],
        "entries": m["entries"][:],
        "price_US-A": m["compute_price"][:, 0],
        "price_FR-E": m["compute_price"][:, -1],
        "partners_total": m["trusted_partners"][:].sum(axis=1),
        "follower_lag_mean": np.nanmean(m["follower_lag"][:], axis=1),
        "zeta_tier2_mean": m["zeta"][:][:, tier2].mean(axis=1),
        "quota_demand_tier2": m["quota_demand"][:][:, tier2].sum(axis=1),
        # (v5)
        "revenue": m["revenue"][:].sum(axis=1),
        "plan_price_plus": m["plan_price"][:][:, :, 1].mean(axis=1),
        "plan_value": np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in m["plan_value"][:]]),
        "consumer_price": np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan
                                    for r in m["price"][:][:, :, list(m["class"][:].astype(str)).index("consumer")]]),
        "firms_by_status": np.stack([m["firms_by_status"][:][:, m["tier"][:] == k].sum(axis=1) for k in (1, 2, 3)],
                                    axis=1),
    }
    # (v5) what compute caps move (bench/compare.py CC_METRICS)
    out.update({k: np.array(v) for k, v in world_cc(m["tokens_per_adopter"][:], m["access_gap"][:],
                                                    m["adoption_share"][:], pop).items()})
    return with_shares(out)


def peer_series(path: str, tier2=None) -> dict:
    """The peer's metrics and diagnostics; tier2 (a boolean mask over the countries,
    from the reference file) selects the tier-2 countries for the quota diagnostics."""
    d = json.load(open(path))
    out = {k: np.array(v, dtype=float) for k, v in with_shares(d["metrics"]).items()}
    g = d.get("diagnostics")
    if g:
        out["tokens_per_worker"] = np.array(g["tokens_per_worker"])
        out["capacity_total"] = np.array(g["capacity"]).sum(axis=1)
        out["revenue_total"] = np.array(g["revenue"]).sum(axis=1)
        out["utilisation_mean"] = np.array(g["utilisation"]).mean(axis=1)
        out["frontier_K_mean"] = np.array(g["frontier_K"]).mean(axis=1)
        out["K_lead"] = np.array(g["K_lead"])
        out["released_frontier"] = np.array(g["released_frontier"])
        out["gini_wealth"] = np.array(g["gini_wealth"])
        out["negative_wealth_share"] = np.array(g["negative_wealth_share"])
        out["entries"] = np.array(g["entries"])
        out["price_US-A"] = np.array(g["compute_price"])[:, 0]
        out["price_FR-E"] = np.array(g["compute_price"])[:, -1]
        out["partners_total"] = np.array(g["trusted_partners"]).sum(axis=1)
        if "follower_lag" in g:
            out["follower_lag_mean"] = np.nanmean(np.array(g["follower_lag"], dtype=float), axis=1)
        if "zeta" in g and tier2 is not None:
            out["zeta_tier2_mean"] = np.array(g["zeta"])[:, tier2].mean(axis=1)
            out["quota_demand_tier2"] = np.array(g["quota_demand"])[:, tier2].sum(axis=1)
    out["_tick_seconds"] = np.array(d["tick_seconds"])
    return out


def stats(xs):
    xs = np.asarray(xs, dtype=float)
    mean = xs.mean()
    se = xs.std(ddof=1) / math.sqrt(len(xs)) if len(xs) > 1 else math.nan
    return mean, se


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", nargs="+", required=True)
    ap.add_argument("--ref", nargs="+", required=True)
    ap.add_argument("--ticks", nargs="+", type=int, default=[12, 23])
    ap.add_argument("--diagnostics", action="store_true")
    ap.add_argument("--v5", action="store_true", help="also the metrics v5's mechanisms move (V5_METRICS)")
    ap.add_argument("--cc", action="store_true", help="also what compute caps move (CC_METRICS; implies --v5)")
    a = ap.parse_args()
    tier2 = h5py.File(a.ref[0], "r")["metrics"]["tier"][:] == 2
    peers = [peer_series(p, tier2) for p in a.peer]
    refs = [ref_series(r) for r in a.ref]
    names = list(CC_METRICS if a.cc else V5_METRICS if a.v5 else METRICS)
    checked = set(names)
    if a.diagnostics:
        names += [k for k in refs[0] if k not in METRICS and all(k in p for p in peers)]
    print(f"peer: {len(peers)} seeds, cutoff: {len(refs)} seeds")
    print(f"{'metric':24s} {'tick':>4s} {'mesa mean':>13s} {'± se':>10s} {'cutoff mean':>13s} {'± se':>10s}"
          f" {'diff/comb.se':>12s} {'rel':>8s}  verdict")
    ok_all = True
    for name in names:
        for t in a.ticks:
            xp = np.array([p[name][t] for p in peers], dtype=float)
            xr = np.array([r[name][t] for r in refs], dtype=float)
            mp, sp = stats(xp[~np.isnan(xp)])  # NaN: a plan layer without demand in that seed
            mr, sr = stats(xr[~np.isnan(xr)])
            comb = math.sqrt(sp ** 2 + sr ** 2)
            diff = mp - mr
            rel = diff / abs(mr) if mr != 0 else math.nan
            ok = abs(diff) <= max(3 * comb, 0.02 * abs(mr))
            if name in checked:
                ok_all &= ok
            z = diff / comb if comb > 0 else math.inf * (diff != 0)
            print(f"{name:24s} {t:4d} {mp:13.6g} {sp:10.3g} {mr:13.6g} {sr:10.3g} {z:12.2f} {rel:8.3%}  "
                  f"{'agree' if ok else 'DIFFER'}")
    ts = np.concatenate([p["_tick_seconds"] for p in peers])
    print(f"peer seconds per tick: mean {ts.mean():.3f}, median {np.median(ts):.3f}")
    print(f"all {len(checked) * len(a.ticks)} checked rows agree" if ok_all else "SOME METRICS DIFFER")


if __name__ == "__main__":
    main()
