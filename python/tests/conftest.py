"""Fixtures: small real runs made with the ``cutoff`` binary (``CUTOFF_BIN``, else
``cutoff`` on PATH; the tests that need one skip without it), and a tiny synthetic
Dataset for hand-computed checks."""
import os
import shutil
import subprocess
import warnings

import h5py
import numpy as np
import pytest
import xarray as xr

from cutoff_analysis.io import SEAL_BYTES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINE = os.path.join(ROOT, "data", "scenarios", "baseline.toml")
# tau0_ref_firms=0: τ0 derived on the run's own counts (v4's rule), as the C++ suite's small runs
# (tests/support.hpp, scenario()): no reference population of 1e5/1e6 per small run.
SMALL = ["--firms", "8000", "--users", "20000", "--set", "n_large=2500", "--set", "tau0_ref_firms=0"]
TICKS = 16  # past the calibration tick (14)


@pytest.fixture(scope="session")
def cutoff_bin():
    path = os.environ.get("CUTOFF_BIN") or shutil.which("cutoff")
    if not path:
        pytest.skip("no cutoff binary (set CUTOFF_BIN or put cutoff on PATH)")
    return path


def cutoff_run(binary, out, *args):
    subprocess.run([binary, "run", BASELINE, "-o", str(out), *SMALL, "--ticks", str(TICKS), "-q", *args], check=True)
    return str(out)


@pytest.fixture(scope="session")
def run_file(cutoff_bin, tmp_path_factory):
    """A small baseline run with firm and user snapshots, seed 3, replicate 1."""
    return cutoff_run(cutoff_bin, tmp_path_factory.mktemp("run") / "run.h5", "--seed", "3", "--replicate", "1",
                      "--snapshot-every", "5")


SWEEP = ("bm", [1.0, 2.5])
REPLICATES = 2


@pytest.fixture(scope="session")
def fake_ensemble_dir(cutoff_bin, tmp_path_factory):
    """LOADER TEST FIXTURE ONLY: an ensemble directory in the layout ``cutoff ensemble``
    writes (members/, ensemble.h5, summary.h5), put together here from ``cutoff run``
    outputs so that open_ensemble is tested on its own. Swept over bm, 2 replicates.
    Like the spec's minimum, ensemble.h5 holds coordinates for the dimensions only:
    the loader must take the country metadata from a member."""
    out = tmp_path_factory.mktemp("ens")
    os.makedirs(out / "members")
    key, values = SWEEP
    member = np.zeros((len(values), REPLICATES), dtype=np.int64)
    stacked = []
    for point, v in enumerate(values):
        reps = []
        for r in range(REPLICATES):
            m = point * REPLICATES + r
            member[point, r] = m
            path = cutoff_run(cutoff_bin, out / "members" / f"m{m:06d}.h5", "--replicate", str(r),
                              "--set", f"{key}={v}", "--snapshot-every", "5")
            with h5py.File(path, "a") as f:
                f.attrs["member"] = m
                f.attrs["ensemble_point"] = point
                f.attrs[key] = v
            with open(path, "r+b") as fh:  # changed after cutoff wrote it: no longer under its seal
                fh.write(bytes(SEAL_BYTES))
            with xr.open_dataset(path, group="metrics", engine="h5netcdf") as ds:
                reps.append(ds.reset_coords(drop=True).load())
        stacked.append(xr.concat(reps, dim="replicate"))
    ens = xr.concat(stacked, dim=key).assign_coords({key: np.array(values), "replicate": np.arange(REPLICATES)})
    ens["member"] = ((key, "replicate"), member)
    ens = ens.transpose(key, "replicate", "tick", ...)
    root = {"scenario": "baseline", "replicates": REPLICATES, "sweep_keys": key, "schema_version": 1,
            "version": "0.1.0"}
    ens.to_netcdf(out / "ensemble.h5", group="metrics", engine="h5netcdf")
    stats = {"mean": ens.mean("replicate"), "std": ens.std("replicate")}
    with warnings.catch_warnings():  # prices of classes that bought nothing are NaN in every replicate
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, q in (("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95)):
            stats[name] = ens.quantile(q, dim="replicate").drop_vars("quantile")
    summary = xr.concat(list(stats.values()), dim="stat").assign_coords(stat=list(stats)).drop_vars("member")
    summary.to_netcdf(out / "summary.h5", group="metrics", engine="h5netcdf")
    for name, kind in (("ensemble.h5", "ensemble"), ("summary.h5", "summary")):
        with h5py.File(out / name, "a") as f:
            f.attrs.update({**root, "kind": kind})
    return str(out)


def _statuses():
    a = np.zeros((2, 3, 4, 6))
    a[:, 0, :, 5] = 2.0                      # AAA: 2 served firms in every size class
    a[:, 1, :, 1] = 1.0                      # BBB: 1 without budget ...
    a[:, 2, :, 2] = 1.0                      # CCC: 1 priced out ...
    a[1, 2, 0, 3] = 4.0                      # ... and at tick 1, 4 small rationed firms
    return a


@pytest.fixture
def tiny():
    """Three countries, two providers (B a follower), two ticks, by hand."""
    scenario = '[[provider]]\nname = "A"\nfollower = false\n\n[[provider]]\nname = "B"\nfollower = true\n' \
               'calib_tick = 1\n'
    ds = xr.Dataset(
        {
            "adoption_share": (("tick", "country"), [[0.5, 0.1, 0.2], [0.6, 0.3, 0.4]], {"units": "1"}),
            "access_gap": (("tick", "country"), [[1.0, np.nan, 2.0], [0.5, 1.0, 3.0]], {"units": "K"}),
            "frontier_K": (("tick", "provider"), [[3.0, 2.0], [3.5, 3.2]], {"units": "K"}),
            "K_lead": (("tick",), [3.0, 3.5], {"units": "K"}),
            "released_frontier": (("tick",), [2.5, 3.0], {"units": "K"}),
            "compute_price": (("tick", "provider"), [[1.0, 2.0], [3.0, 4.0]], {"units": "USD per H100e-month"}),
            "price": (("tick", "provider", "class"), np.arange(8.0).reshape(2, 2, 2), {"units": "USD per Mtok"}),
            "users_capped_share": (("tick",), [0.1, 0.2], {"units": "1"}),
            "top20_value_share": (("tick",), [0.7, 0.8], {"units": "1"}),
            # tick × country × size class × status: country AAA's firms all served, the
            # others split; employment 10 per firm.
            "firms_by_status": (("tick", "country", "size_class", "status"), _statuses(), {"units": "firms"}),
            "employment_by_status": (("tick", "country", "size_class", "status"), 10 * _statuses(),
                                     {"units": "workers"}),
        },
        coords={
            "tick": [0, 1], "provider": ["A", "B"], "class": ["gov", "consumer"], "country": ["AAA", "BBB", "CCC"],
            "size_class": ["1-9", "10-49", "50-249", "250+"],
            "status": ["no_access", "no_budget", "priced_out", "rationed", "budget_bound", "served"],
            "population": ("country", [1.0, 3.0, 4.0]),
            "income_group": ("country", ["high", "high", "low"]),
            "tier": ("country", [1, 2, 2]),
        },
        attrs={"scenario": scenario, "cutoff_kind": "run"},
    )
    return ds
