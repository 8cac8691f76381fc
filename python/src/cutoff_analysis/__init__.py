"""Analysis of cutoff's HDF5 output: loaders, helpers for the seeds' questions, plots
and the ``cutoff-report`` command."""
from .analysis import (ACCESS_LAYERS, CUT_OFF, INCOME_GROUPS, QUANTILES, STATUSES, TIERS, access_gap_by_tier, adoption_by, bands,
                       access_layers, capability, clearing_prices, cut_off_share, lorenz, lorenz_curve, status_shares, top20_share,
                       top_share, users_capped, weighted_mean_by)
from .compare import compare
from .io import (KNOWN_SCHEMA_VERSIONS, CutoffFormatError, calib_tick, followers, open_ensemble, open_output,
                 open_run, open_snapshots, open_summary, scenario_params, sweep_keys)
from .plots import (plot_access_gap, plot_adoption, plot_capability, plot_cut_off, plot_lorenz, plot_prices,
                    plot_top20, plot_users_capped)

__all__ = [
    "compare",
    "ACCESS_LAYERS",
    "access_layers",
    "CUT_OFF",
    "STATUSES",
    "cut_off_share",
    "status_shares",
    "plot_cut_off",
    "INCOME_GROUPS",
    "QUANTILES",
    "TIERS",
    "access_gap_by_tier",
    "adoption_by",
    "bands",
    "capability",
    "clearing_prices",
    "lorenz",
    "lorenz_curve",
    "top20_share",
    "top_share",
    "users_capped",
    "weighted_mean_by",
    "KNOWN_SCHEMA_VERSIONS",
    "CutoffFormatError",
    "calib_tick",
    "followers",
    "open_ensemble",
    "open_output",
    "open_run",
    "open_snapshots",
    "open_summary",
    "scenario_params",
    "sweep_keys",
    "plot_access_gap",
    "plot_adoption",
    "plot_capability",
    "plot_lorenz",
    "plot_prices",
    "plot_top20",
    "plot_users_capped",
]
__version__ = "0.1.0"
