"""Peers against cutoff: the same model must give the same main metrics.

Each peer (bench/peers/*) and cutoff run the same scenario and sizes for several
seeds; for each main metric (METRICS; with model v5's switches on, V5_METRICS; with
them and compute caps on, CC_METRICS) at each checked tick, the difference of the
means must lie within K combined standard errors of the seed-to-seed spread,
|mean_peer − mean_cutoff| ≤ K·sqrt(se_peer² + se_cutoff²).
K is stated in the results.
"""
import json
import math
import os
import subprocess
import tempfile

import numpy as np

import versions

K = 4.0
METRICS = ("mean_price", "top20_value_share", "adoption_share", "users_capped_share")
# (v5) with v5's switches on, also what they move: provider revenue, the plus plan's price,
# the plan layer's earnings per H100e and its revenue per Mtok used (users' plans and firms'
# seats: price(provider, consumer)) (means over providers), and who is cut off: each size
# class's share of the world's real firms in each status, API = rationed, budget_bound or
# served (docs/model.md §7's access layers).
STATUSES = ("no_access", "no_budget", "priced_out", "rationed", "budget_bound", "served", "no_value", "seats",
            "seats_capped", "not_adopted")
SIZE_CLASSES = ("1-9", "10-49", "50-249", "250+")
SHARES = {"no_value": ("no_value",), "no_budget": ("no_budget",), "priced_out": ("priced_out",),
          "api": ("rationed", "budget_bound", "served"), "seats": ("seats",), "seats_capped": ("seats_capped",),
          "not_adopted": ("not_adopted",)}
V5_METRICS = METRICS + ("revenue", "plan_price_plus", "plan_value", "consumer_price") + tuple(
    f"firms {c} {s}" for c in SIZE_CLASSES for s in SHARES)
# The peer check's three versions (bench/versions.py): v4, v5 without compute caps, and v5 as
# the baseline has it. Compute caps (§2.4, §2.6e) also move the tokens an adopter in the
# market gets (tokens_per_adopter, countries weighted by their adopters,
# adoption_share·population) and the generations it uses (access_gap, weighted by population).
V4_SETS = versions.V4_SETS
V5_SETS = versions.V5_NO_CC_SETS
CC_SETS = ()
CC_METRICS = V5_METRICS + ("tokens_per_adopter", "access_gap")
# The peers are compared with cutoff on τ0 and need0 derived on their own population at
# the run's counts (v4's §2.0, tau0_ref_firms = 0): both programs port the reference
# population (v5), but deriving on 1e5/1e6 agents in every run of the check would cost
# more than the run itself (bench/results/model-v5-peers.txt checks it once).
BASE_SETS = ("tau0_ref_firms=0",)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def with_shares(metrics):
    """Adds to a run's metrics the shares "firms CLASS STATUS" (SHARES) per tick, from its
    firms_by_status (tick, tier, size class, status: real firms), when it has one."""
    fbs = metrics.get("firms_by_status")
    if fbs is None:
        return metrics
    a = np.asarray(fbs, dtype=float).sum(axis=1)              # (tick, size class, status), world
    tot = a.sum(axis=2)
    idx = {n: j for j, n in enumerate(STATUSES)}
    for ci, c in enumerate(SIZE_CLASSES):
        for name, sts in SHARES.items():
            num = sum(a[:, ci, idx[x]] for x in sts)
            metrics[f"firms {c} {name}"] = np.where(tot[:, ci] > 0, num / np.where(tot[:, ci] > 0, tot[:, ci], 1),
                                                    np.nan).tolist()
    return metrics


def world_cc(tokens_per_adopter, access_gap, adoption_share, population):
    """CC_METRICS' world series from per-(tick, country) arrays (or any arrays whose last
    axis is the country): tokens per adopter weighted by adopters (countries with an
    adopter in the market), access gap by population."""
    tpa = np.asarray(tokens_per_adopter, dtype=float)
    wa = np.where(np.isfinite(tpa), np.asarray(adoption_share, dtype=float) * population, 0.0)
    tot = wa.sum(axis=-1)
    world = np.where(tot > 0, (wa * np.nan_to_num(tpa)).sum(axis=-1) / np.where(tot > 0, tot, 1.0), np.nan)
    gap = (np.asarray(access_gap, dtype=float) * population).sum(axis=-1) / np.sum(population)
    return {"tokens_per_adopter": world.tolist(), "access_gap": gap.tolist()}


def cutoff_metrics(binary, scenario, firms, users, ticks, seed, sets=()):
    """Runs cutoff and returns the four main metrics per tick, as the peers report them."""
    import xarray as xr

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.h5")
        cmd = [binary, "run", scenario, "-o", out, "--firms", str(firms), "--users", str(users),
               "--ticks", str(ticks), "--seed", str(seed), "-q"]
        for s in BASE_SETS + tuple(sets):
            cmd += ["--set", s]
        if subprocess.run(cmd).returncode == 2:
            return None  # no τ0 for this seed (docs/model.md): the caller takes the next seed
        with xr.open_dataset(out, group="metrics", engine="h5netcdf") as m:
            pop = m.population
            adoption = (m.adoption_share * pop).sum("country") / pop.sum()
            fbs = m.firms_by_status
            by_tier = np.stack([fbs.where(m.tier == k, 0.0).sum("country").values for k in (1, 2, 3)], axis=1)
            return with_shares({
                "mean_price": m.compute_price.mean("provider").values.tolist(),
                "top20_value_share": m.top20_value_share.values.tolist(),
                "adoption_share": adoption.values.tolist(),
                "users_capped_share": m.users_capped_share.values.tolist(),
                "revenue": m.revenue.sum("provider").values.tolist(),
                "plan_price_plus": m.plan_price.isel(plan=1).mean("provider").values.tolist(),
                "plan_value": m.plan_value.mean("provider", skipna=True).values.tolist(),
                "consumer_price": m.price.sel({"class": "consumer"}).mean("provider", skipna=True).values.tolist(),
                "firms_by_status": by_tier.tolist(),
                **world_cc(m.tokens_per_adopter.values, m.access_gap.values, m.adoption_share.values,
                           pop.values),
            })


def peer_metrics(peer, scenario, firms, users, ticks, seed, binary, sets=()):
    """Runs a peer (numpy or mesa) and returns its JSON."""
    script = {"numpy": "bench/peers/numpy/cutoff_np.py", "mesa": "bench/peers/mesa/cutoff_mesa.py"}[peer]
    python = os.environ.get("CUTOFF_PYTHON", "python3")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "peer.json")
        cmd = [python, os.path.join(ROOT, script), scenario, "--firms", str(firms), "--users", str(users),
               "--ticks", str(ticks), "--seed", str(seed), "--out", out, "--cutoff", binary]
        for s in BASE_SETS + tuple(sets):
            cmd += ["--set", s]
        code = subprocess.run(cmd).returncode
        if code == 2:
            return None  # no τ0 for this seed, as in cutoff: the caller takes the next seed
        if code != 0:
            raise RuntimeError(f"{peer} peer failed (exit {code}): {' '.join(cmd)}")
        with open(out) as f:
            r = json.load(f)
        with_shares(r["metrics"])
        return r


def first_runs(run, n, limit=None):
    """The first n seeds (1, 2, …) for which run(seed) succeeds, as (seeds, results).

    At 1e4 firm agents τ0 cannot be derived for a few seeds (docs/model.md); each
    program then exits 2 and that seed is skipped, for cutoff and peers alike."""
    seeds, results = [], []
    for seed in range(1, (limit or 4 * n) + 1):
        r = run(seed)
        if r is not None:
            seeds.append(seed)
            results.append(r)
            if len(results) == n:
                return seeds, results
    raise RuntimeError(f"fewer than {n} of the first {limit or 4 * n} seeds could derive tau0")


def agreement(cutoff_runs, peer_runs, ticks_checked, k=K, metrics=METRICS):
    """Rows (metric, tick, cutoff mean, se, peer mean, se, z, ok) for the lists of per-seed metric dicts."""
    rows = []
    for metric in metrics:
        for t in ticks_checked:
            a = np.array([r[metric][t] for r in cutoff_runs], dtype=float)
            b = np.array([r[metric][t] for r in peer_runs], dtype=float)
            if np.isnan(a).any() or np.isnan(b).any():
                # NaN in a seed (a plan layer without demand): compare the seeds that have it.
                a, b = a[~np.isnan(a)], b[~np.isnan(b)]
                if len(a) < 2 or len(b) < 2:
                    continue
            se_a = a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else 0.0
            se_b = b.std(ddof=1) / math.sqrt(len(b)) if len(b) > 1 else 0.0
            se = math.sqrt(se_a ** 2 + se_b ** 2)
            diff = abs(b.mean() - a.mean())
            z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
            rows.append({"metric": metric, "tick": t, "cutoff": a.mean(), "cutoff_se": se_a, "peer": b.mean(),
                         "peer_se": se_b, "z": z, "ok": bool(z <= k)})
    return rows


def format_rows(rows, k=K):
    lines = [f"{'metric':26s} {'tick':>4s} {'cutoff':>12s} {'±se':>9s} {'peer':>12s} {'±se':>9s} {'z':>6s}"]
    for r in rows:
        lines.append(f"{r['metric']:26s} {r['tick']:4d} {r['cutoff']:12.5g} {r['cutoff_se']:9.2g} "
                     f"{r['peer']:12.5g} {r['peer_se']:9.2g} {r['z']:6.2f} {'ok' if r['ok'] else f'FAIL (> {k})'}")
    return "\n".join(lines)
