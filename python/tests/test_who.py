"""Who is cut off, and why (cutoff_analysis.who, plot_who_is_cut_off, cutoff-report
--against): against tables computed by hand on the tiny dataset of conftest.py, and the
report's numbers against the functions' on real runs."""
import os
import re
import subprocess

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cutoff_analysis as ca
from cutoff_analysis import who

from conftest import ROOT, SMALL, TICKS


def ensemble_of(ds, n=5):
    """``ds`` stacked over ``replicate``, replicate r with r + 1 times the firms in every
    status (the same shares, so paired differences are exact)."""
    reps = []
    for r in range(n):
        one = ds.copy(deep=True)
        for name in ("firms_by_status", "employment_by_status"):
            one[name] = ds[name] * (r + 1)
        reps.append(one)
    return xr.concat(reps, dim="replicate").assign_coords(replicate=np.arange(n)).assign_attrs(ds.attrs)


def _v5(tiny):
    """The tiny dataset as a v5 file in which BBB's firm without budget is on seats
    (capped). Per size class, tick 0: AAA (tier 1, high) 2 served; BBB (tier 2, high) 1
    on seats; CCC (tier 2, low) 1 priced out. Tick 1 as tick 0, and CCC has 4 more firms of
    1-9 employees, rationed. Employment: 10 workers per firm."""
    v5 = tiny.reindex(status=list(ca.STATUSES), fill_value=0.0)
    for name in ("firms_by_status", "employment_by_status"):
        da = v5[name]
        moved = da.sel(status="no_budget").where(da["country"] == "BBB", 0.0)
        v5[name] = da - moved * (da["status"] == "no_budget") + moved * (da["status"] == "seats_capped")
    return v5


def test_layers_by_tier_and_size_as_computed_by_hand(tiny):
    v5 = _v5(tiny)
    t0 = who.who_is_cut_off(v5, "tier", "layer", ticks=0)
    assert t0.dims == ("layer", "tier", "size_class")
    assert list(t0["size_class"].values) == ["1-9", "10-49", "50-249", "250+", "all"]
    np.testing.assert_allclose(t0.sel(tier=1, layer="api"), 1.0)
    np.testing.assert_allclose(t0.sel(tier=2, layer="seats"), 0.5)  # BBB's 1 of 2 in each class
    np.testing.assert_allclose(t0.sel(tier=2, layer="none"), 0.5)
    assert t0.sel(tier=3).isnull().all()  # no tier-3 country: NaN, not 0
    t1 = who.who_is_cut_off(v5, "tier", "layer", ticks=1).sel(tier=2)
    # 1-9: BBB 1 on seats, CCC 1 priced out and 4 rationed (api).
    np.testing.assert_allclose(t1.sel(size_class="1-9").values, [4 / 6, 1 / 6, 1 / 6])
    # Every size: 4 on seats, 4 priced out, 4 rationed.
    np.testing.assert_allclose(t1.sel(size_class="all").values, [1 / 3, 1 / 3, 1 / 3])
    # A window averages the ticks' shares: (0 + 4/6) / 2 on the API.
    w = who.who_is_cut_off(v5, "tier", "layer", ticks=(0, 1))
    assert float(w.sel(tier=2, size_class="1-9", layer="api")) == pytest.approx(1 / 3)
    assert w.attrs["ticks"] == "ticks 0-1 (mean)" and w.attrs["units"] == "1"
    # By default the last tick.
    xr.testing.assert_allclose(who.who_is_cut_off(v5, "tier"), who.who_is_cut_off(v5, "tier", ticks=1))


def test_statuses_by_country_income_group_and_world(tiny):
    v5 = _v5(tiny)
    world = who.who_is_cut_off(v5, None, "status", ticks=1).sel(size_class="all")
    # 20 firms: 8 served (AAA), 4 on seats (BBB), 4 priced out and 4 rationed (CCC).
    for status, share in (("served", 0.4), ("seats_capped", 0.2), ("priced_out", 0.2), ("rationed", 0.2)):
        assert float(world.sel(status=status)) == pytest.approx(share)
    assert float(who.cut_off(world)) == pytest.approx(0.4)  # priced out + rationed
    inc = who.who_is_cut_off(v5, "income_group", "layer", ticks=0)
    np.testing.assert_allclose(inc.sel(income_group="high", layer="api"), 2 / 3)   # AAA 2, BBB 1 on seats
    np.testing.assert_allclose(inc.sel(income_group="low", layer="none"), 1.0)     # CCC priced out
    country = who.who_is_cut_off(v5, "country", "layer", ticks=0)
    assert float(country.sel(country="BBB", size_class="all", layer="seats")) == 1.0
    assert list(country["tier"].values) == [1, 2, 2]  # the country metadata come along
    # Employment weighs each firm 10: the same shares.
    xr.testing.assert_allclose(who.who_is_cut_off(v5, "tier", weight="employment"), who.who_is_cut_off(v5, "tier"),
                               check_dim_order=False)
    with pytest.raises(ValueError, match="view="):
        who.who_is_cut_off(v5, view="layers")
    with pytest.raises(ValueError, match="weight="):
        who.who_is_cut_off(v5, weight="workers")
    with pytest.raises(ValueError, match="tick 7 is not in the output: it holds ticks 0-1"):
        who.who_is_cut_off(v5, ticks=7)


@pytest.mark.parametrize("view", who.VIEWS)
@pytest.mark.parametrize("by", [None, "tier", "income_group", "country"])
def test_shares_sum_to_one_over_each_size_class(tiny, by, view):
    s = who.who_is_cut_off(_v5(tiny), by, view, ticks=(0, 1))
    total = s.sum(view, min_count=1)
    np.testing.assert_allclose(total.where(total.notnull(), 1.0), 1.0)
    assert float(s.min()) >= 0


def test_a_run_or_an_ensemble_against_itself_changes_nothing(tiny):
    v5 = _v5(tiny)
    for data in (v5, ensemble_of(v5)):
        ch = who.who_changes(data, data, "tier", "layer", ticks=(0, 1))
        np.testing.assert_array_equal(ch["effect"].fillna(0.0), 0.0)
        xr.testing.assert_allclose(ch["baseline"], ch["policy"])
        assert ch.attrs["paired"] == ("replicate" in data.dims)
    ens = who.who_changes(ensemble_of(v5), ensemble_of(v5), None, "status")
    np.testing.assert_array_equal(ens["lo"].fillna(0.0), 0.0)
    np.testing.assert_array_equal(ens["hi"].fillna(0.0), 0.0)
    assert int(ens["n"].max()) == 5


def _policy(ds):
    """Every firm of AAA (tier 1) served in the baseline is priced out under the policy."""
    out = ds.copy(deep=True)
    f = out["firms_by_status"]
    served = f.sel(status="served").where(f["country"] == "AAA", 0.0)
    out["firms_by_status"] = f + served * ((f["status"] == "priced_out") * 1.0 - (f["status"] == "served") * 1.0)
    return out


def test_a_policy_against_its_baseline_paired_over_replicates(tiny):
    base = ensemble_of(_v5(tiny))
    pol = _policy(base)
    ch = who.who_changes(base, pol, "tier", "layer", ticks=0)
    assert float(ch["effect"].sel(tier=1, size_class="all", layer="none")) == pytest.approx(1.0)
    assert float(ch["effect"].sel(tier=2, size_class="all", layer="none")) == pytest.approx(0.0)
    assert float(ch["policy"].sel(tier=1, size_class="all", layer="none")) == pytest.approx(1.0)
    cut = who.cut_off_changes(base, pol, None, ticks=0).sel(size_class="all")
    # World, tick 0: AAA's 8 served firms are priced out, so the share cut off rises from
    # CCC's 4 of 16 to 12 of 16, the same in every replicate: an interval of width 0.
    assert float(cut["baseline"]) == pytest.approx(0.25)
    assert float(cut["effect"]) == pytest.approx(0.5)
    assert float(cut["lo"]) == pytest.approx(0.5) and float(cut["hi"]) == pytest.approx(0.5)
    assert int(cut["n"]) == 5
    with pytest.raises(ValueError, match="a run and the policy an ensemble|compare two runs or two ensembles"):
        who.who_changes(_v5(tiny), pol)
    with pytest.raises(ValueError, match="replicates"):
        who.who_changes(base, pol.isel(replicate=slice(0, 3)))


def test_country_table_ranks_the_largest_changes_first(tiny):
    base = _v5(tiny)
    pol = _policy(base)
    table = who.country_table(base, pol, ticks=0, top=2)
    assert list(table.columns) == ["country", "tier", "income_group", "real_firms", "baseline", "policy", "change",
                                   "lo", "hi"]
    assert table["country"].tolist() == ["AAA", "BBB"]  # AAA +1; BBB and CCC 0, by name
    assert table.loc[0, "change"] == pytest.approx(1.0) and table.loc[0, "real_firms"] == pytest.approx(8.0)
    assert table["lo"].isna().all()  # two runs: no interval
    assert len(who.country_table(base, pol, ticks=0, top=None)) == 3


def test_headline_numbers(tiny):
    base = _v5(tiny)
    h = who.headline(base, _policy(base), ticks=0)
    # Tick 0, world: 16 firms; baseline 8 api, 4 seats, 4 none; policy 0 api, 4 seats, 12 none.
    assert (h["api_base"], h["seats_base"], h["none_base"]) == pytest.approx((0.5, 0.25, 0.25))
    assert (h["api_policy"], h["none_policy"]) == pytest.approx((0.0, 0.75))
    assert h["none_change"] == pytest.approx(0.5) and np.isnan(h["none_lo"])
    assert h["most"][:3] == (1, "1-9", pytest.approx(1.0))  # tier 1, first size class of the equal ones
    assert h["reasons_base"][0] == ("priced_out", pytest.approx(1.0))
    assert h["cut_off_policy"] == pytest.approx(0.75)


def test_plot_who_is_cut_off_labels_axes_and_draws_both_outputs(tiny):
    base = _v5(tiny)
    for b, p in ((base, _policy(base)), (ensemble_of(base), _policy(ensemble_of(base)))):
        fig = ca.plot_who_is_cut_off(b, p, ("baseline", "policy"), ticks=0)
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in axes] == ["tier 1", "tier 2", "tier 3"]
        assert axes[0].get_ylabel() == "share of real firms [share, 0-1]"
        assert all(ax.get_xlabel() == "firm size [employees]" for ax in axes)
        assert [t.get_text() for t in axes[0].get_xticklabels()] == ["1-9", "10-49", "50-249", "250+", "all"]
        # 5 size classes x 3 layers x 2 outputs, hatched for the policy.
        bars = axes[0].patches
        assert len(bars) == 30 and sum(1 for r in bars if r.get_hatch()) == 15
        # Above each pair, the change in the share without access in points: +100.0 in tier 1.
        assert [t.get_text() for t in axes[0].texts] == ["+100.0"] * 5
        matplotlib.pyplot.close(fig)
    fig = ca.plot_who_is_cut_off(base, by=None, view="status")
    assert [ax.get_title() for ax in fig.axes] == ["world"]
    matplotlib.pyplot.close(fig)


# The report with --against, on real runs.

def _run(binary, scenario, out, *args):
    subprocess.run([binary, "run", os.path.join(ROOT, "data", "scenarios", f"{scenario}.toml"), "-o", str(out), *SMALL,
                    "--ticks", str(TICKS), "-q", "--seed", "3", "--replicate", "1", *args], check=True)
    return str(out)


def _ensemble(binary, scenario, out):
    subprocess.run([binary, "ensemble", os.path.join(ROOT, "data", "scenarios", f"{scenario}.toml"), "-o", str(out),
                    *SMALL, "--ticks", str(TICKS), "-q", "--replicates", "3", "--jobs", "2"], check=True)
    return str(out)


@pytest.fixture(scope="module")
def pair(cutoff_bin, tmp_path_factory):
    """A baseline and a moratorium, as runs (seed 3) and as ensembles of 3 paired replicates."""
    d = tmp_path_factory.mktemp("pair")
    return {"runs": (_run(cutoff_bin, "baseline", d / "base.h5"), _run(cutoff_bin, "moratorium", d / "mor.h5")),
            "ensembles": (_ensemble(cutoff_bin, "baseline", d / "base"), _ensemble(cutoff_bin, "moratorium", d / "mor"))}


@pytest.mark.parametrize("kind", ["runs", "ensembles"])
def test_report_against_a_baseline_states_the_functions_numbers(tmp_path, pair, kind):
    from cutoff_analysis.report import WHO_FIGURES, WHO_TABLES, main
    base, pol = pair[kind]
    out = tmp_path / "r"
    assert main([pol, "-o", str(out), "--against", base, "--ticks", f"{TICKS - 4}:{TICKS - 1}"]) == 0
    text = (out / "summary.md").read_text()
    for stem, _ in WHO_FIGURES:
        assert f"]({stem}.png)" in text and (out / f"{stem}.png").is_file()
    b, p = ca.open_output(base), ca.open_output(pol)
    window = (TICKS - 4, TICKS - 1)
    world = who.who_changes(b, p, None, "layer", window).sel(size_class="all", layer="none")
    m = re.search(r"\*\*Without access\*\* \(world, every size\): ([\d.]+)% → ([\d.]+)%, ([+-][\d.]+) pt", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(100 * float(world["baseline"]), abs=0.05)
    assert float(m.group(2)) == pytest.approx(100 * float(world["policy"]), abs=0.05)
    assert float(m.group(3)) == pytest.approx(100 * float(world["effect"]), abs=0.05)
    assert f"ticks {TICKS - 4}-{TICKS - 1} (mean)" in text
    assert ("paired replicates" in text) == (kind == "ensembles")
    # Each row of the tier table is the function's, to the rounding written.
    tier = who.who_changes(b, p, "tier", "layer", window)
    for t in (1, 2, 3):
        cell = tier.sel(tier=t, size_class="1-9", layer="none")
        row = f"| {t} | 1-9 |"
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert f"{100 * float(cell['baseline']):.1f}% → {100 * float(cell['policy']):.1f}%" in line
    # The CSV tables hold the same values.
    csv = pd.read_csv(out / "who-by-tier.csv")
    got = csv[(csv["tier"] == 2) & (csv["size_class"] == "all") & (csv["layer"] == "api")]
    want = float(tier["baseline"].sel(tier=2, size_class="all", layer="api"))
    assert float(got["baseline"].iloc[0]) == pytest.approx(want)
    countries = pd.read_csv(out / "who-by-country.csv")
    assert countries["change"].abs().is_monotonic_decreasing
    assert all((out / name).is_file() for name in WHO_TABLES)


def test_report_section_of_an_output_against_itself_says_nothing_changed(pair):
    from cutoff_analysis.report import who_markdown
    base = ca.open_output(pair["ensembles"][0])
    text = "\n".join(who_markdown(base, base, ("a", "b")))
    assert text.startswith("## Who is cut off, and why: b against a")
    m = re.search(r"\*\*Without access\*\* \(world, every size\): ([\d.]+)% → ([\d.]+)%, ([+-][\d.]+) pt "
                  r"\[([+-][\d.]+), ([+-][\d.]+)\]", text)
    assert m and m.group(1) == m.group(2) and float(m.group(3)) == 0.0 and float(m.group(4)) == float(m.group(5)) == 0
    assert "3 paired replicates" in text


@pytest.mark.parametrize("args, needles", [
    (["--ticks", "999"], ["--ticks 999", "tick 999 is not in the output", f"0-{TICKS - 1}"]),
    (["--ticks", "2:999"], ["--ticks 2:999", "tick 16 is not in the output"]),
    (["--ticks", "5:2"], ["--ticks", "'5:2'", "A <= B"]),
    (["--ticks", "soon"], ["--ticks", "'soon'"]),
    (["--top", "0"], ["--top", "'0'", "1 or more"]),
    (["--labels", "same,same"], ["--labels", "'same,same'", "two different names"]),
])
def test_report_bad_flag_exits_2_naming_the_flag_and_value(tmp_path, capsys, pair, args, needles):
    from cutoff_analysis.report import main
    base, pol = pair["runs"]
    try:
        code = main([pol, "-o", str(tmp_path / "r"), "--against", base, *args])
    except SystemExit as e:  # argparse's own check of a flag's form
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    for n in needles:
        assert n in err, err
    assert not (tmp_path / "r").exists()


def test_report_against_an_output_that_does_not_pair_exits_2(tmp_path, capsys, pair, fake_ensemble_dir):
    from cutoff_analysis.report import main
    run, ens = pair["runs"][0], pair["ensembles"][1]
    for args, needles in (([ens, "--against", run], [f"--against {run}", "compare two runs or two ensembles"]),
                          ([run, "--against", fake_ensemble_dir], [f"--against {fake_ensemble_dir}", "swept", "bm"]),
                          ([run, "--ticks", "3"], ["--ticks", "only with --against"]),
                          ([run, "--against", str(tmp_path / "missing.h5")], ["missing.h5", "no such file"])):
        assert main([args[0], "-o", str(tmp_path / "r"), *args[1:]]) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        for n in needles:
            assert n in err, err
