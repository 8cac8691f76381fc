"""MODEL.md §8 calibration targets and plausibility bands, measured on a baseline run
or ensemble at the calibration tick (docs/model.md "Calibration"). bench/calibration.py
prints them for a few seeds; notebooks/calibration.ipynb plots them.

Each measure keeps the dimensions it does not reduce, so on an ensemble it is one value
per replicate (and swept value).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .analysis import QUANTILES, weighted_mean_by
from .io import scenario_params

#: §8 targets, each "within :data:`TOLERANCE`" of its value.
TARGETS = {"top20_value_share": 0.74, "adoption_high": 0.275, "adoption_rest": 0.154}
TOLERANCE = 0.1
#: §8 plausibility bands: (low, high, how the seeds are pooled, text). The growth
#: ratio's text takes the ticks it is measured over.
BANDS = {
    "growth_ratio": (2.0, np.inf, "mean", "> 2 (pp, ticks {growth_from}-{calib})"),
    "revenue_0_11_bn": (30.0, 90.0, "mean", "30 to 90 ($bn)"),
    "price_min_ratio": (1.0 - 1e-9, np.inf, "mean", ">= 1 x p_min"),
    "price_max_ratio": (-np.inf, 5.0, "max", "<= 5 x p_min"),
    "partners_per_release": (25.0, 100.0, "mean", "about 50 firms"),
}
LABELS = {
    "top20_value_share": "top-20% share of AI value [share]",
    "adoption_high": "adoption, high income [share of people]",
    "adoption_rest": "adoption, other countries [share of people]",
    "growth_ratio": "high/other adoption growth [ratio of pp]",
    "revenue_0_11_bn": "provider revenue, ticks 0-11 [USD bn]",
    "price_min_ratio": "lowest compute price [x p_min]",
    "price_max_ratio": "highest compute price [x p_min]",
    "partners_per_release": "trusted partners per provider [firms]",
    "users_capped_share": "users compute-capped [share]",
}
#: The default calibration tick (14, March 2026) and the tick the growth is measured from.
CALIB_TICK, GROWTH_FROM = 14, 8


def p_min(ds: xr.Dataset | None = None) -> float:
    """Price floor p_min = (1 + markup)(opex + capex/life), USD per H100e-month, from the
    output's resolved scenario (MODEL.md's defaults where it holds none)."""
    p = {"markup": 0.3, "opex": 600.0, "capex": 30000.0, "life": 36.0}
    if ds is not None:
        p.update({k: v for k, v in scenario_params(ds).items() if k in p})
    return (1 + p["markup"]) * (p["opex"] + p["capex"] / p["life"])


def measures(ds: xr.Dataset, calib: int = CALIB_TICK, pmin: float | None = None,
             growth_from: int = GROWTH_FROM) -> dict[str, xr.DataArray]:
    """Every §8 measure at tick ``calib``: the targets, the bands' quantities and the
    share of users capped (no target)."""
    pmin = p_min(ds) if pmin is None else pmin
    high = ds["income_group"] == "high"
    group = high.astype(int)

    def adoption(t):
        a = weighted_mean_by(ds["adoption_share"].isel(tick=t), ds["population"], group, (1, 0), "high")
        return a.sel(high=1, drop=True), a.sel(high=0, drop=True)

    hi, lo = adoption(calib)
    hi0, lo0 = adoption(growth_from)
    price = ds["compute_price"].isel(tick=slice(0, calib + 1)) / pmin
    partners = ds["trusted_partners"].isel(tick=calib)
    return {
        "top20_value_share": ds["top20_value_share"].isel(tick=calib, drop=True),
        "adoption_high": hi,
        "adoption_rest": lo,
        "growth_ratio": xr.where(lo != lo0, (hi - hi0) / (lo - lo0), np.inf),
        "revenue_0_11_bn": ds["revenue"].isel(tick=slice(0, 12)).sum(("tick", "provider")) / 1e9,
        "price_min_ratio": price.min(("tick", "provider")),
        "price_max_ratio": price.max(("tick", "provider")),
        "partners_per_release": partners.where(partners > 0).mean("provider").drop_vars("tick", errors="ignore"),
        "users_capped_share": ds["users_capped_share"].isel(tick=calib, drop=True),
    }


def target_hit(name: str, value: float) -> bool:
    """Whether ``value`` is within :data:`TOLERANCE` of the §8 target ``name``."""
    return abs(value - TARGETS[name]) <= TOLERANCE * TARGETS[name]


def band_hit(name: str, values) -> bool:
    """Whether the seeds' ``values`` (pooled as :data:`BANDS` says) lie in the band ``name``."""
    lo, hi, pool, _ = BANDS[name]
    v = float(np.max(values) if pool == "max" else np.mean(values))
    return lo <= v <= hi


def plot_calibration(ds: xr.Dataset, calib: int = CALIB_TICK, growth_from: int = GROWTH_FROM) -> plt.Figure:
    """One panel per §8 target and band: the run's value (an ensemble: each replicate,
    the median, 25-75% and 5-95%) at tick ``calib`` against the target ±10% or the band."""
    m = measures(ds, calib, growth_from=growth_from)
    names = list(TARGETS) + list(BANDS) + ["users_capped_share"]
    fig, grid = plt.subplots(3, 3, figsize=(9.5, 9.5))
    axes = grid.flat
    for ax, name in zip(axes, names):
        v = m[name].values.ravel()
        if name in TARGETS:
            t = TARGETS[name]
            ax.axhspan(t * (1 - TOLERANCE), t * (1 + TOLERANCE), color="tab:green", alpha=0.15, lw=0,
                       label="target ±10%")
            ax.axhline(t, color="tab:green", lw=1.5, label="target")
        elif name in BANDS:
            lo, hi, _, _ = BANDS[name]
            lo_, hi_ = (lo if np.isfinite(lo) else None), (hi if np.isfinite(hi) else None)
            ylo = lo_ if lo_ is not None else min(np.nanmin(v), hi_) * 0.8
            yhi = hi_ if hi_ is not None else max(np.nanmax(v), lo_) * 1.25
            ax.axhspan(ylo, yhi, color="tab:green", alpha=0.15, lw=0, label="plausibility band")
        if v.size > 1:
            q = np.nanquantile(v, QUANTILES)
            ax.vlines(0, q[0], q[4], color="tab:blue", lw=3, alpha=0.5, label="5-95%")
            ax.vlines(0, q[1], q[3], color="tab:blue", lw=8, alpha=0.8, label="25-75%")
            ax.hlines(q[2], -0.25, 0.25, color="k", lw=1.5, label="median")
        ax.plot(np.linspace(-0.15, 0.15, v.size) if v.size > 1 else [0], v, "o", ms=3, color="tab:red",
                alpha=0.8, label="replicates" if v.size > 1 else "run")
        ax.set_xlim(-0.6, 0.6)
        ax.set_xticks([])
        ax.set_title(LABELS[name].split(" [")[0], fontsize=9)
        ax.set_ylabel(LABELS[name], fontsize=8)
        ax.tick_params(labelsize=8)
    grid[0, 0].legend(fontsize=7, loc="lower left")
    grid[1, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Baseline against MODEL.md §8 at calibration tick {calib}", fontsize=10)
    fig.tight_layout()
    return fig
