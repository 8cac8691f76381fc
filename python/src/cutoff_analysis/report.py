"""``cutoff-report OUT.h5|OUTDIR -o DIR [--against BASELINE]``: the package's figures as PNG and a short
markdown summary (key numbers at the calibration tick and the last tick). With ``--against``
the output is a policy and BASELINE its baseline (a run file against a run file, or an
ensemble directory against one with the same replicates): the figures compare the two,
and the summary opens with "who is cut off, and why" (:mod:`cutoff_analysis.who`), its
tables also written as CSV, at ``--ticks`` (default the last tick).

Exit status, as the ``cutoff`` command line's: 0 written; 2 bad input or an unusable
path (not a cutoff output, an unknown schema version, a corrupt or truncated file, an
``-o`` that is a file, a folder that cannot be written), with one line naming the path;
1 a failure while writing (a full disk), with one line and nothing left behind. A bad
flag value (``--ticks`` outside the outputs, ``--against`` an output that does not pair
with the policy) exits 2 with one line naming the flag and the value. The
Python traceback only with ``--verbose``. The files are written into a temporary folder
beside ``-o`` and moved under their names only once every one of them is complete.
"""
from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
import tempfile
import traceback

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from . import analysis as an  # noqa: E402
from . import plots  # noqa: E402
from . import who  # noqa: E402
from .io import CutoffFormatError, calib_tick, open_output, scenario_params, sweep_keys  # noqa: E402

#: (file stem, plot function, caption) of each figure in the report.
FIGURES = [
    ("adoption-income", lambda d: plots.plot_adoption(d, "income_group"), "Adoption by income group"),
    ("adoption-tier", lambda d: plots.plot_adoption(d, "tier"), "Adoption by tier"),
    ("access-gap", plots.plot_access_gap, "Access gap by tier"),
    ("prices", plots.plot_prices, "Clearing prices by provider and class"),
    ("users-capped", plots.plot_users_capped, "Share of users capped"),
    ("capability", plots.plot_capability, "Frontier and follower capability"),
    ("top20", plots.plot_top20, "Top-20% share of AI value"),
    ("cut-off", plots.plot_cut_off, "Who is cut off: access status by firm size"),
    ("lorenz", plots.plot_lorenz, "Lorenz curve of AI value (last firm snapshot)"),
]
#: (file stem, caption) of the who-is-cut-off figures of a report with ``--against``.
WHO_FIGURES = [
    ("who-is-cut-off", "Who is cut off: access layer by tier and firm size"),
    ("who-is-cut-off-why", "Why: access status by firm size (world)"),
]
#: The CSV tables of a report with ``--against``.
WHO_TABLES = ("who-by-tier.csv", "who-by-income.csv", "who-by-status.csv", "who-by-country.csv")


def _fmt(da: xr.DataArray) -> str:
    """A value, or an ensemble's median with its 5-95% range."""
    if "replicate" in da.dims:
        q = an.bands(da).values
        return f"{q[2]:.3g} ({q[0]:.3g}-{q[4]:.3g})"
    return f"{float(da):.3g}"


def key_numbers(ds: xr.Dataset) -> list[tuple[str, xr.DataArray]]:
    """(row name, value over ``tick`` and any ensemble dims) for the summary table."""
    by_income, by_tier, gap = an.adoption_by(ds, "income_group"), an.adoption_by(ds, "tier"), an.access_gap_by_tier(ds)
    rows = [(f"adoption, {g.replace('_', ' ')} income [share]", by_income.sel(income_group=g)) for g in an.INCOME_GROUPS]
    rows += [(f"adoption, tier {t} [share]", by_tier.sel(tier=t)) for t in an.TIERS]
    rows += [(f"access gap, tier {t} [K]", gap.sel(tier=t)) for t in an.TIERS]
    rows += [("top-20% share of AI value [share]", an.top20_share(ds)),
             ("users compute-capped [share]", an.users_capped(ds))]
    if "firms_by_status" in ds:
        cut = an.cut_off_share(ds)
        rows += [(f"firms cut off, {sc} employees [share]", cut.sel(size_class=sc)) for sc in cut["size_class"].values]
    cap = an.capability(ds)
    rows += [(f"compute price {p} [{ds['compute_price'].attrs.get('units', '')}]", ds["compute_price"].sel(provider=p))
             for p in ds["provider"].values]
    rows += [(f"frontier K {p}{' (follower)' if bool(cap['follower'].sel(provider=p)) else ''} [K]",
              cap["frontier_K"].sel(provider=p)) for p in ds["provider"].values]
    return rows


def _label(path: str) -> str:
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0]


def _describe(ds: xr.Dataset, source: str) -> str:
    kind = ds.attrs.get("cutoff_kind")
    what = f"one run (seed {ds.attrs.get('seed')}, replicate {ds.attrs.get('replicate')})" if kind == "run" else \
        f"an ensemble of {ds.sizes.get('replicate', 1)} replicates" + \
        (f" swept over {', '.join(sweep_keys(ds))}" if sweep_keys(ds) else "") + \
        "; values are medians with the 5-95% range over replicates"
    return f"`{source}`: {what}; {ds.sizes['tick']} ticks" + \
        (f", calibration tick {calib_tick(ds)}" if calib_tick(ds) is not None else "")


def summary_markdown(ds: xr.Dataset, source: str, figures: list[tuple[str, str]], against: dict | None = None) -> str:
    """The summary: with ``against`` (the who-is-cut-off context of :func:`write_report`:
    ``baseline``, ``base_source``, ``labels``, ``ticks``, ``top``) the who-is-cut-off
    section first and the key numbers of both outputs side by side."""
    params = scenario_params(ds)
    runs = {None: ds} if against is None else {against["labels"][0]: against["baseline"], against["labels"][1]: ds}
    ticks = [int(t) for t in (calib_tick(ds), int(ds["tick"].values[-1])) if t is not None]
    ticks = [t for t in dict.fromkeys(ticks) if all(t in r["tick"].values for r in runs.values())]
    lines = [f"# cutoff report: {os.path.basename(os.path.normpath(source))}", ""]
    if against is not None:
        lines[0] = f"# cutoff report: {against['labels'][1]} against {against['labels'][0]}"
        bparams = scenario_params(against["baseline"])
        for label, p, src, d in ((against["labels"][0], bparams, against["base_source"], against["baseline"]),
                                 (against["labels"][1], params, source, ds)):
            lines += [f"- {label}: " + (f"{p['description']}; " if p.get("description") else "") + _describe(d, src)
                      + "."]
        lines += [""] + who_markdown(against["baseline"], ds, against["labels"], against["ticks"], against["top"],
                                     against.get("tables"))
        lines += ["", "## Key numbers", ""]
    else:
        if params.get("description"):
            lines += [f"Scenario: {params['description']}.", ""]
        lines += [f"Source {_describe(ds, source)}.", ""]
    cols = [(label, t) for label in runs for t in ticks]
    header = "| quantity | " + " | ".join(f"{label + ', ' if label else ''}tick {t}" for label, t in cols) + " |"
    lines += [header, "|---" * (len(cols) + 1) + "|"]
    numbers = {label: dict(_rows(r)) for label, r in runs.items()}
    first = next(iter(numbers.values()))
    for label_row in first:
        if not all(label_row in n for n in numbers.values()):
            continue
        lines.append(f"| {label_row} | " + " | ".join(_fmt(numbers[label][label_row].sel(tick=t)) for label, t in cols)
                     + " |")
    lines += ["", "## Figures"]
    lines += [f"\n### {caption}\n\n![{caption}]({name})" for name, caption in figures]
    missing = [caption for stem, _, caption in FIGURES if f"{stem}.png" not in dict(figures)]
    if missing:
        lines += ["", "Not drawn: " + "; ".join(missing) + " (needs firm snapshots: `cutoff run --snapshot-every K`)."]
    return "\n".join(lines) + "\n"


def _rows(ds: xr.Dataset):
    """(row label, value over tick and replicate) of every key number, one row per series."""
    for name, da in key_numbers(ds):
        for suffix, part in plots.series(da, ("tick", "replicate")):
            yield (f"{name} ({suffix})" if suffix else name), part


def pct(x: float) -> str:
    """A share as the summary writes it: percent, one decimal."""
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"


def points(d: float, lo: float = float("nan"), hi: float = float("nan")) -> str:
    """A change of a share as the summary writes it: percentage points with one decimal,
    and its interval where there is one."""
    if not np.isfinite(d):
        return "n/a"
    out = f"{100 * d:+.1f} pt"
    if np.isfinite(lo) and np.isfinite(hi):
        out += f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return out


def _reasons(shares) -> str:
    """``status`` share, ... for the statuses holding at least 0.05% of the firms without access."""
    shown = [f"`{k}` {pct(v)}" for k, v in shares if np.isfinite(v) and v >= 0.0005]
    return ", ".join(shown) if shown else "none"


def _arrow(b: float, p: float) -> str:
    return f"{pct(b)} → {pct(p)}"


def who_tables(baseline: xr.Dataset, policy: xr.Dataset, ticks=None) -> dict:
    """The who-is-cut-off tables of a report, as pandas DataFrames: ``tier`` (layer by
    tier and size class), ``income`` (layer by income group), ``status`` (status by size
    class, world) and ``country`` (every country, largest change in the share without
    access first)."""
    return {
        "tier": who.change_table(who.who_changes(baseline, policy, "tier", "layer", ticks)),
        "income": who.change_table(who.who_changes(baseline, policy, "income_group", "layer", ticks)),
        "status": who.change_table(who.who_changes(baseline, policy, None, "status", ticks)),
        "country": who.country_table(baseline, policy, ticks, top=None),
    }


def who_markdown(baseline: xr.Dataset, policy: xr.Dataset, labels, ticks=None, top: int = 10, tables=None,
                 files: bool = True) -> list[str]:
    """The "who is cut off, and why" section: every number computed here from the two
    outputs (:func:`cutoff_analysis.who.headline` and :func:`who_tables`), with links to
    the report's CSV tables unless ``files=False``."""
    h = who.headline(baseline, policy, ticks)
    t = tables if tables is not None else who_tables(baseline, policy, ticks)
    b, p = labels
    paired = (f"means over {baseline.sizes['replicate']} paired replicates (member k against member k); a change is "
              f"{p} − {b} in percentage points with its 95% paired interval") if h["paired"] else \
        f"one run each: a change is {p} − {b} in percentage points, without an interval"
    lines = [f"## Who is cut off, and why: {p} against {b}", "",
             f"Shares of real firms (each firm agent counts for the real firms it stands for) at {h['ticks']}; "
             f"{paired}. Access layers: api (rationed, budget-bound or served), seats (on a plan), none (no access, "
             "no value, no budget, priced out, not adopted).", ""]
    lines += [f"- **Without access** (world, every size): {_arrow(h['none_base'], h['none_policy'])}, "
              f"{points(h['none_change'], h['none_lo'], h['none_hi'])}.",
              f"- On the API: {_arrow(h['api_base'], h['api_policy'])}; on seats: "
              f"{_arrow(h['seats_base'], h['seats_policy'])}.",
              f"- Cut off (no value, no budget, priced out or rationed): {_arrow(h['cut_off_base'], h['cut_off_policy'])}, "
              f"{points(h['cut_off_change'], h['cut_off_lo'], h['cut_off_hi'])}.",
              f"- **Why**, the statuses of the firms without access: {b} {_reasons(h['reasons_base'])}; "
              f"{p} {_reasons(h['reasons_policy'])}.",
              f"- Largest change in the share without access by tier and size class: tier {h['most'][0]}, "
              f"{h['most'][1]} employees, {points(*h['most'][2:])}.", ""]
    tier = t["tier"]
    lines += ["### By tier and size class", "",
              "| tier | size class | api | seats | none | change in none |", "|---|---|---|---|---|---|"]
    for (tr, sc), g in tier.groupby(["tier", "size_class"], sort=False):
        r = {row.layer: row for row in g.itertuples()}
        lines.append(f"| {tr} | {sc} | {_arrow(r['api'].baseline, r['api'].policy)} | "
                     f"{_arrow(r['seats'].baseline, r['seats'].policy)} | {_arrow(r['none'].baseline, r['none'].policy)} | "
                     f"{points(r['none'].effect, r['none'].lo, r['none'].hi)} |")
    inc = t["income"]
    inc = inc[(inc["size_class"] == who.ALL_SIZES) & (inc["layer"] == "none")]
    inc = inc.assign(_o=inc["income_group"].map({g: i for i, g in enumerate(an.INCOME_GROUPS)})).sort_values("_o")
    lines += ["", "### By income group (every size)", "", "| income group | none | change in none |", "|---|---|---|"]
    for row in inc.itertuples():
        lines.append(f"| {str(row.income_group).replace('_', ' ')} | {_arrow(row.baseline, row.policy)} | "
                     f"{points(row.effect, row.lo, row.hi)} |")
    st = t["status"]
    sizes = list(dict.fromkeys(st["size_class"]))
    order = [s for s in plots.STATUS_ORDER if s in set(st["status"])] + \
        [s for s in dict.fromkeys(st["status"]) if s not in plots.STATUS_ORDER]
    used = [s for s in order if (st.loc[st["status"] == s, ["baseline", "policy"]] > 0).any().any()]
    lines += ["", "### Why: status by size class (world)", "", "| status | " + " | ".join(sizes) + " |",
              "|---" * (len(sizes) + 1) + "|"]
    for s in used:
        g = st[st["status"] == s].set_index("size_class")
        lines.append(f"| {s} | " + " | ".join(_arrow(g.loc[sc, "baseline"], g.loc[sc, "policy"]) for sc in sizes) + " |")
    c = t["country"].head(top)
    lines += ["", f"### Countries: the {len(c)} largest changes in the share without access (every size)", "",
              "| country | tier | income group | real firms | none | change |", "|---|---|---|---|---|---|"]
    for row in c.itertuples():
        lines.append(f"| {row.country} | {row.tier} | {str(row.income_group).replace('_', ' ')} | {row.real_firms:,.0f} | "
                     f"{_arrow(row.baseline, row.policy)} | {points(row.change, row.lo, row.hi)} |")
    if files:
        lines += ["", "Tables in full: " + ", ".join(f"[{n}]({n})" for n in WHO_TABLES) + "."]
    return lines


class ReportPathError(CutoffFormatError):
    """An ``-o`` the report cannot use (bad input: exit 2)."""


class ReportArgumentError(CutoffFormatError):
    """A flag value the report cannot use (bad input: exit 2); the message names the flag."""


def parse_ticks(text: str):
    """``--ticks``: ``T`` one tick, ``A:B`` the mean over ticks A to B (both included)."""
    try:
        if ":" in text:
            a, b = (int(x) for x in text.split(":"))
            if a > b:
                raise ValueError
            return (a, b)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed T (a tick) or A:B (ticks A to B, A <= B)") from None


def _write_into(ds, source: str, folder: str, dpi: int, against: dict | None = None) -> list[str]:
    names, figures = [], []
    data = ds if against is None else {against["labels"][0]: against["baseline"], against["labels"][1]: ds}

    def save(fig, name, caption):
        try:
            fig.savefig(os.path.join(folder, name), dpi=dpi)
        finally:
            plt.close(fig)
        names.append(name)
        figures.append((name, caption))

    if against is not None:
        base, labels, ticks = against["baseline"], against["labels"], against["ticks"]
        save(plots.plot_who_is_cut_off(base, ds, labels, "tier", "layer", ticks), "who-is-cut-off.png", WHO_FIGURES[0][1])
        save(plots.plot_who_is_cut_off(base, ds, labels, None, "status", ticks), "who-is-cut-off-why.png",
             WHO_FIGURES[1][1])
        tables = who_tables(base, ds, ticks)
        against = {**against, "tables": tables}
        for name, key in zip(WHO_TABLES, ("tier", "income", "status", "country")):
            tables[key].to_csv(os.path.join(folder, name), index=False)
            names.append(name)
    for stem, plot, caption in FIGURES:
        fig = plot(data)
        if fig is None:  # e.g. no snapshots for the Lorenz curve
            continue
        save(fig, f"{stem}.png", caption)
    with open(os.path.join(folder, "summary.md"), "w") as f:
        f.write(summary_markdown(ds, source, figures, against))
    names.append("summary.md")
    return names


def _against(policy: xr.Dataset, baseline_path: str, labels, ticks, top: int) -> dict:
    """Opens ``--against`` and checks that it pairs with the policy: ReportArgumentError
    naming the flag and its value otherwise."""
    base = open_output(baseline_path)
    for name, d in (("--against " + baseline_path, base), ("the policy", policy)):
        if sweep_keys(d):
            raise ReportArgumentError(f"{name}: a swept ensemble ({', '.join(sweep_keys(d))}); allowed: an ensemble "
                                      "of one point (cutoff ensemble --scenarios or without --sweep) or a run file")
    if ticks is not None:
        for d in (base, policy):
            try:
                who.resolve_ticks(d, ticks)
            except ValueError as e:
                shown = f"{ticks[0]}:{ticks[1]}" if isinstance(ticks, tuple) else ticks
                raise ReportArgumentError(f"--ticks {shown}: {e}") from None
    try:
        who.headline(base, policy, ticks)
    except ValueError as e:
        raise ReportArgumentError(f"--against {baseline_path}: {e}") from None
    return {"baseline": base, "base_source": baseline_path, "labels": tuple(labels), "ticks": ticks, "top": top}


def write_report(source: str, outdir: str, dpi: int = 110, against: str | None = None, ticks=None, top: int = 10,
                 labels=None) -> list[str]:
    """Writes each figure of :data:`FIGURES` as PNG and ``summary.md`` into ``outdir``;
    returns the files written. With ``against`` (a baseline's run file or ensemble
    directory; ``source`` is then the policy) the figures compare the two, and the
    who-is-cut-off figures (:data:`WHO_FIGURES`), tables (:data:`WHO_TABLES`, CSV) and
    section come first, at ``ticks`` (an int, ``(a, b)`` a window; default the last tick),
    with the ``top`` countries, the outputs named ``labels`` (default their file or folder
    names). Raises :class:`CutoffFormatError` on bad input (:class:`ReportArgumentError`
    for a flag value, :class:`ReportPathError` for an ``outdir`` that is a file or whose
    parent is missing), ``OSError`` when writing fails. The files are written into a
    temporary folder beside ``outdir`` and moved under their names once all are complete;
    a failure removes it, so no figure or summary is ever left half-written or missing from
    a set."""
    ds = open_output(source)
    ctx = None
    if against is not None:
        if labels is None:
            labels = (_label(against), _label(source))
            if labels[0] == labels[1]:
                labels = ("baseline", "policy")
        ctx = _against(ds, against, labels, ticks, top)
    elif ticks is not None or labels is not None:
        raise ReportArgumentError(f"{'--ticks' if ticks is not None else '--labels'}: only with --against BASELINE "
                                  "(the who-is-cut-off section compares a policy with its baseline)")
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ReportPathError(f"{outdir}: exists and is not a folder; allowed: a folder, or a name that does not exist")
    parent = os.path.dirname(os.path.abspath(outdir))
    if not os.path.isdir(parent):
        raise ReportPathError(f"{outdir}: not found: folder {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(outdir))}.part-", dir=parent)
    try:
        names = _write_into(ds, source, tmp, dpi, ctx)
        if not os.path.exists(outdir):
            os.rename(tmp, outdir)
        else:  # into an existing folder: each complete file replaces its old one atomically
            for name in names:
                os.replace(os.path.join(tmp, name), os.path.join(outdir, name))
            os.rmdir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [os.path.join(outdir, name) for name in names]


#: errno of a write failure -> (exit status, what went wrong, what to do), as core/hd/error.hpp.
_OS_ERRORS = {
    errno.ENOSPC: (1, "disk full", "free space or write elsewhere"),
    errno.EDQUOT: (1, "disk full", "free space or write elsewhere"),
    errno.EROFS: (2, "read-only or not permitted", "choose a folder you can write to"),
    errno.EACCES: (2, "read-only or not permitted", "choose a folder you can write to"),
    errno.EPERM: (2, "read-only or not permitted", "choose a folder you can write to"),
    errno.ENOENT: (2, "not found", "check the path"),
}


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed a whole number of 1 or more")
    return n


def _labels(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed two different names, BASELINE,POLICY")
    return tuple(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cutoff-report",
                                 description="The package's figures as PNG and a markdown summary; with --against, "
                                             "who is cut off, and why, under a policy against its baseline.")
    ap.add_argument("source", metavar="OUT.h5|OUTDIR",
                    help="a cutoff run file or an ensemble directory (with --against: the policy)")
    ap.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the PNGs and summary.md")
    ap.add_argument("--against", metavar="BASELINE.h5|DIR",
                    help="the baseline: a run file against a run file, an ensemble directory against one with the "
                         "same replicates (paired); adds who is cut off, and why")
    ap.add_argument("--ticks", type=parse_ticks, metavar="T|A:B",
                    help="with --against: the tick, or the window of ticks A to B (their shares averaged), of the "
                         "who-is-cut-off section (default: the last tick)")
    ap.add_argument("--top", type=_positive, default=10, metavar="N",
                    help="with --against: countries in the summary's country table (default 10; the CSV has all)")
    ap.add_argument("--labels", type=_labels, metavar="BASELINE,POLICY",
                    help="with --against: names of the two outputs (default their file or folder names)")
    ap.add_argument("--dpi", type=int, default=110)
    ap.add_argument("--verbose", action="store_true", help="on a failure, also print the Python traceback")
    args = ap.parse_args(argv)
    try:
        written = write_report(args.source, args.output, args.dpi, args.against, args.ticks, args.top, args.labels)
    except CutoffFormatError as e:
        print(f"cutoff-report: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        code, what, remedy = _OS_ERRORS.get(e.errno, (1, e.strerror or str(e), "see --verbose"))
        print(f"cutoff-report: {'error' if code == 2 else 'failed'}: {args.output}: {what} ({e.strerror or e}); "
              f"{remedy}; nothing was written", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return code
    except Exception as e:  # a failure while drawing: one line, the traceback on request
        print(f"cutoff-report: failed: {type(e).__name__}: {e} (--verbose shows where)", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 1
    print(f"cutoff-report: wrote {len(written)} files to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
