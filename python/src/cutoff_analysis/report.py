"""``cutoff-report OUT.h5|OUTDIR -o DIR``: the package's figures as PNG and a short
markdown summary (key numbers at the calibration tick and the last tick).

Exit status, as the ``cutoff`` command line's: 0 written; 2 bad input or an unusable
path (not a cutoff output, an unknown schema version, a corrupt or truncated file, an
``-o`` that is a file, a folder that cannot be written), with one line naming the path;
1 a failure while writing (a full disk), with one line and nothing left behind. The
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
import xarray as xr  # noqa: E402

from . import analysis as an  # noqa: E402
from . import plots  # noqa: E402
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


def summary_markdown(ds: xr.Dataset, source: str, figures: list[tuple[str, str]]) -> str:
    params = scenario_params(ds)
    ticks = [int(t) for t in (calib_tick(ds), int(ds["tick"].values[-1])) if t is not None]
    ticks = list(dict.fromkeys(ticks))
    kind = ds.attrs.get("cutoff_kind")
    lines = [f"# cutoff report: {os.path.basename(os.path.normpath(source))}", ""]
    if params.get("description"):
        lines += [f"Scenario: {params['description']}.", ""]
    what = f"one run (seed {ds.attrs.get('seed')}, replicate {ds.attrs.get('replicate')})" if kind == "run" else \
        f"an ensemble of {ds.sizes.get('replicate', 1)} replicates" + \
        (f" swept over {', '.join(sweep_keys(ds))}" if sweep_keys(ds) else "") + \
        "; values are medians with the 5-95% range over replicates"
    lines += [f"Source `{source}`: {what}; {ds.sizes['tick']} ticks"
              + (f", calibration tick {calib_tick(ds)}" if calib_tick(ds) is not None else "") + ".", ""]
    header = "| quantity | " + " | ".join(f"tick {t}" for t in ticks) + " |"
    lines += [header, "|---" * (len(ticks) + 1) + "|"]
    for name, da in key_numbers(ds):
        for suffix, part in plots.series(da, ("tick", "replicate")):
            label = f"{name} ({suffix})" if suffix else name
            lines.append(f"| {label} | " + " | ".join(_fmt(part.sel(tick=t)) for t in ticks) + " |")
    lines += ["", "## Figures"]
    lines += [f"\n### {caption}\n\n![{caption}]({name})" for name, caption in figures]
    missing = [caption for stem, _, caption in FIGURES if f"{stem}.png" not in dict(figures)]
    if missing:
        lines += ["", "Not drawn: " + "; ".join(missing) + " (needs firm snapshots: `cutoff run --snapshot-every K`)."]
    return "\n".join(lines) + "\n"


class ReportPathError(CutoffFormatError):
    """An ``-o`` the report cannot use (bad input: exit 2)."""


def _write_into(ds, source: str, folder: str, dpi: int) -> list[str]:
    names, figures = [], []
    for stem, plot, caption in FIGURES:
        fig = plot(ds)
        if fig is None:  # e.g. no snapshots for the Lorenz curve
            continue
        name = f"{stem}.png"
        try:
            fig.savefig(os.path.join(folder, name), dpi=dpi)
        finally:
            plt.close(fig)
        names.append(name)
        figures.append((name, caption))
    with open(os.path.join(folder, "summary.md"), "w") as f:
        f.write(summary_markdown(ds, source, figures))
    names.append("summary.md")
    return names


def write_report(source: str, outdir: str, dpi: int = 110) -> list[str]:
    """Writes each figure of :data:`FIGURES` as PNG and ``summary.md`` into ``outdir``;
    returns the files written. Raises :class:`CutoffFormatError` on bad input (and
    :class:`ReportPathError` for an ``outdir`` that is a file or whose parent is missing),
    ``OSError`` when writing fails. The files are written into a temporary folder beside
    ``outdir`` and moved under their names once all are complete; a failure removes it,
    so no figure or summary is ever left half-written or missing from a set."""
    ds = open_output(source)
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ReportPathError(f"{outdir}: exists and is not a folder; allowed: a folder, or a name that does not exist")
    parent = os.path.dirname(os.path.abspath(outdir))
    if not os.path.isdir(parent):
        raise ReportPathError(f"{outdir}: not found: folder {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(outdir))}.part-", dir=parent)
    try:
        names = _write_into(ds, source, tmp, dpi)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cutoff-report", description=__doc__.splitlines()[0].split(": ", 1)[-1])
    ap.add_argument("source", metavar="OUT.h5|OUTDIR", help="a cutoff run file or an ensemble directory")
    ap.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the PNGs and summary.md")
    ap.add_argument("--dpi", type=int, default=110)
    ap.add_argument("--verbose", action="store_true", help="on a failure, also print the Python traceback")
    args = ap.parse_args(argv)
    try:
        written = write_report(args.source, args.output, args.dpi)
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
