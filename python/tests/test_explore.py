"""Designs, outputs, sensitivity indices and scenario discovery (cutoff_analysis.explore):
against SALib's own analysis of the Ishigami function and its analytic indices, against
outputs computed by hand on a Dataset shaped like a --design ensemble, and against boxes
known in advance."""
import os
import stat

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("SALib")
pytest.importorskip("ema_workbench")

from SALib.analyze import morris as salib_morris  # noqa: E402
from SALib.analyze import sobol as salib_sobol  # noqa: E402
from SALib.sample import morris as salib_morris_sample  # noqa: E402
from SALib.sample import sobol as salib_sobol_sample  # noqa: E402
from SALib.test_functions import Ishigami  # noqa: E402

from cutoff_analysis import explore as ex  # noqa: E402
from cutoff_analysis.schema import parse_params_doc, schema  # noqa: E402

PI = np.pi
ISHIGAMI = {"x1": [-PI, PI], "x2": [-PI, PI], "x3": [-PI, PI]}
# Analytic indices of Ishigami (a = 7, b = 0.1).
S1_TRUE = np.array([0.3139, 0.4424, 0.0])
ST_TRUE = np.array([0.5576, 0.4424, 0.2437])


def test_space_from_dict_and_toml(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('kappa = [0.4, 1.4]\nmoratorium = [0, 1]\n"provider.0.offset" = [-1, 1]\n')
    assert ex.load_space(str(f)) == {"kappa": (0.4, 1.4), "moratorium": (0.0, 1.0), "provider.0.offset": (-1.0, 1.0)}
    assert ex.load_space({"bm": [0.5, 2]}) == {"bm": (0.5, 2.0)}
    for bad, msg in (({}, "no parameters"), ({"bm": [2, 1]}, "below"), ({"bm": [1]}, "two numbers"),
                     ({"bm": "x"}, "two numbers")):
        with pytest.raises(ValueError, match=msg):
            ex.load_space(bad)


def test_schema_reads_types_ranges_and_levers():
    keys = schema(None)  # docs/parameters.md
    assert keys["kappa"].type == "real" and (keys["kappa"].lo, keys["kappa"].hi) == (0.0, 10.0)
    assert keys["lead"].type == "integer"
    assert keys["moratorium"].type == "bool" and keys["moratorium"].is_lever
    assert keys["p_max"].hi == np.inf
    with pytest.raises(ValueError, match="Scenario keys"):
        parse_params_doc("# nothing here\n")


def test_sobol_design_rounds_levers_and_integers_and_writes_the_csv(tmp_path):
    space = {"kappa": [0.4, 1.4], "lead": [6, 18], "moratorium": [0, 1]}
    d = ex.sobol_design(space, 16, seed=4, path=str(tmp_path / "d.csv"))
    assert len(d) == 16 * (3 + 2) and list(d.columns) == list(space)
    assert set(d["moratorium"].unique()) == {0, 1}
    assert d["lead"].dtype.kind == "i" and d["lead"].between(6, 18).all()
    assert d["kappa"].between(0.4, 1.4).all() and d["kappa"].nunique() > 10
    raw = salib_sobol_sample.sample(d.attrs["problem"], 16, calc_second_order=False, seed=4)
    np.testing.assert_array_equal(d["kappa"].to_numpy(), raw[:, 0])
    np.testing.assert_array_equal(d["moratorium"].to_numpy(), (raw[:, 2] >= 0.5).astype(int))
    back = ex.read_design(str(tmp_path / "d.csv"))
    pd.testing.assert_frame_equal(back, d, check_dtype=False)
    assert back.attrs["method"] == "sobol" and back.attrs["kinds"]["moratorium"] == "bool"
    header = (tmp_path / "d.csv").read_text().splitlines()[0]
    assert header == "kappa,lead,moratorium"


def test_sobol_indices_of_ishigami_match_salib_and_the_analytic_values():
    design = ex.sobol_design(ISHIGAMI, 1024, seed=7)
    results = pd.DataFrame({"y": Ishigami.evaluate(design.to_numpy()), "y2": 2 * Ishigami.evaluate(design.to_numpy())})
    si = ex.sobol_indices(design, results, resamples=200, seed=5)
    assert list(si.columns) == ["output", "input", "S1", "S1_lo", "S1_hi", "ST", "ST_lo", "ST_hi"]
    # SALib's own path on its own sample: the same numbers.
    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-PI, PI]] * 3}
    X = salib_sobol_sample.sample(problem, 1024, calc_second_order=False, seed=7)
    ref = salib_sobol.analyze(problem, Ishigami.evaluate(X), calc_second_order=False, num_resamples=200,
                              conf_level=0.95, seed=5)
    y = si[si["output"] == "y"]
    np.testing.assert_array_equal(y["S1"].to_numpy(), ref["S1"])
    np.testing.assert_array_equal(y["ST"].to_numpy(), ref["ST"])
    np.testing.assert_allclose((y["S1_hi"] - y["S1_lo"]).to_numpy(), 2 * ref["S1_conf"])
    np.testing.assert_allclose((y["ST_hi"] - y["ST_lo"]).to_numpy(), 2 * ref["ST_conf"])
    # ... and close to the analytic indices, which the intervals hold.
    np.testing.assert_allclose(y["S1"].to_numpy(), S1_TRUE, atol=0.06)
    np.testing.assert_allclose(y["ST"].to_numpy(), ST_TRUE, atol=0.06)
    assert ((y["ST_lo"] < ST_TRUE) & (ST_TRUE < y["ST_hi"])).all()
    # Scaling an output does not change its indices.
    np.testing.assert_allclose(si[si["output"] == "y2"]["S1"].to_numpy(), y["S1"].to_numpy())


def test_sobol_indices_refuse_a_wrong_table_and_flag_nan_outputs():
    design = ex.sobol_design(ISHIGAMI, 8, seed=1)
    with pytest.raises(ValueError, match="rows"):
        ex.sobol_indices(design, pd.DataFrame({"y": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a sobol design"):
        ex.sobol_indices(pd.DataFrame(design.to_numpy()), pd.DataFrame({"y": np.zeros(len(design))}))
    y = Ishigami.evaluate(design.to_numpy())
    y[3] = np.nan
    with pytest.warns(UserWarning, match="NaN at 1 points"):
        si = ex.sobol_indices(design, pd.DataFrame({"y": y}))
    assert si["S1"].isna().all()


def test_morris_indices_match_salib():
    design = ex.morris_design(ISHIGAMI, 40, levels=4, seed=2)
    assert len(design) == 40 * 4
    y = Ishigami.evaluate(design.to_numpy())
    mi = ex.morris_indices(design, {"y": y}, resamples=100, seed=3)
    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-PI, PI]] * 3}
    X = salib_morris_sample.sample(problem, 40, num_levels=4, seed=2)
    ref = salib_morris.analyze(problem, X, Ishigami.evaluate(X), num_resamples=100, num_levels=4, seed=3)
    np.testing.assert_allclose(mi["mu_star"].to_numpy(), ref["mu_star"])
    np.testing.assert_allclose(mi["sigma"].to_numpy(), ref["sigma"])
    # x3 acts only with x1: its mean effect is about 0, its absolute one is not.
    x3 = mi.set_index("input").loc["x3"]
    assert abs(x3["mu"]) < x3["mu_star"] / 2


def _design_ensemble(tiny):
    """A Dataset shaped like `cutoff ensemble --design`'s ensemble.h5: metrics over
    (point, replicate, tick, ...), one coordinate per design column over point."""
    ds = tiny.assign_coords(tier=("country", [1, 2, 3]), provider_home=("provider", ["USA", "CHN"]))
    ds["follower_lag"] = (("tick", "provider"), [[np.nan, 2.0], [np.nan, 4.0]])
    points = []
    for p in range(2):
        reps = []
        for r in range(2):
            m = ds.copy(deep=True)
            if p == 1:  # AAA's served firms doubled
                m["firms_by_status"].loc[dict(country="AAA", status="served")] *= 2
            m["users_capped_share"] = m["users_capped_share"] + 0.1 * r
            reps.append(m)
        points.append(xr.concat(reps, dim="replicate"))
    ens = xr.concat(points, dim="point").assign_coords(point=[0, 1], replicate=[0, 1])
    ens = ens.assign_coords(markup=("point", [0.3, 1.0]), bm=("point", [1.0, 2.0]))
    ens.attrs.update({"design_keys": "markup,bm", "design_file": "d.csv", "kind": "ensemble"})
    return ens.transpose("point", "replicate", "tick", ...)


def test_outputs_per_point_by_hand(tiny):
    ens = _design_ensemble(tiny)
    out = ex.outputs(ens)  # the last tick, 1
    assert list(out.index) == [0, 1] and list(out.columns) == list(ex.OUTPUTS)
    # Tick 1: AAA (tier 1) 2 served firms per size class; BBB (tier 2) 1 no_budget; CCC (tier 3)
    # 1 priced out, and 4 rationed small firms of 1-9 employees.
    assert out.loc[0, "cut_off_small_tier1"] == 0.0
    assert out.loc[0, "cut_off_small_tier2"] == 1.0 and out.loc[0, "cut_off_large_tier3"] == 1.0
    assert out.loc[0, "cut_off_all_world"] == pytest.approx(12 / 20)
    assert out.loc[1, "cut_off_all_world"] == pytest.approx(12 / 28)
    assert out.loc[0, "cut_off_small_world"] == pytest.approx(8 / 12)
    # US price: provider A (USA) at tick 1 = 3.0, over p_min of each point's markup.
    c = 600 + 30000 / 36
    assert out.loc[0, "us_price"] == pytest.approx(3.0 / (1.3 * c))
    assert out.loc[1, "us_price"] == pytest.approx(3.0 / (2.0 * c))
    assert out.loc[0, "users_capped"] == pytest.approx(0.25)  # 0.2 and 0.3 over the replicates
    assert out.loc[0, "tier3_gap"] == pytest.approx(3.0)
    assert out.loc[0, "follower_lag"] == pytest.approx(3.0)  # B's lag, ticks 0-1
    # A sweep over markup (a dimension coordinate) prices each cell at its own p_min.
    swept = ex.outputs(ens.swap_dims(point="markup").drop_vars(["point", "bm"]))
    assert swept.loc[1.0, "us_price"] == pytest.approx(3.0 / (2.0 * c))
    first = ex.outputs(ens, tick=0)
    assert first.loc[0, "users_capped"] == pytest.approx(0.15)
    keep = ex.outputs(ens, replicates="keep")
    assert keep.index.names == ["point", "replicate"] and len(keep) == 4
    with pytest.raises(ValueError, match="tick 5"):
        ex.outputs(ens, tick=5)
    d = ex.design_table(ens)
    assert list(d.columns) == ["markup", "bm"] and d.loc[1, "bm"] == 2.0


def test_split_scenarios_gives_runs_for_compare(tiny):
    ens = _design_ensemble(tiny).isel(point=0, drop=True)
    both = xr.concat([ens, ens], dim="scenario").assign_coords(scenario=["baseline", "moratorium"])
    runs = ex.split_scenarios(both)
    assert list(runs) == ["baseline", "moratorium"] and "scenario" not in runs["baseline"].dims
    with pytest.raises(ValueError, match="scenario"):
        ex.split_scenarios(ens)


def _fake_cutoff(tmp_path, code, message):
    """A stand-in for the binary: records its arguments, prints `message`, exits `code`."""
    script = tmp_path / "fake-cutoff"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\necho "{message}" >&2\nexit {code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_run_design_passes_the_design_and_surfaces_the_cli_error(tmp_path):
    fake = _fake_cutoff(tmp_path, 2, "cutoff: error: --design d.csv: row 2, column 'kappa': 12 out of range 0 to 10")
    design = ex.sobol_design({"kappa": [0.4, 1.4], "moratorium": [0, 1]}, 4, seed=1)
    with pytest.raises(ex.CutoffError, match="row 2, column 'kappa'") as e:
        ex.run_design("base.toml", design, str(tmp_path / "out"), replicates=3, firms=2000, ticks=5, cutoff=fake,
                      sets=["n_large=500"])
    assert e.value.returncode == 2
    args = (tmp_path / "args").read_text().split("\n")
    assert args[:4] == ["ensemble", "base.toml", "-o", str(tmp_path / "out")]
    csv = args[args.index("--design") + 1]
    assert csv == str(tmp_path / "out.design.csv")
    pd.testing.assert_frame_equal(pd.read_csv(csv), design.reset_index(drop=True), check_dtype=False)
    for flag, v in (("--replicates", "3"), ("--firms", "2000"), ("--ticks", "5"), ("--set", "n_large=500")):
        assert args[args.index(flag) + 1] == v
    assert "--users" not in args


def _boxed(n=2000, seed=0):
    """Inputs a, b, c uniform on [0, 1] and a lever; interest exactly where a > 0.6 and b < 0.3."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["a", "b", "c"])
    x["lever"] = rng.integers(0, 2, n)
    results = pd.DataFrame({"cut_off_small_tier1": np.where((x.a > 0.6) & (x.b < 0.3), 0.8, 0.2)})
    return x, results


def test_prim_finds_the_known_box():
    x, results = _boxed()
    found = ex.prim(x, results, lambda r: r["cut_off_small_tier1"] > 0.5, threshold=0.95)
    lim = found.limits
    assert list(found.table().index) == ["a", "b"]  # c and the lever are not restricted
    assert lim.loc["a", "lo"] == pytest.approx(0.6, abs=0.03) and lim.loc["b", "hi"] == pytest.approx(0.3, abs=0.03)
    assert found.stats["density"] >= 0.95 and found.stats["coverage"] >= 0.9
    assert found.stats["share_of_interest"] == pytest.approx(((x.a > 0.6) & (x.b < 0.3)).mean())
    t = found.trajectory
    assert t["chosen"].sum() == 1 and t.loc[t["chosen"], "coverage"].item() == found.stats["coverage"]
    # coverage and density recomputed from the box's limits
    inside = np.ones(len(x), bool)
    for col, r in lim.iterrows():
        inside &= (x[col] >= r["lo"]) & (x[col] <= r["hi"])
    y = (results["cut_off_small_tier1"] > 0.5).to_numpy()
    assert found.stats["coverage"] == pytest.approx((inside & y).sum() / y.sum())
    assert found.stats["density"] == pytest.approx((inside & y).sum() / inside.sum())
    fig = found.figure()
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="no design point"):
        ex.prim(x, results, lambda r: r["cut_off_small_tier1"] > 0.9)


def test_cart_gives_the_known_box_as_its_densest_leaf():
    x, results = _boxed()
    leaves = ex.cart(x, results, lambda r: r["cut_off_small_tier1"] > 0.5)
    best = leaves.iloc[0]
    assert best["density"] == 1.0 and best["coverage"] == 1.0
    assert "a" in best["limits"] and "b" in best["limits"] and "c ≤" not in best["limits"]
    assert leaves["mass"].sum() == pytest.approx(1.0)


def test_plot_sobol_draws_a_panel_per_output():
    design = ex.sobol_design(ISHIGAMI, 64, seed=1)
    y = Ishigami.evaluate(design.to_numpy())
    si = ex.sobol_indices(design, {"y": y, "z": y ** 2}, resamples=50)
    fig = ex.plot_sobol(si)
    assert len(fig.axes) == 2
    assert os.path.basename(ex.__file__) == "explore.py"


# --- End to end with the binary (cutoff ensemble --design / --scenarios) ----------------

TINY = ["n_large=500", "tau0_ref_firms=0", "min_firms=5", "min_users=20"]
SIZE = dict(firms=2000, users=8000, ticks=13, jobs=2, sets=TINY)


@pytest.fixture(scope="module")
def design_bin(cutoff_bin):
    import subprocess
    text = subprocess.run([cutoff_bin, "ensemble", "--help"], capture_output=True, text=True).stdout
    if "--design" not in text or "--scenarios" not in text:
        pytest.skip("this cutoff has no ensemble --design / --scenarios")
    return cutoff_bin


def test_run_design_end_to_end(design_bin, tmp_path):
    from conftest import BASELINE
    design = pd.DataFrame({"kappa": [0.5, 1.2, 0.5], "moratorium": [0, 0, 1]})
    ds = ex.run_design(BASELINE, design, str(tmp_path / "d"), replicates=2, cutoff=design_bin, **SIZE)
    assert ds["compute_price"].dims[:3] == ("point", "replicate", "tick") and ds.sizes["point"] == 3
    pd.testing.assert_frame_equal(ex.design_table(ds), design.rename_axis("point"), check_dtype=False)
    out = ex.outputs(ds)
    assert list(out.index) == [0, 1, 2]
    for col in ("us_price", "users_capped", "tier3_gap", "cut_off_all_world"):
        assert np.isfinite(out[col]).all(), col
    assert out["users_capped"].between(0, 1).all()
    assert out.loc[0, "us_price"] != out.loc[1, "us_price"]  # kappa moves the price
    # Point 2, replicate 1 is the run with the point's values set and replicate 1.
    import subprocess
    run = str(tmp_path / "run.h5")
    sets = [a for s in TINY + ["kappa=0.5", "moratorium=true"] for a in ("--set", s)]
    subprocess.run([design_bin, "run", BASELINE, "-o", run, "-q", "--firms", "2000", "--users", "8000", "--ticks", "13",
                    "--replicate", "1", *sets], check=True)
    from cutoff_analysis.io import open_run
    with open_run(run) as one:
        pd.testing.assert_series_equal(ex.outputs(ds, replicates="keep").loc[(2, 1)], ex.outputs(one).iloc[0],
                                       check_names=False)
    # A bad design exits 2 with the CLI's message naming the column.
    with pytest.raises(ex.CutoffError, match="kappa") as e:
        ex.run_design(BASELINE, pd.DataFrame({"kappa": [0.5, 12.0]}), str(tmp_path / "bad"), cutoff=design_bin,
                      **SIZE)
    assert e.value.returncode == 2


def test_run_scenarios_pairs_members_for_compare(design_bin, tmp_path):
    from conftest import ROOT
    files = [os.path.join(ROOT, "data", "scenarios", f"{n}.toml") for n in ("baseline", "moratorium")]
    runs = ex.run_scenarios(files, str(tmp_path / "s"), replicates=2, cutoff=design_bin, **SIZE)
    assert list(runs) == ["baseline", "moratorium"]
    from cutoff_analysis.io import scenario_params
    assert scenario_params(runs["moratorium"])["moratorium"] is True
    assert scenario_params(runs["baseline"])["moratorium"] is False
    from cutoff_analysis.compare import compare
    res = compare(runs, "cut_off_share_by_tier", ticks=[12])
    assert res["effect"].dims == ("scenario", "tick", "tier", "size_class") and int(res["n"].max()) == 2
