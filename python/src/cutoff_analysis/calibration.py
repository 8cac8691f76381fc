"""docs/model.md §8 calibration targets and plausibility bands, measured on a baseline run
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

#: §8 targets, each "within :data:`TOLERANCE`" of its value. The top-20% share's is
#: over the firms with 250+ employees that have used AI (the PwC study surveyed large
#: listed companies); the share over every such firm is printed beside it, without a
#: target (outputs from before the large firms' metric lack it).
TARGETS = {"top20_value_share_large": 0.74, "adoption_high": 0.275, "adoption_rest": 0.154}
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
    "top20_value_share_large": "top-20% share of AI value, firms of 250+ [share]",
    "top20_value_share": "top-20% share of AI value, every firm [share]",
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
#: (v4) §8 bands over the whole horizon, for the ensemble mean: (low, high, text).
HORIZON_BANDS = {
    "revenue_growth_min_to_2030": (1.0, np.inf, "> 1 (each year 2026-2030 over the last)"),
    "revenue_2026_over_2025": (1.3, 3.0, "1.3 to 3"),
    "us_capacity_share_min_to_2030": (0.6, 1.0, ">= 0.6 (ticks 0-71)"),
    "us_capacity_share_horizon": (0.5, 1.0, ">= 0.5 (last tick)"),
    "us_lead_share_of_ticks": (1.0, 1.0, "1 (every tick)"),
    "follower_lag_mean": (4.0, 12.0, "4 to 12 ticks"),
    "us_price_above_floor_share": (0.1, 1.0, ">= 0.1 of ticks > calib"),
    "price_max_annual_ratio": (0.0, 20.0, "<= 20 x p_min"),
}
HORIZON_LABELS = {
    "revenue_growth_min_to_2030": "least yearly revenue growth to 2030 [ratio]",
    "revenue_2026_over_2025": "provider revenue 2026 over 2025 [ratio]",
    "us_capacity_share_2025": "US-homed share of capacity, 2025 mean [share] (about 0.75)",
    "us_capacity_share_min_to_2030": "least US-homed share of capacity to 2030 [share]",
    "us_capacity_share_horizon": "US-homed share of capacity at the horizon [share]",
    "us_lead_share_of_ticks": "ticks with a US-homed lab at the highest K [share]",
    "follower_lag_mean": "follower lag, mean over ticks [ticks]",
    "us_price_above_floor_share": "US labs' ticks above 1.05 p_min after calib [share]",
    "price_max_annual_ratio": "highest provider's yearly mean price [x p_min]",
}

#: (v5) The Census Business Trends and Outlook Survey's US firms using AI "in any
#: business function", December 2025 to May 2026 (data/raw/README.md): a reference to
#: compare with, not a target. The model's firms using AI are those on the API or on
#: seats; its smallest size class is 1-9 employees where BTOS reports four or fewer.
BTOS_TICKS = (11, 16)  # December 2025 to May 2026, tick 0 being January 2025
BTOS = {
    "us_ai_firms": (0.17, 0.20, "0.17 to 0.20"),
    "us_ai_employment": (0.32, 0.32, "0.32"),
    "us_ai_firms_250": (0.37, 0.37, "0.37"),
    "us_ai_firms_1_9": (0.0, 0.20, "< 0.20 (BTOS: 1-4 employees)"),
}
BTOS_LABELS = {
    "us_ai_firms": "US firms using AI (API or seats), Dec 2025-May 2026 [share]",
    "us_ai_employment": "the same, employment-weighted [share]",
    "us_ai_firms_250": "the same, firms with 250+ employees [share]",
    "us_ai_firms_1_9": "the same, firms with 1-9 employees [share]",
}
#: (v5) Nothing saturates (issue 35): bands over the whole horizon, (low, high, text).
SATURATION_BANDS = {
    "capped_max": (0.0, 0.9 - 1e-12, "< 0.9 (every tick)"),
    "status_max_us": (0.0, 0.95 - 1e-12, "< 0.95 (ticks >= 24)"),
    "status_max_tier2": (0.0, 0.95 - 1e-12, "< 0.95 (ticks >= 24)"),
}
SATURATION_LABELS = {
    "capped_max": "users compute-capped, largest over ticks [share]",
    "status_max_us": "US: largest share of a size class in one status [share]",
    "status_max_tier2": "tier 2: largest share of a size class in one status [share]",
}
#: The statuses of a firm using AI (v5: on the API or on seats).
USING_AI = ("rationed", "budget_bound", "served", "seats", "seats_capped")


def p_min(ds: xr.Dataset | None = None) -> float:
    """Price floor p_min = (1 + markup)(opex + capex/life), USD per H100e-month, from the
    output's resolved scenario (docs/model.md's defaults where it holds none)."""
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
    top20 = {k: ds[k].isel(tick=calib, drop=True) for k in ("top20_value_share_large", "top20_value_share") if k in ds}
    return {
        **top20,
        "adoption_high": hi,
        "adoption_rest": lo,
        "growth_ratio": xr.where(lo != lo0, (hi - hi0) / (lo - lo0), np.inf),
        "revenue_0_11_bn": ds["revenue"].isel(tick=slice(0, 12)).sum(("tick", "provider")) / 1e9,
        "price_min_ratio": price.min(("tick", "provider")),
        "price_max_ratio": price.max(("tick", "provider")),
        "partners_per_release": partners.where(partners > 0).mean("provider").drop_vars("tick", errors="ignore"),
        "users_capped_share": ds["users_capped_share"].isel(tick=calib, drop=True),
    }


def horizon_measures(ds: xr.Dataset, calib: int = CALIB_TICK, pmin: float | None = None) -> dict[str, xr.DataArray]:
    """(v4) The quantities of §8's bands over the whole horizon (:data:`HORIZON_BANDS`),
    one value per run or replicate. Years are 12-tick blocks from tick 0 (January 2025)."""
    pmin = p_min(ds) if pmin is None else pmin
    us = ds["provider_home"] == "USA"
    n = ds.sizes["tick"]
    years = n // 12
    rev = ds["revenue"].sum("provider")
    annual = xr.concat([rev.isel(tick=slice(12 * y, 12 * y + 12)).sum("tick") for y in range(years)], dim="year")
    to_2030 = min(years, 6)
    growth = xr.concat([annual.isel(year=y) / annual.isel(year=y - 1) for y in range(1, to_2030)], dim="year")
    cap = ds["capacity"]
    share = cap.where(us, 0.0).sum("provider") / cap.sum("provider")
    K = ds["frontier_K"]
    us_best = K.where(us).max("provider")
    other_best = K.where(~us).max("provider")
    lag = ds["follower_lag"].where(~us).mean("provider")  # NaN for non-followers
    price = ds["compute_price"] / pmin
    after = price.isel(tick=slice(calib + 1, None))
    yearly = xr.concat([price.isel(tick=slice(12 * y, 12 * y + 12)).mean("tick") for y in range(years)], dim="year")
    return {
        "revenue_growth_min_to_2030": growth.min("year"),
        "revenue_2026_over_2025": annual.isel(year=1) / annual.isel(year=0),
        "us_capacity_share_2025": share.isel(tick=slice(0, 12)).mean("tick"),
        "us_capacity_share_min_to_2030": share.isel(tick=slice(0, 72)).min("tick"),
        "us_capacity_share_horizon": share.isel(tick=-1, drop=True),
        "us_lead_share_of_ticks": (us_best >= other_best).mean("tick"),
        "follower_lag_mean": lag.mean("tick"),
        "us_price_above_floor_share": (after.where(us) > 1.05).sum(("tick", "provider"))
        / (after.sizes["tick"] * int(us.sum())),
        "price_max_annual_ratio": yearly.max(("year", "provider")),
    }


def btos_measures(ds: xr.Dataset, ticks: tuple[int, int] = BTOS_TICKS) -> dict[str, xr.DataArray]:
    """(v5) The model's counterparts of :data:`BTOS`: US firms using AI (on the API or
    on seats), as a share of real firms, of employment, of firms with 250+ and of
    firms with 1-9 employees, averaged over ticks ``ticks[0]`` to ``ticks[1]``."""
    window = {"tick": slice(ticks[0], ticks[1] + 1)}
    using = [s for s in USING_AI if s in ds["status"].values]

    def share(var, size=None):
        da = ds[var].sel(country="USA").isel(window)
        if size is not None:
            da = da.sel(size_class=size)
        else:
            da = da.sum("size_class")
        return (da.sel(status=using).sum("status") / da.sum("status")).mean("tick")

    return {
        "us_ai_firms": share("firms_by_status"),
        "us_ai_employment": share("employment_by_status"),
        "us_ai_firms_250": share("firms_by_status", "250+"),
        "us_ai_firms_1_9": share("firms_by_status", "1-9"),
    }


def saturation_measures(ds: xr.Dataset, from_tick: int = 24) -> dict[str, xr.DataArray]:
    """(v5) Whether anything saturates: the largest share of users compute-capped over
    all ticks, and from ``from_tick`` on the largest share of one size class's real
    firms in any one status, in the US and in tier 2 (:data:`SATURATION_BANDS`)."""
    firms = ds["firms_by_status"].isel(tick=slice(from_tick, None))

    def most(da):
        shares = da / da.sum("status").where(lambda t: t > 0)
        return shares.max(("tick", "size_class", "status"))

    tier2 = firms.where(ds["tier"] == 2, 0.0).sum("country")
    return {
        "capped_max": ds["users_capped_share"].max("tick"),
        "status_max_us": most(firms.sel(country="USA", drop=True)),
        "status_max_tier2": most(tier2),
    }


#: (v5) The regions and ticks of the who-is-cut-off shares in the convergence check.
CUT_OFF_REGIONS = ("USA", "tier 2", "tier 3")
CUT_OFF_TICKS = (24, 59, 119)


def cut_off_measures(ds: xr.Dataset, ticks=CUT_OFF_TICKS, regions=CUT_OFF_REGIONS,
                     least: float = 0.01) -> dict[str, xr.DataArray]:
    """(v5) Who is cut off, for the convergence check (issue 35): the share of each size
    class's real firms in each status, for the US and for tiers 2 and 3, at ``ticks``.
    A share whose largest value over replicates is below ``least`` is left out (a
    status no firm of the class is in says nothing about convergence)."""
    out = {}
    for region in regions:
        if region.startswith("tier "):
            firms = ds["firms_by_status"].where(ds["tier"] == int(region.split()[1]), 0.0).sum("country")
        else:
            firms = ds["firms_by_status"].sel(country=region, drop=True)
        shares = firms / firms.sum("status").where(lambda t: t > 0)
        for t in ticks:
            if t >= ds.sizes["tick"]:
                continue
            at = shares.sel(tick=t, drop=True)
            for size in at["size_class"].values:
                for status in at["status"].values:
                    v = at.sel(size_class=size, status=status, drop=True)
                    if float(v.max()) >= least:
                        out[f"{region} {size} {status} t{t}".replace(" ", "_")] = v
    return out


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
    names = [n for n in list(TARGETS) + list(BANDS) + ["users_capped_share"] if n in m]
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
    fig.suptitle(f"Baseline against docs/model.md §8 at calibration tick {calib}", fontsize=10)
    fig.tight_layout()
    return fig
