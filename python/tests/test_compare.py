"""Paired comparisons (cutoff_analysis.compare) against statistics computed by hand."""
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import cutoff_analysis as ca
from cutoff_analysis.compare import compare, interval_gain


def _pair(effect=0.1, reps=6, seed=3):
    """A baseline whose replicates differ a lot, and a scenario that adds `effect` and a
    little noise to each replicate (as common random numbers do)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(1.0, 0.5, size=(reps, 1, 2))  # replicate x tick x provider
    base = xr.Dataset({"compute_price": (("replicate", "tick", "provider"), np.broadcast_to(level, (reps, 3, 2)).copy())},
                      coords={"replicate": np.arange(reps), "tick": [0, 1, 2], "provider": ["A", "B"]})
    scen = base.copy(deep=True)
    scen["compute_price"] = base["compute_price"] + effect + rng.normal(0, 0.01, size=(reps, 3, 2))
    return base, scen


def test_compare_gives_the_paired_mean_and_student_interval():
    base, scen = _pair()
    res = compare({"baseline": base, "policy": scen}, "compute_price")
    assert res["effect"].dims == ("scenario", "tick", "provider")
    d = (scen["compute_price"] - base["compute_price"]).sel(tick=1, provider="B").values
    cell = res.sel(scenario="policy", tick=1, provider="B")
    assert float(cell["effect"]) == pytest.approx(d.mean())
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    assert float(cell["hi"] - cell["lo"]) == pytest.approx(2 * half)
    assert float(cell["lo"]) < 0.1 < float(cell["hi"])
    assert float(cell["baseline"]) == pytest.approx(base["compute_price"].sel(tick=1, provider="B").mean())
    assert int(cell["n"]) == 6
    # Pairing removes the replicates' common variation: the unpaired error is far larger.
    assert interval_gain(res) > 10
    b, s = base["compute_price"].sel(tick=1, provider="B"), scen["compute_price"].sel(tick=1, provider="B")
    assert float(cell["se_unpaired"]) == pytest.approx(np.sqrt(b.var(ddof=1) / 6 + s.var(ddof=1) / 6))


def test_compare_selects_ticks_keeps_other_dimensions_and_skips_nan_pairs():
    base, scen = _pair(reps=5)
    scen["compute_price"][0, 2, 0] = np.nan
    res = compare({"b": base, "s1": scen, "s2": base}, "compute_price", ticks=[2])
    assert list(res["scenario"].values) == ["s1", "s2"]
    assert int(res["n"].sel(scenario="s1", tick=2, provider="A")) == 4
    np.testing.assert_allclose(res["effect"].sel(scenario="s2"), 0.0)  # a scenario against itself


def test_compare_with_a_who_is_cut_off_measure(tiny):
    ens = xr.concat([tiny, tiny], dim=xr.DataArray([0, 1], dims="replicate", name="replicate"))
    moved = ens.copy(deep=True)
    f = moved["firms_by_status"]
    # Move every served firm of AAA (tier 1) to priced out in the scenario: its cut-off share rises.
    served = f.sel(status="served")
    moved["firms_by_status"] = f + served * ((f["status"] == "priced_out") * 1.0 - (f["status"] == "served") * 1.0)
    res = compare({"baseline": ens, "policy": moved}, "cut_off_share")
    assert res["effect"].dims == ("scenario", "tick", "size_class")
    # Tick 0, 10-49 employees: 2 of 4 firms cut off before, all 4 after.
    assert float(res["effect"].sel(scenario="policy", tick=0, size_class="10-49")) == pytest.approx(0.5)
    layers = compare({"baseline": ens, "policy": moved}, "access_layers_by_tier")
    assert float(layers["effect"].sel(scenario="policy", tick=0, tier=1, layer="api", size_class="1-9")) == \
        pytest.approx(-1.0)


def test_compare_refuses_unpaired_or_single_runs():
    base, scen = _pair(reps=4)
    with pytest.raises(ValueError, match="replicates"):
        compare({"b": base, "s": scen.isel(replicate=slice(0, 3))}, "compute_price")
    with pytest.raises(ValueError, match="at least one scenario"):
        compare({"b": base}, "compute_price")
    with pytest.raises(ValueError, match="replicate"):
        compare({"b": base.isel(replicate=0), "s": scen.isel(replicate=0)}, "compute_price")
    assert "compare" in ca.__all__
