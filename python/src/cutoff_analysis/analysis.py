"""Answers to the seeds' questions from a run's or an ensemble's metrics.

Every helper takes the Dataset of :func:`~cutoff_analysis.io.open_run` or
:func:`~cutoff_analysis.io.open_ensemble` and keeps whatever dimensions it does not
reduce (``tick``, and an ensemble's ``replicate`` and swept keys), so one helper
serves a run and an ensemble alike; :func:`bands` turns the replicates into quantiles.
Results carry ``units`` and ``long_name`` attributes for the plots.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .io import followers, open_run, open_snapshots, run_files

#: World Bank income groups as the country table spells them, poorest first.
INCOME_GROUPS = ("low", "lower_middle", "upper_middle", "high")
#: Export-control tiers (docs/model.md §3).
TIERS = (1, 2, 3)
#: Quantiles of the ensemble bands: 5-95% and 25-75% around the median.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# Bits of the firms' snapshot field ``flags`` (agents/fields.hpp).
FIRM_LARGE = 1 << 1
FIRM_USED_AI = 1 << 5


def _named(da: xr.DataArray, units: str, long_name: str) -> xr.DataArray:
    da.attrs = {"units": units, "long_name": long_name}
    return da


def weighted_mean_by(da: xr.DataArray, weight: xr.DataArray, labels: xr.DataArray, groups, name: str) -> xr.DataArray:
    """Mean of ``da`` over ``country`` weighted by ``weight`` within each group of
    ``labels`` (a ``country`` coordinate), as a new dimension ``name``; countries where
    ``da`` is NaN carry no weight. A group with no weight gives NaN."""
    out = []
    for g in groups:
        w = weight.where((labels == g) & da.notnull(), 0.0)
        out.append((da.fillna(0.0) * w).sum("country") / w.sum("country").where(lambda s: s > 0))
    return xr.concat(out, dim=pd.Index(list(groups), name=name))


def adoption_by(ds: xr.Dataset, by: str = "income_group") -> xr.DataArray:
    """Share of people using AI (``adoption_share``) by income group or by tier over
    time, population-weighted across the group's countries."""
    groups = {"income_group": INCOME_GROUPS, "tier": TIERS}[by]
    da = weighted_mean_by(ds["adoption_share"], ds["population"], ds[by], groups, by)
    return _named(da, ds["adoption_share"].attrs.get("units", "1"), f"share of people using AI, by {by.replace('_', ' ')}")


def access_gap_by_tier(ds: xr.Dataset) -> xr.DataArray:
    """Access gap (best released K less the K a country's AI users access), mean over
    each tier's countries weighted by population."""
    da = weighted_mean_by(ds["access_gap"], ds["population"], ds["tier"], TIERS, "tier")
    return _named(da, ds["access_gap"].attrs.get("units", "K"), "access gap by tier (population-weighted)")


#: Firm statuses of docs/model.md §7, in the order of the ``status`` dimension (v5 appended
#: ``no_value``, which v4 files lack: v4 counted those firms as ``no_budget``; the
#: product layer's ``seats`` and ``seats_capped``; and ``not_adopted``, firms that have not
#: adopted AI yet under the firms' diffusion).
STATUSES = ("no_access", "no_budget", "priced_out", "rationed", "budget_bound", "served", "no_value", "seats",
            "seats_capped", "not_adopted")
#: The statuses that count an eligible firm as cut off: it buys nothing, or less than it
#: would at the price (``no_value`` included, so v4 and v5 files give the same total).
#: ``not_adopted`` is not: such a firm has not sought access yet (the firms' diffusion,
#: docs/model.md §2.9), so nothing refused it; ``access_layers`` counts it with no layer.
CUT_OFF = ("no_value", "no_budget", "priced_out", "rationed")


def _by_status(ds: xr.Dataset, weight: str, by: str | None) -> xr.DataArray:
    """Real firms (``weight="firms"``) or their employment in each status and size class,
    summed per tier (``by="tier"``) or income group (``"income_group"``), kept per country
    (``"country"``) or for the world (None)."""
    if weight not in ("firms", "employment"):
        raise ValueError(f"weight={weight!r}: allowed 'firms' or 'employment'")
    da = ds[{"firms": "firms_by_status", "employment": "employment_by_status"}[weight]]
    if by in ("tier", "income_group"):
        return da.groupby(ds[by]).sum("country")
    if by is None:
        return da.sum("country")
    if by != "country":
        raise ValueError(f"by={by!r}: allowed 'tier', 'income_group', 'country' or None")
    return da


def status_shares(ds: xr.Dataset, weight: str = "firms", by: str | None = None) -> xr.DataArray:
    """Share of the world's real firms (``weight="firms"``) or of their employment
    (``"employment"``) in each status, within each size class, over time; per tier
    (``by="tier"``), income group (``"income_group"``) or country (``"country"``) instead
    of the world."""
    da = _by_status(ds, weight, by)
    out = da / da.sum("status").where(lambda t: t > 0)
    return _named(out, "1", f"share of {'real firms' if weight == 'firms' else 'employment'} by access status")


#: (v5) The access layer of each status: API compute (the frontier, its TRUSTED and KYC
#: stages included), seats on a plan (released models, capped), or none.
ACCESS_LAYERS = {
    "api": ("rationed", "budget_bound", "served"),
    "seats": ("seats", "seats_capped"),
    "none": ("no_access", "no_value", "no_budget", "priced_out", "not_adopted"),
}


def _to_layers(da: xr.DataArray) -> xr.DataArray:
    """Counts over ``status`` summed into the ``layer`` of each (``ACCESS_LAYERS``)."""
    present = set(da["status"].values)
    layers = [da.sel(status=[s for s in members if s in present]).sum("status") for members in ACCESS_LAYERS.values()]
    return xr.concat(layers, dim=xr.DataArray(list(ACCESS_LAYERS), dims="layer", name="layer"))


def access_layers(ds: xr.Dataset, by: str = "tier", weight: str = "firms") -> xr.DataArray:
    """(v5) Share of real firms (or employment) of each size class on each access layer
    (``ACCESS_LAYERS``: api, seats, none), per tier (``by="tier"``), income group
    (``"income_group"``), country (``"country"``) or for the world (``by=None``), over
    time. A rationed firm counts as on the API (it got some compute, or was zeroed below
    q_min: docs/model.md §7)."""
    out = _to_layers(_by_status(ds, weight, by))
    out = out / out.sum("layer").where(lambda t: t > 0)
    return _named(out, "1", f"share of {'real firms' if weight == 'firms' else 'employment'} by access layer")


def cut_off_share(ds: xr.Dataset, weight: str = "firms", by: str | None = None) -> xr.DataArray:
    """Share of each size class cut off: ``no_value`` + ``no_budget`` + ``priced_out`` +
    ``rationed`` (docs/model.md §7: eligible for a generation, but not buying all it would
    at the price); a v4 file has no ``no_value`` (its firms are in ``no_budget``). For the
    world, or per tier (``by="tier"``) or country (``by="country"``)."""
    shares = status_shares(ds, weight, by)
    out = shares.sel(status=[s for s in CUT_OFF if s in shares["status"].values]).sum("status")
    return _named(out, "1", "share of real firms cut off (no value, no budget, priced out or rationed)")


def clearing_prices(ds: xr.Dataset) -> xr.Dataset:
    """The clearing compute price per provider (``compute_price``, π_p) and the
    effective price per provider and class (``price``, NaN where a class bought nothing)."""
    return ds[["compute_price", "price"]]


def users_capped(ds: xr.Dataset) -> xr.DataArray:
    """Share of AI users (people) compute-capped each tick."""
    return ds["users_capped_share"]


def top20_share(ds: xr.Dataset) -> xr.DataArray:
    """Share of cumulative AI value held by the top 20% of firms that have used AI
    (weighted), as the run records it each tick."""
    return ds["top20_value_share"]


def capability(ds: xr.Dataset) -> xr.Dataset:
    """Frontier capability ``frontier_K`` per provider (with a boolean ``follower``
    coordinate from the scenario), the leaders' best ``K_lead`` and the best released
    ``released_frontier``; ``follower_gap`` is K_lead less the best follower's K."""
    f = followers(ds)
    out = ds[["frontier_K", "K_lead", "released_frontier"]]
    out = out.assign_coords(follower=("provider", [p in f for p in ds["provider"].values]))
    if f:
        gap = ds["K_lead"] - ds["frontier_K"].sel(provider=f).max("provider")
        out["follower_gap"] = _named(gap, ds["K_lead"].attrs.get("units", "K"), "K_lead less the best follower's K")
    return out


def lorenz_curve(value, weight, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lorenz curve of ``value``: the share of the total held by the poorest
    share ``x`` of the weight, at ``points`` evenly spaced ``x`` in [0, 1] (linear
    within each element, so it is exact at every element's edge)."""
    value, weight = np.asarray(value, float), np.asarray(weight, float)
    order = np.argsort(value, kind="stable")
    cw = np.concatenate([[0.0], np.cumsum(weight[order])])
    cv = np.concatenate([[0.0], np.cumsum(weight[order] * value[order])])
    x = np.linspace(0.0, 1.0, points)
    if cw[-1] <= 0 or cv[-1] <= 0:
        return x, np.full(points, np.nan)
    return x, np.interp(x, cw / cw[-1], cv / cv[-1])


def top_share(value, weight, fraction: float = 0.2) -> float:
    """Share of the weighted total held by the top ``fraction`` of the weight (the
    Lorenz curve's complement at 1 − fraction)."""
    value, weight = np.asarray(value, float), np.asarray(weight, float)
    order = np.argsort(value, kind="stable")
    cw = np.concatenate([[0.0], np.cumsum(weight[order])])
    cv = np.concatenate([[0.0], np.cumsum(weight[order] * value[order])])
    if cw[-1] <= 0 or cv[-1] <= 0:
        return float("nan")
    return float(1.0 - np.interp(1.0 - fraction, cw / cw[-1], cv / cv[-1]))


def firm_value_and_weight(path: str, snapshot: int = -1, min_employees: float = 0.0):
    """Cumulative AI value and weight (real firms per agent) of the firms that have used
    AI and have at least ``min_employees`` employees (250: the population of
    ``top20_value_share_large``), from one run file's firm snapshot, and the snapshot's
    tick; ``None`` if the run wrote no snapshots."""
    snaps = open_snapshots(path, "firms")
    if snaps is None:
        return None
    with snaps, open_run(path) as m:
        s = snaps.isel(snapshot=snapshot)
        value, weight = used_value_and_weight(s, m, min_employees)
        return value, weight, int(s["snapshot_tick"])


def used_value_and_weight(firms, metrics: xr.Dataset, min_employees: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative AI value and weight (real firms per agent) of the firms that have used AI
    and have at least ``min_employees`` employees, from the firm fields ``firms`` (field name
    to array: one snapshot of a run file, or ``cutoff.Simulation.firms`` in memory) and the
    run's metrics ``metrics`` (for the real firms each small agent stands for)."""
    flags = np.asarray(firms["flags"]).astype(np.int64)
    country = np.asarray(firms["country"]).astype(np.int64)
    if "band" in firms and "firms_per_band_agent" in metrics:  # (v5) a weight per size band of the small stratum
        bands = metrics["firms_per_band_agent"].isel(tick=0).values  # constant over a run
        small_weight = bands[country, np.asarray(firms["band"]).astype(np.int64)]
    else:
        small_weight = metrics["firms_per_small_agent"].values[country]
    weight = np.where(flags & FIRM_LARGE, 1.0, small_weight)
    used = ((flags & FIRM_USED_AI) != 0) & (np.asarray(firms["employees"]) >= min_employees)
    return np.asarray(firms["ai_value"])[used], weight[used]


def lorenz(ds: xr.Dataset, snapshot: int = -1, points: int = 101) -> xr.DataArray | None:
    """Lorenz curve of cumulative AI value over the firms that have used AI (weighted),
    from each run's firm snapshot ``snapshot`` (default the last), on ``points`` shares
    of firms: dims ``population_share`` and an ensemble's swept keys and ``replicate``.
    ``None`` if the output has no firm snapshots (``--snapshot-every 0``)."""
    files = run_files(ds)
    curves, ticks = np.empty(files.shape + (points,)), set()
    for idx in np.ndindex(files.shape):
        got = firm_value_and_weight(str(files.values[idx]), snapshot)
        if got is None:
            return None
        x, curves[idx] = lorenz_curve(got[0], got[1], points)
        ticks.add(got[2])
    da = xr.DataArray(curves, dims=files.dims + ("population_share",),
                      coords={**{d: files[d] for d in files.dims}, "population_share": x})
    da = _named(da, "1", "share of cumulative AI value held by the poorest share of firms that have used AI")
    da.attrs["tick"] = min(ticks)
    return da


def lorenz_of(firms, metrics: xr.Dataset, points: int = 101) -> xr.DataArray:
    """:func:`lorenz` of one run from its firm fields in memory instead of a snapshot:
    ``firms`` maps field names to arrays (``cutoff.Simulation.firms``) and ``metrics`` is the
    run's metrics up to now (``Simulation.metrics()``), whose last tick the fields are the
    state after (the curve's ``tick``, as a snapshot's)."""
    x, y = lorenz_curve(*used_value_and_weight(firms, metrics), points)
    da = xr.DataArray(y, dims=("population_share",), coords={"population_share": x})
    da = _named(da, "1", "share of cumulative AI value held by the poorest share of firms that have used AI")
    da.attrs["tick"] = int(metrics["tick"].values[-1])
    return da


def bands(da: xr.DataArray, dim: str = "replicate") -> xr.DataArray:
    """Quantiles :data:`QUANTILES` of ``da`` over ``dim`` (NaNs skipped), as a
    ``quantile`` dimension; ``da`` itself if it has no such dimension."""
    if dim not in da.dims:
        return da
    with warnings.catch_warnings():  # a quantity NaN in every replicate (a class that bought nothing)
        warnings.simplefilter("ignore", RuntimeWarning)
        q = da.quantile(list(QUANTILES), dim=dim, skipna=True)
    q.attrs = da.attrs
    return q
