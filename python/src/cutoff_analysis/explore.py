"""Exploratory modelling on cutoff's ensembles: designs over named parameters and levers,
their standard outputs, Sobol' and Morris sensitivity indices (SALib), and scenario
discovery (PRIM and CART, from the EMA Workbench).

The path is design → ensemble → outputs → analysis::

    space = {"kappa": [0.4, 1.4], "bm": [0.5, 2.0], "moratorium": [0, 1]}
    design = sobol_design(space, n=64, seed=1)          # SALib's Sobol' sequence (Saltelli)
    ds = run_design("data/scenarios/baseline.toml", design, "out/sobol", replicates=2)
    results = outputs(ds)                               # one row per point, mean over replicates
    si = sobol_indices(design, results)                 # S1, ST with bootstrap 95% intervals
    found = prim(design, results, lambda r: r["cut_off_small_tier1"] > 0.5)

A design is a DataFrame with one column per scenario key and one row per point, as
``cutoff ensemble --design FILE.csv`` reads it; its ``attrs`` (kept in a JSON file beside
the CSV by :func:`write_design`) hold what the analysis needs to rebuild SALib's sample.
Levers (booleans in the schema, or any key listed in ``levers=``) are sampled on [0, 1]
like the others and set to 1 where the draw is at least 0.5; integer keys are rounded.
Their indices are then those of the uniform draw behind them.
"""
from __future__ import annotations

import json
import os
import subprocess
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .analysis import CUT_OFF, access_gap_by_tier
from .io import open_ensemble, scenario_params
from .schema import default_cutoff, schema

#: Size-class groups of the who-is-cut-off outputs (``size_class`` labels of the metrics).
SIZE_GROUPS = {"small": ("1-9", "10-49"), "medium": ("50-249",), "large": ("250+",),
               "all": ("1-9", "10-49", "50-249", "250+")}
#: Country groups of the who-is-cut-off outputs: each export-control tier and the world.
TIER_GROUPS = {"tier1": 1, "tier2": 2, "tier3": 3, "world": None}
#: The standard outputs of :func:`outputs`, in column order.
OUTPUTS = tuple(f"cut_off_{s}_{t}" for t in TIER_GROUPS for s in SIZE_GROUPS) + \
    ("us_price", "users_capped", "tier3_gap", "follower_lag")
OUTPUT_DOC = {
    "cut_off_<size>_<tier>": "share of the real firms of the size group (small 1-49 employees, medium 50-249, "
                             "large 250+, all) in the tier's countries (or the world) that are cut off: no value, "
                             "no budget, priced out or rationed (docs/model.md §7)",
    "us_price": "US-homed labs' compute price at the tick, mean over the labs, in units of p_min",
    "users_capped": "share of AI users compute-capped at the tick",
    "tier3_gap": "access gap of tier-3 countries, population-weighted [K]",
    "follower_lag": "the followers' distillation lag, mean over the 12 ticks to the tick and the followers [ticks]",
}


class CutoffError(RuntimeError):
    """``cutoff`` exited non-zero: the message holds its exit status and its own message."""

    def __init__(self, cmd: Sequence[str], returncode: int, stderr: str):
        self.cmd, self.returncode, self.stderr = list(cmd), returncode, stderr
        msg = stderr.strip() or "(no message)"
        super().__init__(f"cutoff exited {returncode}: {msg}\n  command: {' '.join(map(str, cmd))}")


# ---------------------------------------------------------------------------------------
# Parameter spaces and designs


def load_space(space: str | os.PathLike | Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """A parameter space as ``{key: (lo, hi)}``, from a dict or a TOML file of
    ``key = [lo, hi]`` lines (``"provider.0.offset" = [-1, 1]`` for dotted keys; a lever
    is ``moratorium = [0, 1]``). Refuses an empty space, a range that is not two numbers
    with lo < hi."""
    if isinstance(space, (str, os.PathLike)):
        with open(space, "rb") as f:
            raw = tomllib.load(f)
        where = str(space)
    else:
        raw, where = dict(space), "space"
    if not raw:
        raise ValueError(f"{where}: no parameters")
    out = {}
    for key, rng in raw.items():
        if isinstance(rng, Mapping):
            raise ValueError(f"{where}: '{key}' is a table; write dotted keys in quotes: \"{key}.x\" = [lo, hi]")
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: '{key}' = {rng!r}: expected [lo, hi], two numbers") from None
        if not lo < hi:
            raise ValueError(f"{where}: '{key}' = [{lo}, {hi}]: lo must be below hi")
        out[str(key)] = (lo, hi)
    return out


def _kinds(names: Sequence[str], levers: Sequence[str] | None, integers: Sequence[str] | None) -> dict[str, str]:
    """'bool', 'integer' or 'real' for each key: from ``levers``/``integers`` if given,
    else from the schema (keys it does not know are real: the CLI will judge them)."""
    try:
        keys = schema()
    except (RuntimeError, ValueError, OSError):
        keys = {}
    kinds = {}
    for n in names:
        k = keys.get(n)
        kinds[n] = {"bool": "bool", "integer": "integer"}.get(k.type, "real") if k else "real"
    for n in levers or ():
        kinds[n] = "bool"
    for n in integers or ():
        kinds[n] = "integer"
    return kinds


def _problem(space: Mapping[str, tuple[float, float]]) -> dict:
    return {"num_vars": len(space), "names": list(space), "bounds": [list(map(float, b)) for b in space.values()]}


def _table(sample: np.ndarray, problem: dict, kinds: Mapping[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(sample, columns=problem["names"])
    for name, (lo, hi) in zip(problem["names"], problem["bounds"]):
        if kinds[name] == "bool":
            u = (df[name] - lo) / (hi - lo)
            df[name] = (u >= 0.5).astype(np.int64)
        elif kinds[name] == "integer":
            df[name] = np.clip(np.round(df[name]), np.ceil(lo), np.floor(hi)).astype(np.int64)
    df.index.name = "point"
    return df


def _raw_sample(attrs: Mapping) -> np.ndarray:
    """SALib's sample behind a design, rebuilt from its attrs (SALib's samplers are
    deterministic given the seed)."""
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample
    problem = attrs["problem"]
    if attrs["method"] == "sobol":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # SALib's note on N not a power of 2
            return sobol_sample.sample(problem, attrs["n"], calc_second_order=attrs["second_order"],
                                       seed=attrs["seed"])
    if attrs["method"] == "morris":
        return morris_sample.sample(problem, attrs["n"], num_levels=attrs["levels"], seed=attrs["seed"])
    raise ValueError(f"design method {attrs['method']!r}: expected 'sobol' or 'morris'")


def _design(space, levers, integers, path, **sampling) -> pd.DataFrame:
    """The design table of SALib's sampler named in ``sampling`` (its ``method`` and
    arguments, kept in the table's ``attrs`` with the problem and each key's kind)."""
    problem = _problem(load_space(space))
    attrs = {"method": sampling.pop("method"), "problem": problem, **sampling,
             "kinds": _kinds(problem["names"], levers, integers)}
    df = _table(_raw_sample(attrs), problem, attrs["kinds"])
    df.attrs = attrs
    if path:
        write_design(df, path)
    return df


def sobol_design(space, n: int, seed: int | None = 1, second_order: bool = False, levers: Sequence[str] | None = None,
                 integers: Sequence[str] | None = None, path: str | None = None) -> pd.DataFrame:
    """A Sobol' design (SALib's Saltelli scheme on a scrambled Sobol' sequence) over
    ``space`` (:func:`load_space`): ``n`` base samples give ``n·(D+2)`` points
    (``n·(2D+2)`` with ``second_order``); ``n`` a power of 2 keeps the sequence balanced.
    Returns the design table (one column per key, ``point`` index, levers 0/1, integers
    rounded); ``path`` also writes it (:func:`write_design`)."""
    return _design(space, levers, integers, path, method="sobol", n=int(n), seed=seed,
                   second_order=bool(second_order))


def morris_design(space, trajectories: int, levels: int = 4, seed: int | None = 1,
                  levers: Sequence[str] | None = None, integers: Sequence[str] | None = None,
                  path: str | None = None) -> pd.DataFrame:
    """A Morris design (SALib): ``trajectories`` one-at-a-time paths of ``D+1`` points on
    a ``levels`` grid, for screening many inputs at ``trajectories·(D+1)`` points."""
    return _design(space, levers, integers, path, method="morris", n=int(trajectories), levels=int(levels),
                   seed=seed)


def write_design(design: pd.DataFrame, path: str) -> str:
    """Writes ``design`` as the CSV ``cutoff ensemble --design`` reads (a header of keys,
    one row per point, levers 0/1) and its attrs to ``PATH.json``; returns ``path``."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    design.to_csv(path, index=False)
    if design.attrs:
        with open(path + ".json", "w") as f:
            json.dump(design.attrs, f, indent=1)
    return path


def read_design(path: str) -> pd.DataFrame:
    """A design written by :func:`write_design` (CSV, or Parquet by its extension: that
    needs pyarrow, which the pinned requirements do not install), with its attrs where
    ``PATH.json`` exists."""
    df = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    df.index.name = "point"
    if os.path.isfile(path + ".json"):
        with open(path + ".json") as f:
            df.attrs = json.load(f)
    return df


# ---------------------------------------------------------------------------------------
# Running a design


def _design_csv(design, out: str) -> str:
    """The CSV to pass to ``--design``: ``design`` itself if it is a CSV path, else written
    beside ``out`` (a DataFrame, or a Parquet file converted: the CLI reads CSV only)."""
    if isinstance(design, pd.DataFrame):
        return write_design(design, os.path.abspath(out).rstrip("/") + ".design.csv")
    path = os.fspath(design)
    if path.endswith((".parquet", ".pq")):
        return write_design(read_design(path), os.path.abspath(out).rstrip("/") + ".design.csv")
    return path


def cutoff_command(cutoff: str | None = None) -> str:
    exe = cutoff or default_cutoff()
    if exe is None:
        raise CutoffError(["cutoff"], 127, "no cutoff binary: build it (build/cutoff), set CUTOFF_BIN or pass cutoff=")
    return exe


def run_ensemble(args: Sequence[str], cutoff: str | None = None) -> None:
    """Runs ``cutoff ARGS...``; raises :class:`CutoffError` with the CLI's own message
    on a non-zero exit."""
    cmd = [cutoff_command(cutoff), *map(str, args)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise CutoffError(cmd, done.returncode, done.stderr or done.stdout)


def _size_flags(replicates, firms, users, ticks, jobs, seed, sets, threads=None) -> list[str]:
    flags = ["--replicates", str(int(replicates))]
    for flag, v in (("--firms", firms), ("--users", users), ("--ticks", ticks), ("--jobs", jobs),
                    ("--seed", seed), ("--threads", threads)):
        if v is not None:
            flags += [flag, str(int(v))]
    for s in sets or ():
        flags += ["--set", s]
    return flags


def run_design(scenario: str, design, out: str, replicates: int = 1, firms: int | None = None,
               users: int | None = None, ticks: int | None = None, jobs: int | None = None,
               cutoff: str | None = None, seed: int | None = None, sets: Sequence[str] = (),
               args: Sequence[str] = ()) -> xr.Dataset:
    """Runs every point of ``design`` (a DataFrame, or a CSV or Parquet file) × ``replicates``
    as one ``cutoff ensemble SCENARIO --design`` into ``out`` and opens it
    (:func:`~cutoff_analysis.io.open_ensemble`: metrics over ``point``, ``replicate``,
    ``tick``..., one coordinate per design column). ``sets`` are ``key=value`` overrides of
    every member, ``args`` further CLI flags; ``cutoff`` the binary (default
    ``$CUTOFF_BIN``, else build/cutoff, else PATH). Resumes like any ensemble: the same
    call again runs only the members not finished. Raises :class:`CutoffError` with the
    CLI's message (a bad design exits 2 naming the row, column and what is allowed)."""
    csv = _design_csv(design, out)
    run_ensemble(["ensemble", scenario, "-o", out, "--design", csv, "-q",
                  *_size_flags(replicates, firms, users, ticks, jobs, seed, sets), *args], cutoff)
    return open_ensemble(out)


def run_scenarios(scenarios: Sequence[str], out: str, replicates: int = 2, firms: int | None = None,
                  users: int | None = None, ticks: int | None = None, jobs: int | None = None,
                  cutoff: str | None = None, seed: int | None = None, sets: Sequence[str] = (),
                  args: Sequence[str] = ()) -> dict[str, xr.Dataset]:
    """Runs the scenario files (the baseline first) as one ``cutoff ensemble --scenarios``
    (member R of every scenario shares seed and replicate R: common random numbers) into
    ``out`` and returns ``{stem: Dataset}`` in that order, ready for
    :func:`~cutoff_analysis.compare.compare`."""
    run_ensemble(["ensemble", "-o", out, "--scenarios", ",".join(map(str, scenarios)), "-q",
                  *_size_flags(replicates, firms, users, ticks, jobs, seed, sets), *args], cutoff)
    return split_scenarios(open_ensemble(out))


def split_scenarios(ds: xr.Dataset) -> dict[str, xr.Dataset]:
    """An ensemble over ``scenario`` as ``{scenario: Dataset}`` (in coordinate order)."""
    if "scenario" not in ds.dims:
        raise ValueError("split_scenarios: the ensemble has no 'scenario' dimension (run it with --scenarios)")
    out = {}
    for s in ds["scenario"].values:
        one = ds.sel(scenario=s, drop=True)
        one.attrs = dict(ds.attrs)  # its own dict: sel may share the parent's
        # Each scenario's own resolved TOML (its first member's), for scenario_params and followers.
        directory = ds.attrs.get("cutoff_dir")
        if directory and "member" in one:
            path = os.path.join(directory, "members", f"m{int(np.ravel(one['member'].values)[0]):06d}.h5")
            if os.path.isfile(path):
                import h5py
                with h5py.File(path, "r") as f:
                    text = f.attrs.get("scenario")
                one.attrs["scenario_toml"] = text.decode() if isinstance(text, bytes) else text
        out[str(s)] = one
    return out


def design_table(ds: xr.Dataset) -> pd.DataFrame:
    """The design of a ``--design`` ensemble (root attribute ``design_keys``, one
    coordinate per key over ``point``) as a DataFrame indexed by ``point``."""
    keys = [k for k in str(ds.attrs.get("design_keys", "")).split(",") if k]
    if not keys or "point" not in ds.dims:
        raise ValueError("design_table: not a --design ensemble (no design_keys attribute or point dimension)")
    df = pd.DataFrame({k: ds[k].values for k in keys}, index=pd.Index(ds["point"].values, name="point"))
    return df


# ---------------------------------------------------------------------------------------
# The standard outputs


def _p_min(ds: xr.Dataset):
    """p_min = (1 + markup)(opex + capex/life): the design's values per point where the
    design varies them, else the scenario's (defaults where the output holds none)."""
    p = {"markup": 0.3, "opex": 600.0, "capex": 30000.0, "life": 36.0}
    p.update({k: v for k, v in scenario_params(ds).items() if k in p})
    # A design's column (a coordinate over point) or a swept key (a dimension coordinate).
    v = {k: (ds.coords[k] if k in ds.coords and ds.coords[k].dims and "tick" not in ds.coords[k].dims else p[k])
         for k in p}
    return (1 + v["markup"]) * (v["opex"] + v["capex"] / v["life"])


def cut_off_groups(ds: xr.Dataset, weight: str = "firms") -> xr.Dataset:
    """The who-is-cut-off shares (``cut_off_<size>_<tier>``, :data:`SIZE_GROUPS` ×
    :data:`TIER_GROUPS`) over every dimension of ``ds`` but country, size class and status."""
    f = ds[{"firms": "firms_by_status", "employment": "employment_by_status"}[weight]]
    cut = [s for s in CUT_OFF if s in f["status"].values]
    out = {}
    for tname, tier in TIER_GROUPS.items():
        ft = f.sum("country") if tier is None else f.where(ds["tier"] == tier, 0.0).sum("country")
        for sname, classes in SIZE_GROUPS.items():
            g = ft.sel(size_class=[c for c in classes if c in ft["size_class"].values]).sum("size_class")
            out[f"cut_off_{sname}_{tname}"] = g.sel(status=cut).sum("status") / g.sum("status").where(lambda t: t > 0)
    return xr.Dataset(out)


def output_arrays(ds: xr.Dataset, tick: int | None = None) -> xr.Dataset:
    """The standard outputs (:data:`OUTPUTS`, :data:`OUTPUT_DOC`) at ``tick`` (default the
    last), per member: over every dimension of ``ds`` but tick and the metrics' own."""
    t = int(ds["tick"].values[-1]) if tick is None else int(tick)
    if t not in ds["tick"].values:
        raise ValueError(f"outputs: tick {t} is not in the output (ticks {int(ds['tick'][0])}-{int(ds['tick'][-1])})")
    at = ds.sel(tick=t)
    res = cut_off_groups(at)
    us = (ds["provider_home"] == "USA") if "provider_home" in ds.coords else xr.ones_like(ds["provider"], bool)
    res["us_price"] = at["compute_price"].where(us).mean("provider") / _p_min(ds)
    res["users_capped"] = at["users_capped_share"]
    res["tier3_gap"] = access_gap_by_tier(at).sel(tier=3, drop=True)
    window = ds["follower_lag"].sel(tick=slice(t - 11, t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res["follower_lag"] = window.mean(("tick", "provider"))
    drop = [c for c in res.coords if c not in res.dims]
    return res.drop_vars(drop)[list(OUTPUTS)]


def outputs(ds: xr.Dataset, tick: int | None = None, replicates: str = "mean") -> pd.DataFrame:
    """The standard outputs per point (a ``--design`` ensemble), per scenario (a
    ``--scenarios`` one), per sweep cell, or of one run, at ``tick`` (default the last):
    the who-is-cut-off shares by size group and tier, the US price (× p_min), users
    capped, the tier-3 gap and the follower lag (:data:`OUTPUT_DOC`). ``replicates="mean"``
    averages the replicates (NaNs skipped); ``"keep"`` gives one row per replicate."""
    res = output_arrays(ds, tick)
    if "replicate" in res.dims and replicates == "mean":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = res.mean("replicate", skipna=True)
    elif replicates not in ("mean", "keep"):
        raise ValueError(f"outputs: replicates={replicates!r}: allowed 'mean' or 'keep'")
    if not res.dims:
        return pd.DataFrame({k: [float(v)] for k, v in res.items()})
    return res.to_dataframe()[list(OUTPUTS)]


# ---------------------------------------------------------------------------------------
# Sensitivity


def _results_matrix(design: pd.DataFrame, results: pd.DataFrame | Mapping | np.ndarray,
                    names: Sequence[str] | None) -> pd.DataFrame:
    res = pd.DataFrame(results) if not isinstance(results, pd.DataFrame) else results
    if len(res) != len(design):
        raise ValueError(f"the results hold {len(res)} rows, the design {len(design)} points: one row per point, "
                         "in the design's order")
    if names is not None:
        missing = [n for n in names if n not in res.columns]
        if missing:
            raise ValueError(f"outputs {missing} are not in the results (columns: {list(res.columns)})")
        res = res[list(names)]
    return res.select_dtypes("number")


def _attrs(design: pd.DataFrame, method: str) -> dict:
    a = design.attrs
    if a.get("method") != method:
        raise ValueError(f"the design is not a {method} design (attrs method={a.get('method')!r}): make it with "
                         f"{method}_design, or read it with read_design where its .json is beside it")
    return a


def sobol_indices(design: pd.DataFrame, results, outputs: Sequence[str] | None = None, level: float = 0.95,
                  resamples: int = 1000, seed: int | None = 1) -> pd.DataFrame:
    """First-order (``S1``) and total (``ST``) Sobol' indices of every output (a numeric
    column of ``results``, one row per design point in order) for every input, with
    bootstrap ``level`` intervals (``*_lo``, ``*_hi``: index ∓ SALib's ``*_conf``, from
    ``resamples`` resamples). SALib's ``sobol.analyze`` does the work. An output NaN at any
    point, or constant, gets NaN indices (and a warning)."""
    from SALib.analyze import sobol as sobol_analyze
    a = _attrs(design, "sobol")
    res = _results_matrix(design, results, outputs)
    rows = []
    for name in res.columns:
        y = res[name].to_numpy(float)
        bad = int(np.sum(~np.isfinite(y)))
        if bad or np.std(y) == 0:
            what = f"NaN at {bad} points" if bad else "constant"
            warnings.warn(f"sobol_indices: output '{name}' is {what}: its indices are NaN")
            si = {k: np.full(a["problem"]["num_vars"], np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            si = sobol_analyze.analyze(a["problem"], y, calc_second_order=a["second_order"], num_resamples=resamples,
                                       conf_level=level, seed=seed)
        for i, inp in enumerate(a["problem"]["names"]):
            s1, c1, st, ct = (float(si[k][i]) for k in ("S1", "S1_conf", "ST", "ST_conf"))
            rows.append({"output": name, "input": inp, "S1": s1, "S1_lo": s1 - c1, "S1_hi": s1 + c1,
                         "ST": st, "ST_lo": st - ct, "ST_hi": st + ct})
    out = pd.DataFrame(rows)
    out.attrs = {"level": level, "resamples": resamples, "points": len(design), "n": a["n"]}
    return out


def morris_indices(design: pd.DataFrame, results, outputs: Sequence[str] | None = None, level: float = 0.95,
                   resamples: int = 1000, seed: int | None = 1) -> pd.DataFrame:
    """Morris screening of every output: ``mu``, ``mu_star`` (mean absolute elementary
    effect, with its bootstrap ``level`` interval ``mu_star_lo``/``mu_star_hi``) and
    ``sigma`` per input (SALib's ``morris.analyze`` on the design's unrounded sample)."""
    from SALib.analyze import morris as morris_analyze
    a = _attrs(design, "morris")
    res = _results_matrix(design, results, outputs)
    X = _raw_sample(a)
    rows = []
    for name in res.columns:
        y = res[name].to_numpy(float)
        si = morris_analyze.analyze(a["problem"], X, y, num_resamples=resamples, conf_level=level,
                                    num_levels=a["levels"], seed=seed)
        for i, inp in enumerate(a["problem"]["names"]):
            mu_star, conf = float(si["mu_star"][i]), float(si["mu_star_conf"][i])
            rows.append({"output": name, "input": inp, "mu": float(si["mu"][i]), "mu_star": mu_star,
                         "mu_star_lo": mu_star - conf, "mu_star_hi": mu_star + conf, "sigma": float(si["sigma"][i])})
    return pd.DataFrame(rows)


def plot_sobol(indices: pd.DataFrame, outputs: Sequence[str] | None = None, ax=None):
    """Bar chart of S1 and ST per input with their intervals, one panel per output."""
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(indices["output"])) if outputs is None else list(outputs)
    if ax is None:
        fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 1, 3.2), sharey=True, squeeze=False)
        axes = axes[0]
    else:
        axes, fig = np.atleast_1d(ax), np.atleast_1d(ax)[0].figure
    for axi, name in zip(axes, names):
        d = indices[indices["output"] == name]
        x = np.arange(len(d))
        for off, k, colour in ((-0.2, "S1", "tab:blue"), (0.2, "ST", "tab:orange")):
            v = d[k].to_numpy()
            err = np.vstack([v - d[f"{k}_lo"].to_numpy(), d[f"{k}_hi"].to_numpy() - v])
            axi.bar(x + off, v, 0.4, yerr=err, capsize=2, color=colour, label=k)
        axi.set_xticks(x, d["input"], rotation=45, ha="right")
        axi.axhline(0, color="k", lw=0.5)
        axi.set_title(name, fontsize=9)
    axes[0].set_ylabel(f"Sobol' index ({int(100 * indices.attrs.get('level', 0.95))}% interval)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Scenario discovery


def _condition(results: pd.DataFrame | None, condition) -> np.ndarray:
    if callable(condition):
        if results is None:
            raise ValueError("a callable condition needs the results table")
        y = condition(results)
    else:
        y = condition
    y = np.asarray(y)
    if y.dtype != bool:
        if not np.isin(y, [0, 1]).all():
            raise ValueError("the condition must give booleans (one per design point)")
        y = y.astype(bool)
    return y


def _inputs(design: pd.DataFrame) -> pd.DataFrame:
    x = design.reset_index(drop=True).astype(float)
    return x


@dataclass
class Discovery:
    """A PRIM box: ``limits`` (one row per input: ``lo``, ``hi``, ``restricted``, the
    quasi-p-value of each restriction, and the input's range in the design), ``stats`` (coverage, density, mass, points,
    restricted dimensions, the share of points of interest) and the peeling ``trajectory``
    (coverage and density of every box PRIM peeled; ``chosen`` is the reported one)."""
    limits: pd.DataFrame
    stats: dict
    trajectory: pd.DataFrame
    chosen: int

    def table(self) -> pd.DataFrame:
        """The box's restricted inputs with its coverage and density, as one table."""
        t = self.limits[self.limits["restricted"]].copy()
        t["coverage"], t["density"] = self.stats["coverage"], self.stats["density"]
        return t

    def figure(self):
        return plot_prim(self)


def prim(design: pd.DataFrame, results: pd.DataFrame | None, condition, threshold: float = 0.8,
         peel_alpha: float = 0.05, mass_min: float = 0.05) -> Discovery:
    """PRIM (the EMA Workbench's) on a design: the box of inputs where ``condition`` (a
    function of ``results`` giving one boolean per point, or the booleans themselves)
    holds. Among the boxes of the peeling trajectory whose density reaches ``threshold``,
    the one of highest coverage is reported (the densest if none reaches it). Each peel
    removes a ``peel_alpha`` quantile of one input: on a small design with tied values
    (Sobol' designs repeat every value) 0.05 may peel nothing, which is warned about.
    Coverage: the share of the points of interest inside the box; density: the share of
    the box's points that are of interest."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim as ema_prim
    y = _condition(results, condition)
    if len(y) != len(design):
        raise ValueError(f"the condition gives {len(y)} values, the design has {len(design)} points")
    if not y.any():
        raise ValueError("no design point meets the condition: nothing to find a box for")
    x = _inputs(design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ema_prim.Prim(x, y, threshold=threshold, peel_alpha=peel_alpha, mass_min=mass_min)
        box = p.find_box()
    traj = box.peeling_trajectory.copy()
    if len(traj) == 1:
        warnings.warn(f"prim: PRIM peeled nothing off the {len(x)} points: each peel of peel_alpha={peel_alpha} falls "
                      "within tied values (a Sobol' design repeats each value); raise peel_alpha (e.g. 0.1) or use "
                      "more points")
    ok = traj[traj["density"] >= threshold]
    if len(ok):
        best = ok.sort_values(["coverage", "res_dim"], ascending=[False, True]).index[0]
    else:
        best = traj["density"].idxmax()
    best = int(best)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lims = box.box_lims[best]
        qp = box.qp[best] if hasattr(box, "qp") and best < len(box.qp) else {}
    full = p.box_init
    rows = []
    for col in x.columns:
        lo, hi = float(lims[col].iloc[0]), float(lims[col].iloc[1])
        restricted = lo > float(full[col].iloc[0]) or hi < float(full[col].iloc[1])
        q = qp.get(col, (np.nan, np.nan)) if isinstance(qp, Mapping) else (np.nan, np.nan)
        q = [v if v is not None and v >= 0 else np.nan for v in np.atleast_1d(q)] + [np.nan]
        rows.append({"input": col, "lo": lo, "hi": hi, "restricted": bool(restricted),
                     "range_lo": float(full[col].iloc[0]), "range_hi": float(full[col].iloc[1]),
                     "qp_lo": float(q[0]), "qp_hi": float(q[1]) if len(q) > 1 else np.nan})
    limits = pd.DataFrame(rows).set_index("input")
    r = traj.loc[best]
    stats = {"coverage": float(r["coverage"]), "density": float(r["density"]), "mass": float(r["mass"]),
             "points": int(r["n"]), "restricted": int(r["res_dim"]), "share_of_interest": float(y.mean()),
             "threshold": threshold}
    traj["chosen"] = traj.index == best
    return Discovery(limits, stats, traj[["coverage", "density", "mass", "n", "res_dim", "chosen"]], best)


def plot_prim(found: Discovery):
    """Two panels: PRIM's trade-off (coverage against density of every peeled box, the
    reported one marked) and the reported box's limits on each restricted input, as a
    share of the input's range in the design."""
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    t = found.trajectory
    sc = a.scatter(t["coverage"], t["density"], c=t["res_dim"], cmap="viridis", s=14)
    c = t[t["chosen"]]
    a.scatter(c["coverage"], c["density"], s=120, facecolors="none", edgecolors="red", label="reported box")
    a.set_xlabel("coverage")
    a.set_ylabel("density")
    a.legend(fontsize=8, loc="lower left")
    fig.colorbar(sc, ax=a, label="restricted inputs", ticks=range(int(t["res_dim"].max()) + 1))
    lim = found.limits[found.limits["restricted"]]
    for i, (name, row) in enumerate(lim.iterrows()):
        span = row["range_hi"] - row["range_lo"]
        lo, hi = (row["lo"] - row["range_lo"]) / span, (row["hi"] - row["range_lo"]) / span
        b.plot([lo, hi], [i, i], lw=6, color="tab:red", solid_capstyle="butt")
        b.text(1.02, i, f"{row['lo']:.3g} – {row['hi']:.3g}", va="center", fontsize=8)
    b.set_yticks(range(len(lim)), lim.index)
    b.set_xlim(0, 1)
    b.set_ylim(-0.5, max(len(lim), 1) - 0.5)
    b.set_xlabel("share of the input's range in the design")
    b.set_title(f"coverage {found.stats['coverage']:.2f}, density {found.stats['density']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def cart(design: pd.DataFrame, results: pd.DataFrame | None, condition, mass_min: float = 0.05) -> pd.DataFrame:
    """CART (the EMA Workbench's, on scikit-learn's tree) as a second view: one row per
    leaf box with its ``coverage``, ``density``, ``mass`` and its limits as text
    (``limits``: the inputs the tree restricted, ``lo ≤ x ≤ hi``), densest first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import cart as ema_cart
    y = _condition(results, condition)
    x = _inputs(design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = ema_cart.CART(x, y, mass_min=mass_min)
        c.build_tree()
        boxes, stats = c.boxes, c.stats
    lo0, hi0 = x.min(), x.max()
    rows = []
    for i, (b, s) in enumerate(zip(boxes, stats)):
        parts = []
        for col in x.columns:
            lo, hi = float(b[col].iloc[0]), float(b[col].iloc[1])
            if lo > lo0[col] or hi < hi0[col]:
                parts.append(f"{lo:.3g} ≤ {col} ≤ {hi:.3g}")
        rows.append({"box": i, "coverage": float(s["coverage"]), "density": float(s["density"]),
                     "mass": float(s["mass"]), "limits": "; ".join(parts) or "(all)"})
    return pd.DataFrame(rows).sort_values("density", ascending=False).reset_index(drop=True)
