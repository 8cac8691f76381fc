"""Analysis of cutoff's HDF5 output: loaders, helpers for the seeds' questions, plots
and the ``cutoff-report`` command."""
from .analysis import (INCOME_GROUPS, QUANTILES, TIERS, access_gap_by_tier, adoption_by, bands, capability,
                       clearing_prices, lorenz, lorenz_curve, top20_share, top_share, users_capped,
                       weighted_mean_by)
from .io import (KNOWN_SCHEMA_VERSIONS, CutoffFormatError, calib_tick, followers, open_ensemble, open_output,
                 open_run, open_snapshots, open_summary, scenario_params, sweep_keys)
from .plots import (plot_access_gap, plot_adoption, plot_capability, plot_lorenz, plot_prices, plot_top20,
                    plot_users_capped)

__all__ = [
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
