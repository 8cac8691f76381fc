#!/usr/bin/env python3
"""bench/scenario_table.py can fail (pytest; ctest's Bench.ScenarioTable): on one tiny
paired ensemble (5e3 firms, 2e4 users, 30 ticks, 2 replicates, the baseline with the
moratorium and compute-for-access, v5's product layer on so that every layer is used):

* the baseline against itself is an effect of exactly 0 with an interval of width 0;
* the access layers of each tier and size class sum to 1 wherever the class has firms;
* an effect the script prints (its --csv) equals the same effect computed by hand from
  the raw HDF5 of the members (found by their own attributes, not by the script's code);
* a bad --configs, --scenarios, --set or --subset exits 2 with one line naming the flag and value.

Skips without pytest, h5py, xarray or a cutoff binary ($CUTOFF_BIN, build/cutoff, PATH).
"""
import csv
import glob
import math
import os
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")
pytest.importorskip("xarray")
stats = pytest.importorskip("scipy.stats")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python", "src"))
import scenario_table as st  # noqa: E402
from cutoff_analysis.explore import split_scenarios  # noqa: E402
from cutoff_analysis.io import open_ensemble  # noqa: E402
from cutoff_analysis.schema import default_cutoff  # noqa: E402

CUTOFF = default_cutoff()
CONFIG = "v5:seats=true,need_sat=30,plan_pass=1,plan_split=true,firm_bass=true"
SIZE = ["--seeds", "2", "--firms", "5e3", "--users", "2e4", "--ticks", "30", "--jobs", "2"]
SCENARIOS = "moratorium,compute-for-access"
TICK = 24

pytestmark = pytest.mark.skipif(CUTOFF is None, reason="no cutoff binary (build it or set CUTOFF_BIN)")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Runs the script once; returns (keep directory, CSV rows, the runs of its configuration)."""
    tmp = tmp_path_factory.mktemp("scenario-table")
    keep, out = str(tmp / "keep"), str(tmp / "table.csv")
    rc = st.main(["--configs", CONFIG, "--scenarios", SCENARIOS, *SIZE, "--cutoff", CUTOFF, "--keep", keep,
                  "--csv", out])
    assert rc == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    (member_dir,) = glob.glob(os.path.join(keep, "v5-*"))
    runs = split_scenarios(open_ensemble(member_dir))
    return member_dir, rows, runs


def test_every_cell_once(table):
    _, rows, _ = table
    keys = [(r["config"], r["tick"], r["figure"], r["scenario"]) for r in rows]
    assert len(keys) == len(set(keys))
    figures = {r["figure"] for r in rows}
    assert len(figures) == 3 * 4 * 3 + 8  # layers by tier and size class, and the eight others
    assert len(keys) == len(figures) * len(SCENARIOS.split(",") + ["baseline"])  # one tick (24), one configuration


def test_baseline_against_itself_is_exactly_zero(table):
    _, _, runs = table
    base = runs["baseline"]
    levels, res, _ = st.effects({"baseline": base, "itself": base}, [TICK])
    eff = res.sel(scenario="itself")
    finite = np.isfinite(eff["effect"].values)
    assert finite.sum() > 30  # most figures exist at this size
    assert np.all(eff["effect"].values[finite] == 0.0)
    assert np.all(eff["lo"].values[finite] == 0.0) and np.all(eff["hi"].values[finite] == 0.0)
    # A figure is NaN in the comparison only where the baseline's level is NaN too.
    for f, ok in zip(eff["figure"].values, finite.ravel(), strict=True):
        if not ok:
            assert not math.isfinite(levels[(TICK, f)][0]), f


def test_layers_sum_to_one_where_firms_exist(table):
    _, _, runs = table
    for name, ds in runs.items():
        fig = st.figures(ds, [TICK])
        firms = ds["firms_by_status"].sel(tick=TICK).groupby(ds["tier"]).sum("country").sum("status")
        for t in st.TIERS:
            for s in st.SIZES:
                total = sum(fig.sel(figure=f"tier{t} {s} {la}", tick=TICK).values for la in st.LAYERS)
                has = firms.sel(tier=t, size_class=s).values > 0
                assert np.allclose(total[has], 1.0, atol=1e-12), (name, t, s, total)
                assert np.all(np.isnan(total[~has])), (name, t, s, total)


def member_files(member_dir):
    """{(scenario, replicate): path} from the members' own attributes."""
    out = {}
    for path in sorted(glob.glob(os.path.join(member_dir, "members", "m*.h5"))):
        with h5py.File(path, "r") as f:
            s = f.attrs["ensemble_scenario"]
            out[(s.decode() if isinstance(s, bytes) else str(s), int(f.attrs["replicate"]))] = path
    return out


def by_hand(path, figure):
    """One member's figure at TICK from its raw HDF5."""
    with h5py.File(path, "r") as f:
        m = f["metrics"]
        t = list(m["tick"][()]).index(TICK)
        if figure == "users_capped":
            return float(m["users_capped_share"][t])
        tier, size, layer = figure.split()
        status = [s.decode() if isinstance(s, bytes) else str(s) for s in m["status"][()]]
        sizes = [s.decode() if isinstance(s, bytes) else str(s) for s in m["size_class"][()]]
        members = {"none": ("no_access", "no_value", "no_budget", "priced_out", "not_adopted"),
                   "seats": ("seats", "seats_capped"), "api": ("rationed", "budget_bound", "served")}[layer]
        firms = m["firms_by_status"][t][m["tier"][()] == int(tier[4:]), sizes.index(size), :].sum(axis=0)
        return float(sum(firms[status.index(s)] for s in members) / firms.sum())


@pytest.mark.parametrize("figure", ["users_capped", "tier2 1-9 none", "tier1 1-9 seats"])
def test_effect_equals_a_hand_computation_from_the_members(table, figure):
    member_dir, rows, _ = table
    files = member_files(member_dir)
    d = np.array([by_hand(files[("moratorium", r)], figure) - by_hand(files[("baseline", r)], figure)
                  for r in (0, 1)])
    mean = d.mean()
    half = stats.t.ppf(0.975, 1) * d.std(ddof=1) / math.sqrt(2)
    (row,) = [r for r in rows if r["scenario"] == "moratorium" and r["figure"] == figure and int(r["tick"]) == TICK]
    assert float(row["mean"]) == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert float(row["lo"]) == pytest.approx(mean - half, rel=1e-9, abs=1e-12)
    assert float(row["hi"]) == pytest.approx(mean + half, rel=1e-9, abs=1e-12)
    base = [r for r in rows if r["scenario"] == "baseline" and r["figure"] == figure and int(r["tick"]) == TICK]
    assert float(base[0]["mean"]) == pytest.approx(np.mean([by_hand(files[("baseline", r)], figure) for r in (0, 1)]),
                                                   rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("flag,value", [
    ("--configs", "v4"),                        # no colon
    ("--configs", "v5:seats"),                  # a key without a value
    ("--configs", "v4:;v4:seats=true"),         # a label twice
    ("--configs", "v5:no_such_key=1"),          # a key cutoff does not know
    ("--scenarios", "no-such-scenario"),
    ("--scenarios", "baseline"),
    ("--set", "seats"),
    ("--subset", "v4=no-such-scenario"),
])
def test_bad_arguments_exit_2_naming_the_flag_and_value(flag, value, tmp_path):
    args = [sys.executable, os.path.join(HERE, "scenario_table.py"), *SIZE, "--cutoff", CUTOFF,
            "--keep", str(tmp_path), flag, value]
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python", "src")})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert flag in lines[0], lines[0]
    assert f"'{value}'" in lines[0], lines[0]
    assert not os.listdir(tmp_path)  # nothing ran


if __name__ == "__main__":
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", __file__, *sys.argv[1:]]))


def test_v4_sets_are_the_schema_defaults_of_keys_the_baseline_changes():
    """versions.V4_SETS gives back v4: each key takes its schema default (v4's value, docs/parameters.md)
    and is one the baseline sets to something else (its v5 block), so the list cannot go stale."""
    from cutoff_analysis.schema import schema
    import versions

    keys = schema(CUTOFF)
    base = subprocess.run([CUTOFF, "validate", os.path.join(ROOT, "data", "scenarios", "baseline.toml"), "--print"],
                          capture_output=True, text=True, check=True).stdout
    resolved = dict(line.split(" = ", 1) for line in base.splitlines() if " = " in line)
    for kv in versions.V4_SETS:
        key, value = kv.split("=", 1)
        default = keys[key].default.strip("`")
        assert value == default or float(value) == float(default), f"{kv}: the schema's default is {default}"
        assert resolved[key].strip('"') != default, f"{key}: the baseline does not change it"
