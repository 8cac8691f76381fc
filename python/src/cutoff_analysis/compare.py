"""Paired comparisons of scenarios against a baseline, over the replicates of ensembles
(docs/model.md §3: member k of every scenario's ensemble shares its random draws).

An ensemble run with the same ``--replicates`` (and seed) for each scenario pairs
member k of every scenario with member k of the baseline: the draws that a scenario
does not change are the same, so the difference per replicate carries much less noise
than the difference of two means. :func:`compare` gives both intervals, so the gain is
measured, not assumed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr
from scipy import stats

from .analysis import access_layers, cut_off_share

#: Ready measures for :func:`compare` (each a function of one ensemble's Dataset).
MEASURES: dict[str, Callable[[xr.Dataset], xr.DataArray]] = {
    "cut_off_share": cut_off_share,
    "cut_off_share_by_tier": lambda ds: cut_off_share(ds, by="tier"),
    "access_layers_by_tier": lambda ds: access_layers(ds, by="tier"),
    "access_layers_by_country": lambda ds: access_layers(ds, by="country"),
    "users_capped_share": lambda ds: ds["users_capped_share"],
    "compute_price": lambda ds: ds["compute_price"],
}


def _measure(m: str | Callable[[xr.Dataset], xr.DataArray]) -> Callable[[xr.Dataset], xr.DataArray]:
    if callable(m):
        return m
    if m in MEASURES:
        return MEASURES[m]
    return lambda ds: ds[m]


def compare(runs: Mapping[str, xr.Dataset], measure: str | Callable[[xr.Dataset], xr.DataArray],
            ticks=None, level: float = 0.95) -> xr.Dataset:
    """Each scenario of ``runs`` against the first (the baseline), paired over replicates.

    ``runs`` maps scenario names to ensembles (``open_ensemble``), the baseline first;
    each must hold the same replicates. ``measure`` is a metric name, a key of
    :data:`MEASURES`, or a function of one ensemble returning a DataArray with a
    ``replicate`` dimension (and any others: tick, country, tier, size class, layer…,
    which the result keeps). ``ticks`` selects ticks (default: all).

    Returns a Dataset over ``scenario`` (the others) and the measure's dimensions:
    ``baseline`` (the baseline's mean), ``effect`` (mean of scenario − baseline per
    replicate), ``lo`` and ``hi`` (its ``level`` interval, Student t over the pairs),
    ``se_paired`` and ``se_unpaired`` (the standard error of the effect from the pairs,
    and the one two independent ensembles of the same size would give), and
    ``n`` (pairs). Where a pair holds a NaN it is left out of that cell's statistics.
    """
    names = list(runs)
    if len(names) < 2:
        raise ValueError(f"compare: needs a baseline and at least one scenario, got {names}")
    f = _measure(measure)
    base_ds = runs[names[0]]
    base = f(base_ds)
    if "replicate" not in base.dims:
        raise ValueError("compare: the measure has no 'replicate' dimension (pass ensembles: open_ensemble)")
    if ticks is not None:
        base = base.sel(tick=ticks)
    out = []
    for name in names[1:]:
        other = f(runs[name])
        if ticks is not None:
            other = other.sel(tick=ticks)
        if not np.array_equal(other["replicate"].values, base["replicate"].values):
            raise ValueError(f"compare: scenario '{name}' holds replicates {other['replicate'].values.tolist()}, "
                             f"the baseline '{names[0]}' {base['replicate'].values.tolist()}: pair the same ones")
        b, o = xr.align(base, other, join="exact")
        d = o - b
        ok = d.notnull()
        n = ok.sum("replicate")
        mean = d.mean("replicate")
        sd = d.std("replicate", ddof=1)
        se_p = sd / np.sqrt(n)
        nb, no = b.notnull().sum("replicate"), o.notnull().sum("replicate")
        se_u = np.sqrt(b.var("replicate", ddof=1) / nb + o.var("replicate", ddof=1) / no)
        t = xr.apply_ufunc(lambda k: stats.t.ppf(0.5 + level / 2, np.maximum(k - 1, 1)), n)
        half = (t * se_p).where(n > 1)
        out.append(xr.Dataset({
            "baseline": b.mean("replicate"),
            "effect": mean,
            "lo": mean - half,
            "hi": mean + half,
            "se_paired": se_p,
            "se_unpaired": se_u,
            "n": n,
        }).expand_dims(scenario=[name]))
    res = xr.concat(out, dim="scenario")
    res.attrs.update({"baseline_scenario": names[0], "level": level,
                      "description": "scenario - baseline per replicate: mean and Student t interval over the pairs"})
    return res


def interval_gain(res: xr.Dataset) -> float:
    """How much narrower the paired intervals are than unpaired ones would be: the median,
    over every cell with a finite, non-zero unpaired error, of se_unpaired / se_paired."""
    r = (res["se_unpaired"] / res["se_paired"]).values.ravel()
    r = r[np.isfinite(r) & (r > 0)]
    return float(np.median(r)) if r.size else float("nan")
