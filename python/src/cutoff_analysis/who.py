"""Who is cut off, and why: shares of real firms by access layer or status, by tier,
country or income group and by size class, at a tick or over a window of ticks, and a
policy against its baseline (docs/model.md §7 and its v5 section).

The shares are those of :func:`~cutoff_analysis.analysis.status_shares` and
:func:`~cutoff_analysis.analysis.access_layers`: real firms (``firms_by_status``, which
the run already weights by each agent's real firms, per size band where ``size_strata``
is on) or their employment, within each size class, plus the size class ``"all"`` (every
firm of the group). Over a window each tick's share counts once (the mean of the ticks'
shares). A policy against its baseline: for two ensembles the paired differences of
:func:`~cutoff_analysis.compare.compare` (member k against member k) with their 95%
intervals; for two runs the difference alone.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .analysis import ACCESS_LAYERS, CUT_OFF, INCOME_GROUPS, TIERS, _by_status, _named, _to_layers
from .compare import compare

#: The size class that holds every firm of a group (added after the OECD's four).
ALL_SIZES = "all"
#: The groups of ``by="tier"`` and ``by="income_group"``, in order.
GROUPS = {"tier": TIERS, "income_group": INCOME_GROUPS}
#: What a share is split into: the access layer (api, seats, none) or the status.
VIEWS = ("layer", "status")


def tick_label(ticks) -> str:
    """Words for a tick selection of :func:`window`, for titles and tables."""
    if isinstance(ticks, slice):
        return f"ticks {ticks.start}-{ticks.stop} (mean)"
    if isinstance(ticks, (list, tuple, np.ndarray)):
        t = [int(x) for x in ticks]
        if len(t) == 1:
            return f"tick {t[0]}"
        if t == list(range(t[0], t[-1] + 1)):
            return f"ticks {t[0]}-{t[-1]} (mean)"
        return "ticks " + ", ".join(map(str, t)) + " (mean)"
    return f"tick {int(ticks)}"


def resolve_ticks(ds: xr.Dataset, ticks=None) -> list[int]:
    """The ticks a selection names, checked against ``ds``: ``None`` the last tick, an int
    that tick, ``(a, b)`` or ``slice(a, b)`` every tick from a to b (both included), a
    list those ticks. Raises ``ValueError`` naming the ticks ``ds`` holds."""
    have = [int(t) for t in ds["tick"].values]
    if ticks is None:
        return [have[-1]]
    if isinstance(ticks, slice):
        ticks = (ticks.start if ticks.start is not None else have[0], ticks.stop if ticks.stop is not None else have[-1])
        if ticks[0] > ticks[1]:
            raise ValueError(f"ticks {ticks[0]}:{ticks[1]}: the first is after the last")
        want = list(range(int(ticks[0]), int(ticks[1]) + 1))
    elif isinstance(ticks, tuple) and len(ticks) == 2:
        return resolve_ticks(ds, slice(*ticks))
    elif isinstance(ticks, (list, tuple, np.ndarray)):
        want = [int(t) for t in ticks]
    else:
        want = [int(ticks)]
    missing = [t for t in want if t not in have]
    if not want or missing:
        raise ValueError(f"tick {missing[0] if missing else '(none)'} is not in the output: it holds ticks "
                         f"{have[0]}-{have[-1]}")
    return want


def window(da: xr.DataArray, ticks: list[int]) -> xr.DataArray:
    """``da`` at one tick, or its mean over several (NaNs skipped), without ``tick``."""
    out = da.sel(tick=ticks).mean("tick", skipna=True, keep_attrs=True)
    out.attrs["ticks"] = tick_label(ticks)
    return out


def _with_all_sizes(da: xr.DataArray) -> xr.DataArray:
    every = da.sum("size_class").expand_dims(size_class=[ALL_SIZES])
    return xr.concat([da, every], dim="size_class")


def firm_counts(ds: xr.Dataset, by: str | None = "tier", view: str = "layer", weight: str = "firms") -> xr.DataArray:
    """Real firms (or their employment) in each access layer (``view="layer"``) or status
    (``"status"``) and size class (with ``"all"``), per ``by`` (``None`` the world,
    ``"tier"``, ``"income_group"`` or ``"country"``), over time."""
    if view not in VIEWS:
        raise ValueError(f"view={view!r}: allowed {', '.join(map(repr, VIEWS))}")
    name = {"firms": "firms_by_status", "employment": "employment_by_status"}.get(weight)
    if name in ds:
        ds[name].load()  # once, in place: grouping a lazily read ensemble rereads the file per group
    da = _by_status(ds, weight, by)
    if by in GROUPS:  # every tier and income group, those without a country too (their shares NaN)
        da = da.reindex({by: list(GROUPS[by])}, fill_value=0.0)
    if view == "layer":
        da = _to_layers(da)
    return _with_all_sizes(da)


def who_is_cut_off(ds: xr.Dataset, by: str | None = "tier", view: str = "layer", ticks=None,
                   weight: str = "firms") -> xr.DataArray:
    """Share of real firms (``weight="firms"``) or of employment in each access layer
    (``view="layer"``: api, seats, none) or status (``"status"``), within each size class
    and the size class ``"all"``, per ``by`` (None: the world; ``"tier"``,
    ``"income_group"``, ``"country"``), at ``ticks`` (None the last; an int; ``(a, b)``
    a window whose ticks' shares are averaged; a list). Keeps an ensemble's
    ``replicate`` and swept keys. The shares of a size class sum to 1 over the layer or
    status (NaN where the group has no firm of that size)."""
    counts = firm_counts(ds, by, view, weight)
    shares = counts / counts.sum(view).where(lambda t: t > 0)
    sel = resolve_ticks(ds, ticks)
    what = "real firms" if weight == "firms" else "employment"
    return _named(window(shares, sel), "1", f"share of {what} by access {view}").assign_attrs(ticks=tick_label(sel))


def cut_off(shares: xr.DataArray) -> xr.DataArray:
    """The share cut off (``CUT_OFF``: no value, no budget, priced out, rationed) from
    status shares of :func:`who_is_cut_off` (``view="status"``)."""
    present = [s for s in CUT_OFF if s in shares["status"].values]
    return _named(shares.sel(status=present).sum("status", min_count=1), "1", "share of real firms cut off")


def real_firms(ds: xr.Dataset, by: str | None = "tier", ticks=None) -> xr.DataArray:
    """Real firms per group and size class (with ``"all"``) at ``ticks`` (mean over a
    window and over an ensemble's replicates)."""
    n = window(firm_counts(ds, by, "layer").sum("layer"), resolve_ticks(ds, ticks))
    return _named(n.mean("replicate") if "replicate" in n.dims else n, "firms", "real firms")


def _kind(ds: xr.Dataset) -> str:
    return "ensemble" if "replicate" in ds.dims else "run"


def _changes(baseline: xr.Dataset, policy: xr.Dataset, measure, sel: list[int], level: float) -> xr.Dataset:
    """``measure`` (a function of one output) of the baseline and the policy and their
    difference: paired over replicates for two ensembles (``compare``), alone for two runs."""
    kinds = _kind(baseline), _kind(policy)
    if kinds[0] != kinds[1]:
        raise ValueError(f"the baseline is {'an' if kinds[0] == 'ensemble' else 'a'} {kinds[0]} and the policy "
                         f"{'an' if kinds[1] == 'ensemble' else 'a'} {kinds[1]}: compare two runs or two ensembles")
    if kinds[0] == "ensemble" and not np.array_equal(baseline["replicate"].values, policy["replicate"].values):
        raise ValueError(f"the policy holds replicates {policy['replicate'].values.tolist()}, the baseline "
                         f"{baseline['replicate'].values.tolist()}: pair the same ones (the same --replicates and seed)")
    try:
        b, p = xr.align(measure(baseline), measure(policy), join="exact")
    except ValueError as e:
        raise ValueError(f"the baseline and the policy do not hold the same groups or classes ({e})") from None
    if kinds[0] == "ensemble":
        res = compare({"baseline": baseline, "policy": policy}, measure, level=level).sel(scenario="policy", drop=True)
        res["policy"] = p.mean("replicate")
        res = res[["baseline", "policy", "effect", "lo", "hi", "n", "se_paired", "se_unpaired"]]
    else:
        nan = xr.full_like(p - b, np.nan)
        res = xr.Dataset({"baseline": b, "policy": p, "effect": p - b, "lo": nan, "hi": nan,
                          "n": xr.ones_like(b, dtype=int)})
    for name in ("baseline", "policy", "effect", "lo", "hi"):
        res[name].attrs = {"units": "1", "long_name": b.attrs.get("long_name", "")
                           + (" (policy - baseline)" if name in ("effect", "lo", "hi") else "")}
    res.attrs = {"ticks": tick_label(sel), "level": level, "paired": kinds[0] == "ensemble"}
    if kinds[0] == "ensemble":
        res.attrs["replicates"] = int(baseline.sizes["replicate"])
    return res


def who_changes(baseline: xr.Dataset, policy: xr.Dataset, by: str | None = "tier", view: str = "layer", ticks=None,
                weight: str = "firms", level: float = 0.95) -> xr.Dataset:
    """A policy against its baseline: the shares of :func:`who_is_cut_off` in each, and
    ``effect`` = policy − baseline. Two ensembles (the same replicates, member k paired
    with member k): ``baseline`` and ``policy`` are means over replicates, ``effect`` the
    mean paired difference with its ``level`` interval ``lo``-``hi`` and ``n`` pairs
    (:func:`~cutoff_analysis.compare.compare`). Two runs: the difference, ``lo``/``hi``
    NaN and ``n`` = 1. The ticks must be in both (``ValueError`` otherwise, as for a run
    against an ensemble or for different countries or size classes)."""
    sel = resolve_ticks(baseline, ticks)
    resolve_ticks(policy, sel)
    res = _changes(baseline, policy, lambda ds: who_is_cut_off(ds, by, view, sel, weight), sel, level)
    res.attrs.update({"view": view, "by": str(by), "weight": weight})
    return res


def cut_off_changes(baseline: xr.Dataset, policy: xr.Dataset, by: str | None = "tier", ticks=None,
                    weight: str = "firms", level: float = 0.95) -> xr.Dataset:
    """As :func:`who_changes` for the share cut off (:func:`cut_off`: no value, no
    budget, priced out or rationed) of each size class and ``all``."""
    sel = resolve_ticks(baseline, ticks)
    resolve_ticks(policy, sel)
    res = _changes(baseline, policy, lambda ds: cut_off(who_is_cut_off(ds, by, "status", sel, weight)), sel, level)
    res.attrs.update({"view": "cut_off", "by": str(by), "weight": weight})
    return res


def change_table(changes: xr.Dataset) -> pd.DataFrame:
    """The Dataset of :func:`who_changes` as a tidy table: one row per group, size class
    and layer or status, columns baseline, policy, effect, lo, hi, n."""
    cols = [c for c in ("baseline", "policy", "effect", "lo", "hi", "n") if c in changes]
    df = changes[cols].to_dataframe()
    keep = [c for c in df.columns if c in cols]
    return df[keep].reset_index()


def country_table(baseline: xr.Dataset, policy: xr.Dataset, ticks=None, top: int | None = 10, layer: str = "none",
                  size_class: str = ALL_SIZES, weight: str = "firms", level: float = 0.95) -> pd.DataFrame:
    """The countries whose share of real firms on ``layer`` (default ``"none"``: without
    access) of ``size_class`` (default every size) changes most under the policy, largest
    change (in absolute value) first; ``top=None`` every country with firms. Columns:
    country, tier, income_group, real firms (the baseline's), baseline, policy, change,
    lo, hi (its paired interval; NaN for two runs)."""
    ch = who_changes(baseline, policy, by="country", view="layer", ticks=ticks, weight=weight, level=level)
    cell = ch.sel(layer=layer, size_class=size_class)
    firms = real_firms(baseline, "country", resolve_ticks(baseline, ticks)).sel(size_class=size_class)
    df = pd.DataFrame({
        "country": cell["country"].values,
        "tier": cell["tier"].values if "tier" in cell.coords else np.nan,
        "income_group": cell["income_group"].values if "income_group" in cell.coords else "",
        "real_firms": firms.reindex(country=cell["country"]).values,
        "baseline": cell["baseline"].values,
        "policy": cell["policy"].values,
        "change": cell["effect"].values,
        "lo": cell["lo"].values,
        "hi": cell["hi"].values,
    })
    df = df[df["real_firms"] > 0].dropna(subset=["change"])
    df = df.assign(_order=-df["change"].abs()).sort_values(["_order", "country"], kind="stable").drop(columns="_order")
    df = df.reset_index(drop=True)
    df.attrs = {"ticks": ch.attrs["ticks"], "layer": layer, "size_class": size_class, "paired": ch.attrs["paired"]}
    return df.head(top) if top is not None else df


def headline(baseline: xr.Dataset, policy: xr.Dataset, ticks=None, weight: str = "firms", level: float = 0.95) -> dict:
    """The numbers a "who is cut off, and why" summary states, each computed here:
    ``none_base``/``none_policy``/``none_change`` (``_lo``, ``_hi``): the world's share of
    real firms without access (every size); ``api_*`` and ``seats_*`` the same for those
    layers; ``cut_off_*`` the world's share cut off (``CUT_OFF``: no value, no budget,
    priced out, rationed); ``most``: (tier, size class, change, lo, hi) of the largest
    change in the share without access over tiers and the OECD size classes;
    ``reasons_base``/``reasons_policy``: (status, its share of the world's firms without
    access) for each status of the layer none, commonest first."""
    world = who_changes(baseline, policy, None, "layer", ticks, weight, level).sel(size_class=ALL_SIZES)
    out = {"ticks": world.attrs["ticks"], "paired": world.attrs["paired"]}
    for layer in ACCESS_LAYERS:
        c = world.sel(layer=layer)
        out.update({f"{layer}_base": float(c["baseline"]), f"{layer}_policy": float(c["policy"]),
                    f"{layer}_change": float(c["effect"]), f"{layer}_lo": float(c["lo"]), f"{layer}_hi": float(c["hi"])})
    tiers = who_changes(baseline, policy, "tier", "layer", ticks, weight, level).sel(layer="none")
    tiers = tiers.sel(size_class=[s for s in tiers["size_class"].values if s != ALL_SIZES])
    eff = tiers["effect"].fillna(0.0)
    i = np.unravel_index(int(np.abs(eff.values).argmax()), eff.shape)
    at = dict(zip(eff.dims, i))
    cell = tiers.isel(at)
    out["most"] = (int(cell["tier"]), str(cell["size_class"].values), float(cell["effect"]), float(cell["lo"]),
                   float(cell["hi"]))
    cut = cut_off_changes(baseline, policy, None, ticks, weight, level).sel(size_class=ALL_SIZES)
    out.update({"cut_off_base": float(cut["baseline"]), "cut_off_policy": float(cut["policy"]),
                "cut_off_change": float(cut["effect"]), "cut_off_lo": float(cut["lo"]), "cut_off_hi": float(cut["hi"])})
    status = who_changes(baseline, policy, None, "status", ticks, weight, level).sel(size_class=ALL_SIZES)
    none = [s for s in ACCESS_LAYERS["none"] if s in status["status"].values]
    for key, name in (("base", "baseline"), ("policy", "policy")):
        s = status[name].sel(status=none)
        total = float(s.sum())
        share = {str(k): float(v) / total if total > 0 else float("nan") for k, v in zip(s["status"].values, s.values)}
        out[f"reasons_{key}"] = sorted(share.items(), key=lambda kv: (-np.nan_to_num(kv[1]), kv[0]))
    return out
