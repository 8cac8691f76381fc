"""Analysis of cutoff's HDF5 output: loaders, helpers for the seeds' questions, plots,
paired comparisons, who is cut off and why (:mod:`cutoff_analysis.who`), designs with
their sensitivity indices and scenario discovery (:mod:`cutoff_analysis.explore`), an
EMA Workbench model (:mod:`cutoff_analysis.ema`, imported on its own) and the
``cutoff-report`` command."""
from .analysis import (ACCESS_LAYERS, CUT_OFF, INCOME_GROUPS, QUANTILES, STATUSES, TIERS, access_gap_by_tier, adoption_by, bands,
                       access_layers, capability, clearing_prices, cut_off_share, lorenz, lorenz_curve, lorenz_of,
                       status_shares, top20_share, top_share, users_capped, weighted_mean_by)
from . import explore, who
from .compare import compare
from .explore import (CutoffError, morris_design, morris_indices, outputs, run_design, run_scenarios, sobol_design,
                      sobol_indices)
from .io import (KNOWN_SCHEMA_VERSIONS, CutoffFormatError, calib_tick, followers, open_ensemble, open_output,
                 open_run, open_snapshots, open_summary, scenario_params, sweep_keys)
from .plots import (plot_access_gap, plot_adoption, plot_capability, plot_cut_off, plot_lorenz, plot_prices,
                    plot_top20, plot_users_capped, plot_who_is_cut_off)
from .who import country_table, cut_off_changes, headline, who_changes, who_is_cut_off

__all__ = [
    "compare",
    "explore",
    "who",
    "who_is_cut_off",
    "who_changes",
    "cut_off_changes",
    "country_table",
    "headline",
    "plot_who_is_cut_off",
    "CutoffError",
    "morris_design",
    "morris_indices",
    "outputs",
    "run_design",
    "run_scenarios",
    "sobol_design",
    "sobol_indices",
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
    "lorenz_of",
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
