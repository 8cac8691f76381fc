"""Figures for the helpers of :mod:`cutoff_analysis.analysis`.

Each ``plot_*`` takes one Dataset (a run or an ensemble) or a mapping ``{label:
Dataset}`` to compare scenarios, and returns a matplotlib Figure with labelled axes and
units. One Dataset: one axes, a line per category (income group, tier, provider).
Several: a panel per category, a line per scenario. Where the input is an ensemble the
line is the median over replicates with 25-75% and 5-95% bands; an ensemble's swept
keys give one line per swept value.
"""
from __future__ import annotations

import itertools
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from . import analysis as an
from .io import calib_tick

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
LINESTYLES = ("-", "--", ":", "-.")


def _as_mapping(data) -> dict:
    return {None: data} if isinstance(data, xr.Dataset) else dict(data)


def _units(attrs) -> str:
    u = attrs.get("units", "")
    return "share, 0-1" if u == "1" else u


def _ylabel(name: str, attrs) -> str:
    return f"{name} [{_units(attrs)}]"


def _xlabel(ds: xr.Dataset) -> str:
    if "date" in ds.coords and ds.sizes.get("tick", 0):
        return f"tick [months from {np.datetime_as_string(ds['date'].values[0], unit='M')}]"
    return "tick [months]"


def series(da: xr.DataArray, keep):
    """(label, part) for each combination of the dims of ``da`` outside ``keep``."""
    other = [d for d in da.dims if d not in keep]
    if not other:
        yield "", da
        return
    for values in itertools.product(*(da[d].values for d in other)):
        sel = dict(zip(other, values))
        yield ", ".join(f"{d}={v:g}" if isinstance(v, (float, np.floating)) else f"{d}={v}" for d, v in sel.items()), da.sel(sel)


def _draw(ax, da: xr.DataArray, x: str, label: str, color, **kw):
    """A line over ``x``; with a ``replicate`` dim the median and its bands. Dims beyond
    those (an ensemble's swept keys) give one line each, told apart by line style."""
    for k, (suffix, part) in enumerate(series(da, (x, "replicate"))):
        name = ", ".join(s for s in (label, suffix) if s) or None
        style = {"ls": LINESTYLES[k % len(LINESTYLES)], **kw} if suffix else kw
        xs = part[x].values
        if "replicate" in part.dims:
            q = an.bands(part)
            ax.fill_between(xs, q.sel(quantile=0.05), q.sel(quantile=0.95), color=color, alpha=0.12, lw=0)
            ax.fill_between(xs, q.sel(quantile=0.25), q.sel(quantile=0.75), color=color, alpha=0.25, lw=0)
            ax.plot(xs, q.sel(quantile=0.5), color=color, label=name, **style)
        else:
            ax.plot(xs, part.values, color=color, label=name, **style)


def _band_note(results) -> str:
    ens = any("replicate" in r.dims and r.sizes["replicate"] > 1 for r in results.values())
    return " (median, 25-75% and 5-95% of replicates)" if ens else ""


def _mark_calib(ax, data: dict):
    ticks = {calib_tick(ds) for ds in data.values()} - {None}
    for t in ticks:
        ax.axvline(t, color="0.5", ls=":", lw=1)
        ax.annotate(" calibration tick", (t, 0), xycoords=("data", "axes fraction"), va="bottom", ha="right",
                    fontsize=7, color="0.4", rotation=90)


def _by_category(data, helper: Callable, cat: str | None, title: str, ylabel: str, calib: bool = False,
                 styles: Callable = None) -> plt.Figure:
    """One axes with a line per ``cat`` value (one Dataset) or a panel per ``cat``
    value with a line per scenario (several); ``cat=None``: one axes, a line per scenario."""
    data = _as_mapping(data)
    results = {k: helper(ds) for k, ds in data.items()}
    first_ds, first = next(iter(data.values())), next(iter(results.values()))
    cats = list(first[cat].values) if cat else [None]
    single = list(data) == [None]
    if single or cat is None:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        axes = {c: ax for c in cats}
    else:
        n = len(cats)
        cols = 2 if n == 4 else min(n, 3)
        fig, grid = plt.subplots((n + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.4 * ((n + cols - 1) // cols)),
                                 sharex=True, sharey=True, squeeze=False)
        axes = dict(zip(cats, grid.flat))
        for ax in list(grid.flat)[n:]:
            ax.set_visible(False)
    for j, (label, r) in enumerate(results.items()):
        for i, c in enumerate(cats):
            part = r.sel({cat: c}) if cat else r
            color = COLORS[(i if single else j) % len(COLORS)]
            name = str(c) if single and cat else label
            kw = styles(c) if styles else {}
            _draw(axes[c], part, "tick", name, color, **kw)
    used = list(dict.fromkeys(axes.values()))
    for c, ax in axes.items():
        if not single and cat:
            ax.set_title(f"{cat.replace('_', ' ')} {c}", fontsize=9)
    for ax in used:
        ax.grid(alpha=0.3)
        if calib:
            _mark_calib(ax, data)
    for ax in used:
        if ax.get_subplotspec().is_last_row() or len(used) == 1:
            ax.set_xlabel(_xlabel(first_ds))
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel)
    if used[0].get_legend_handles_labels()[1]:
        used[0].legend(fontsize=8, title=(cat.replace("_", " ") if single and cat else None), title_fontsize=8)
    fig.suptitle(title + _band_note(results), fontsize=10)
    fig.tight_layout()
    return fig


def plot_adoption(data, by: str = "income_group") -> plt.Figure:
    """Population-weighted share of people using AI by income group or tier over time."""
    ds = next(iter(_as_mapping(data).values()))
    return _by_category(data, lambda d: an.adoption_by(d, by), by,
                        f"AI adoption by {by.replace('_', ' ')} (population-weighted)",
                        _ylabel("share of people using AI", ds["adoption_share"].attrs), calib=True)


def plot_access_gap(data) -> plt.Figure:
    """Population-weighted access gap by tier over time."""
    ds = next(iter(_as_mapping(data).values()))
    return _by_category(data, an.access_gap_by_tier, "tier", "Access gap by tier (population-weighted)",
                        _ylabel("best released K less K accessed", ds["access_gap"].attrs))


def plot_users_capped(data) -> plt.Figure:
    """Share of AI users compute-capped over time."""
    ds = next(iter(_as_mapping(data).values()))
    return _by_category(data, an.users_capped, None, "AI users compute-capped",
                        _ylabel("share of AI users capped", ds["users_capped_share"].attrs), calib=True)


def plot_top20(data) -> plt.Figure:
    """Top-20% share of cumulative AI value over time (the run's metric)."""
    ds = next(iter(_as_mapping(data).values()))
    return _by_category(data, an.top20_share, None, "AI value held by the top 20% of firms that have used AI",
                        _ylabel("top-20% share of AI value", ds["top20_value_share"].attrs), calib=True)


def plot_capability(data) -> plt.Figure:
    """Frontier capability K per provider (followers dashed) and the leaders' K_lead."""
    mapping = _as_mapping(data)
    ds = next(iter(mapping.values()))
    units = ds["frontier_K"].attrs
    if list(mapping) != [None]:
        return _by_category(data, lambda d: an.capability(d)["frontier_K"], "provider",
                            "Frontier capability K by provider", _ylabel("capability K", units))
    cap = an.capability(ds)
    fig = _by_category(ds, lambda d: cap["frontier_K"], "provider", "Frontier and follower capability",
                       _ylabel("capability K", units),
                       styles=lambda p: {"ls": "--"} if bool(cap["follower"].sel(provider=p)) else {})
    ax = fig.axes[0]
    _draw(ax, cap["K_lead"], "tick", "K_lead (leaders' best)", "k", lw=1)
    _draw(ax, cap["released_frontier"], "tick", "released frontier", "0.6", lw=1, ls=":")
    ax.legend(fontsize=8, title="provider (dashed: follower)", title_fontsize=8)
    return fig


def _log_prices(ax) -> None:
    """Prices on a log axis, so that a spike (first-resort's π_rest, a moratorium's US
    price) does not flatten every other line: where the axes hold positive values."""
    ys = [y for line in ax.get_lines() for y in np.asarray(line.get_ydata(), dtype=float).ravel()]
    if any(np.isfinite(y) and y > 0 for y in ys):
        ax.set_yscale("log")


def plot_prices(data) -> plt.Figure:
    """Clearing compute price per provider and, for one Dataset, the effective price per
    provider in each class; for several, the compute price per provider by scenario."""
    mapping = _as_mapping(data)
    ds = next(iter(mapping.values()))
    if list(mapping) != [None]:
        fig = _by_category(data, lambda d: an.clearing_prices(d)["compute_price"], "provider",
                           "Clearing compute price by provider (log scale)", _ylabel("π_p", ds["compute_price"].attrs))
        for ax in fig.axes:
            _log_prices(ax)
        return fig
    prices = an.clearing_prices(ds)
    classes = list(ds["class"].values)
    panels = [("compute price π_p", prices["compute_price"], prices["compute_price"].attrs)]
    panels += [(f"class {k}", prices["price"].sel({"class": k}), prices["price"].attrs) for k in classes]
    rows = (len(panels) + 3) // 4
    fig, grid = plt.subplots(rows, 4, figsize=(15, 3.3 * rows), squeeze=False)
    for ax, (title, da, attrs) in zip(grid.flat, panels):
        for i, p in enumerate(ds["provider"].values):
            _draw(ax, da.sel(provider=p), "tick", str(p), COLORS[i % len(COLORS)])
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(_ylabel("price", attrs), fontsize=8)
        if da.isnull().all():
            ax.text(0.5, 0.5, "nothing bought (NaN)", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_xlabel(_xlabel(ds), fontsize=8)
        ax.grid(alpha=0.3)
        _log_prices(ax)
    for ax in list(grid.flat)[len(panels):]:
        ax.set_visible(False)
    grid.flat[0].legend(fontsize=8, title="provider", title_fontsize=8)
    fig.suptitle("Clearing prices by provider and class (log scale)" + _band_note({0: prices["price"]}), fontsize=10)
    fig.tight_layout()
    return fig


def plot_cut_off(data, weight: str = "firms") -> plt.Figure:
    """Who is cut off (docs/model.md §7): for one Dataset, the share of real firms in each
    access status over time, one panel per size class; for several, the share cut off
    (no value, no budget, priced out or rationed) by size class, a line per scenario."""
    mapping = _as_mapping(data)
    ds = next(iter(mapping.values()))
    if list(mapping) != [None]:
        return _by_category(data, lambda d: an.cut_off_share(d, weight), "size_class",
                            "Firms cut off (no value, no budget, priced out or rationed), by size class",
                            "share of real firms [share, 0-1]")
    shares = an.status_shares(ds, weight)
    classes = list(shares["size_class"].values)
    fig, grid = plt.subplots(2, 2, figsize=(9.5, 6.4), sharex=True, sharey=True)
    for ax, sc in zip(grid.flat, classes):
        for i, st in enumerate(shares["status"].values):
            _draw(ax, shares.sel(size_class=sc, status=st), "tick", str(st), COLORS[i % len(COLORS)])
        ax.set_title(f"{sc} employees", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in grid[-1]:
        ax.set_xlabel(_xlabel(ds))
    for ax in grid[:, 0]:
        ax.set_ylabel(f"share of {'real firms' if weight == 'firms' else 'employment'} [share, 0-1]")
    grid.flat[0].legend(fontsize=7, title="status", title_fontsize=7)
    fig.suptitle("Who is cut off: access status by firm size" + _band_note({0: shares}), fontsize=10)
    fig.tight_layout()
    return fig


def plot_lorenz(data, snapshot: int = -1) -> plt.Figure | None:
    """Lorenz curve of cumulative AI value over the firms that have used AI, at a firm
    snapshot, with the top-20% share marked; ``None`` if no input has snapshots. An input
    may also be a curve already made (:func:`~cutoff_analysis.analysis.lorenz_of`)."""
    data = {None: data} if isinstance(data, xr.DataArray) else _as_mapping(data)
    curves = {k: ds if isinstance(ds, xr.DataArray) else an.lorenz(ds, snapshot) for k, ds in data.items()}
    curves = {k: c for k, c in curves.items() if c is not None}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":", label="equality")
    for j, (label, c) in enumerate(curves.items()):
        med = an.bands(c).sel(quantile=0.5, drop=True) if "replicate" in c.dims else c
        name = label or ""
        if med.dims == ("population_share",):
            top = 1 - float(med.interp(population_share=0.8))
            name = f"{name + ': ' if name else ''}top 20% hold {top:.0%}"
        _draw(ax, c, "population_share", f"{name} (tick {c.attrs['tick']})", COLORS[j % len(COLORS)])
    ax.axvline(0.8, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("share of firms that have used AI, poorest first [share, 0-1, weighted]")
    ax.set_ylabel("share of cumulative AI value [share, 0-1]")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Lorenz curve of AI value" + _band_note(curves), fontsize=10)
    fig.tight_layout()
    return fig


#: Colours of the access layers and statuses in :func:`plot_who_is_cut_off`: greens on the
#: API, blues on seats, reds and oranges cut off, greys outside (no generation, not adopted).
LAYER_COLORS = {"api": "#1a9850", "seats": "#4575b4", "none": "#d73027"}
STATUS_COLORS = {"served": "#1a9850", "budget_bound": "#66bd63", "rationed": "#a6d96a", "seats": "#4575b4",
                 "seats_capped": "#91bfdb", "priced_out": "#f46d43", "no_budget": "#d73027", "no_value": "#fee08b",
                 "no_access": "#4d4d4d", "not_adopted": "#bababa"}
#: Bottom to top in the stacked bars: served first, cut off above, outside the market on top.
STATUS_ORDER = ("served", "budget_bound", "rationed", "seats", "seats_capped", "priced_out", "no_budget", "no_value",
                "no_access", "not_adopted")


def plot_who_is_cut_off(baseline: xr.Dataset, policy: xr.Dataset | None = None, labels=("baseline", "policy"),
                        by: str | None = "tier", view: str = "layer", ticks=None, weight: str = "firms") -> plt.Figure:
    """Who is cut off at a glance: for each ``by`` group (tier, income group; None the
    world) a panel with a stacked bar per size class (and ``all``) of the share of real
    firms on each access layer (``view="layer"``: api, seats, none) or in each status
    (``"status"``); with a ``policy``, its bar beside the baseline's (hatched), and above
    each pair the change in the share without access (``"layer"``) or cut off
    (``"status"``) in percentage points, bold where the paired 95% interval of two
    ensembles excludes 0. At ``ticks`` (see :func:`~cutoff_analysis.who.who_is_cut_off`;
    default the last tick); an ensemble's bars are means over replicates."""
    from . import who

    if policy is not None:
        ch = who.who_changes(baseline, policy, by, view, ticks, weight)
        parts = {labels[0]: ch["baseline"], labels[1]: ch["policy"]}
        cut = who.cut_off_changes(baseline, policy, by, ticks, weight) if view == "status" else None
    else:
        s = who.who_is_cut_off(baseline, by, view, ticks, weight)
        parts = {labels[0]: s.mean("replicate") if "replicate" in s.dims else s}
        ch = None
    first = next(iter(parts.values()))
    extra = [d for d in first.dims if d not in (by, "size_class", view)]
    if extra:
        raise ValueError(f"plot_who_is_cut_off: one point at a time; select the swept keys {extra} first")
    cats = list(first[view].values)
    if view == "status":
        used = [c for c in STATUS_ORDER if c in cats and any(float(p.sel(status=c).max()) > 0 for p in parts.values())]
        cats = used + [c for c in cats if c not in STATUS_ORDER]
    colors = {**LAYER_COLORS, **STATUS_COLORS} if view == "layer" else STATUS_COLORS
    groups = list(first[by].values) if by else [None]
    sizes = list(first["size_class"].values)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(3.6 * len(groups), 5.5) + 1.8, 4.8), sharey=True,
                             squeeze=False)
    width = 0.8 / len(parts)
    for ax, g in zip(axes[0], groups):
        x = np.arange(len(sizes))
        for j, (label, p) in enumerate(parts.items()):
            part = p.sel({by: g}) if by else p
            pos = x - 0.4 + width * (j + 0.5)
            bottom = np.zeros(len(sizes))
            for c in cats:
                h = np.nan_to_num(part.sel({view: c}).sel(size_class=sizes).values.astype(float))
                ax.bar(pos, h, width * 0.95, bottom=bottom, color=colors.get(c, "0.7"), hatch="//" if j else None,
                       edgecolor="white" if j else None, linewidth=0, label=str(c) if j == 0 else None)
                bottom += h
        if ch is not None:
            cell = ch.sel({by: g}) if by else ch
            if view == "layer":
                eff, lo, hi = (cell[k].sel(layer="none") for k in ("effect", "lo", "hi"))
            else:
                eff, lo, hi = (cut[k].sel({by: g}) if by else cut[k] for k in ("effect", "lo", "hi"))
            for i, sc in enumerate(sizes):
                e = float(eff.sel(size_class=sc))
                if np.isfinite(e):
                    sure = bool(float(lo.sel(size_class=sc)) > 0 or float(hi.sel(size_class=sc)) < 0)
                    ax.text(i, 1.02, f"{100 * e:+.1f}", ha="center", va="bottom", fontsize=7,
                            fontweight="bold" if sure else "normal")
        ax.set_xticks(np.arange(len(sizes)), sizes)
        ax.set_xlabel("firm size [employees]")
        ax.set_ylim(0, 1.1)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.grid(axis="y", alpha=0.3)
        ax.set_title("world" if g is None else f"{by.replace('_', ' ')} {g}", fontsize=9)
    axes[0][0].set_ylabel(f"share of {'real firms' if weight == 'firms' else 'employment'} [share, 0-1]")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles[::-1], names[::-1], title=f"access {view}", fontsize=7, title_fontsize=7, loc="center right")
    ticks_txt = first.attrs.get("ticks") or (ch.attrs["ticks"] if ch is not None else "")
    title = f"Who is cut off: access {view} by firm size, {ticks_txt}"
    if ch is not None:
        what = "without access" if view == "layer" else "cut off"
        title += f"\n{labels[0]} (left) against {labels[1]} (right, hatched)"
        title += f"\nabove: change in the share {what} [percentage points]"
        if ch.attrs.get("paired"):
            title += f"\n(bold: its 95% paired interval over {ch.attrs['replicates']} replicates excludes 0; bars: means)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 1))
    return fig
