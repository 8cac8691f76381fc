"""Each helper against values computed by hand on the tiny dataset of conftest.py:
countries AAA (population 1, high income, tier 1), BBB (3, high, tier 2) and
CCC (4, low, tier 2); providers A and B (B a follower); ticks 0 and 1."""
import matplotlib.figure
import numpy as np
import pytest
import xarray as xr

import cutoff_analysis as ca
from cutoff_analysis import calibration as cal


def test_adoption_by_income_group(tiny):
    a = ca.adoption_by(tiny, "income_group")
    assert a.dims == ("income_group", "tick")
    # high: (0.5·1 + 0.1·3)/4 and (0.6·1 + 0.3·3)/4; low: CCC alone.
    np.testing.assert_allclose(a.sel(income_group="high"), [0.2, 0.375])
    np.testing.assert_allclose(a.sel(income_group="low"), [0.2, 0.4])
    assert a.sel(income_group="upper_middle").isnull().all()  # no such country


def test_adoption_by_tier(tiny):
    a = ca.adoption_by(tiny, "tier")
    np.testing.assert_allclose(a.sel(tier=1), [0.5, 0.6])
    np.testing.assert_allclose(a.sel(tier=2), [(0.3 + 0.8) / 7, (0.9 + 1.6) / 7])
    assert a.sel(tier=3).isnull().all()


def test_access_gap_by_tier_skips_nan_countries(tiny):
    g = ca.access_gap_by_tier(tiny)
    np.testing.assert_allclose(g.sel(tier=1), [1.0, 0.5])
    # tick 0: BBB's gap is NaN, so tier 2 is CCC's; tick 1: (3·1 + 4·3)/7.
    np.testing.assert_allclose(g.sel(tier=2), [2.0, 15 / 7])
    assert g.attrs["units"] == "K"


def test_capability_marks_followers_and_their_gap(tiny):
    c = ca.capability(tiny)
    assert list(c["follower"].values) == [False, True]
    np.testing.assert_allclose(c["follower_gap"], [3.0 - 2.0, 3.5 - 3.2])


def test_prices_capped_and_top20_pass_the_metrics_through(tiny):
    p = ca.clearing_prices(tiny)
    assert p["price"].dims == ("tick", "provider", "class")
    assert float(p["price"].sel(tick=1, provider="A", **{"class": "consumer"})) == 5.0
    np.testing.assert_array_equal(ca.users_capped(tiny), [0.1, 0.2])
    np.testing.assert_array_equal(ca.top20_share(tiny), [0.7, 0.8])


def test_status_shares_and_cut_off(tiny):
    shares = ca.status_shares(tiny)
    np.testing.assert_allclose(shares.sum("status"), 1.0)
    # tick 0, every size class: 2 served, 1 no budget, 1 priced out of 4 firms.
    np.testing.assert_allclose(shares.sel(tick=0, size_class="10-49", status="served"), 0.5)
    cut = ca.cut_off_share(tiny)
    np.testing.assert_allclose(cut.sel(tick=0), 0.5)
    # tick 1, 1-9 employees: 4 rationed more, so (1 + 1 + 4) of 8 cut off.
    np.testing.assert_allclose(cut.sel(tick=1, size_class="1-9"), 6 / 8)
    np.testing.assert_allclose(ca.cut_off_share(tiny, "employment"), cut)  # 10 workers per firm
    # The fixture is a v4 file (no `no_value`): every other cut-off status is in it.
    assert set(ca.CUT_OFF) - {"no_value"} <= set(tiny["status"].values)
    assert set(tiny["status"].values) < set(ca.STATUSES)


def test_cut_off_counts_no_value_in_a_v5_file(tiny):
    # v5 splits `no_value` from `no_budget` (docs/model.md §7): moving BBB's firm without
    # budget to `no_value` leaves the cut-off share as it is, and moving it to `served`
    # lowers it (so the sum does read `no_value`).
    v5 = tiny.reindex(status=list(ca.STATUSES), fill_value=0.0)
    for name in ("firms_by_status", "employment_by_status"):
        da = v5[name]
        moved = da.sel(status="no_budget").where(da["country"] == "BBB", 0.0)
        v5[name] = da - moved * (da["status"] == "no_budget") + moved * (da["status"] == "no_value")
    np.testing.assert_allclose(ca.cut_off_share(v5), ca.cut_off_share(tiny))
    assert float(v5["firms_by_status"].sel(status="no_value").sum()) > 0
    served = v5.copy()
    served["firms_by_status"] = v5["firms_by_status"].where(v5["status"] != "no_value", 0.0) + \
        v5["firms_by_status"].sel(status="no_value") * (v5["status"] == "served")
    assert float(ca.cut_off_share(served).sel(tick=0).max()) < 0.5


def test_access_layers_by_tier(tiny):
    # Tick 0, every size class: AAA (tier 1) 2 served; BBB and CCC (tier 2) 1 without
    # budget and 1 priced out. Moving BBB's firm to seats puts half of tier 2 on seats.
    world = ca.access_layers(tiny, by=None).sel(tick=0)
    np.testing.assert_allclose(world.sel(layer="api"), 0.5)
    np.testing.assert_allclose(world.sel(layer="none"), 0.5)
    np.testing.assert_allclose(world.sel(layer="seats"), 0.0)
    v5 = tiny.reindex(status=list(ca.STATUSES), fill_value=0.0)
    da = v5["firms_by_status"]
    moved = da.sel(status="no_budget").where(da["country"] == "BBB", 0.0)
    v5["firms_by_status"] = da - moved * (da["status"] == "no_budget") + moved * (da["status"] == "seats_capped")
    by_tier = ca.access_layers(v5).sel(tick=0)
    np.testing.assert_allclose(by_tier.sel(tier=1, layer="api"), 1.0)
    np.testing.assert_allclose(by_tier.sel(tier=2, layer="seats"), 0.5)
    np.testing.assert_allclose(by_tier.sel(tier=2, layer="none"), 0.5)
    np.testing.assert_allclose(by_tier.sum("layer"), 1.0)
    with pytest.raises(ValueError, match="by="):
        ca.access_layers(tiny, by="region")


def _with_us_firms(tiny):
    """The tiny dataset as a v5 file whose country AAA is the US, with per size class and
    tick 1-9: 1 firm on seats and 3 without value (5 workers each); 250+: 2 served and 2
    without budget (500 workers each); no firms of 10-249 employees."""
    v5 = tiny.reindex(status=list(ca.STATUSES), fill_value=0.0).assign_coords(country=["USA", "BBB", "CCC"])
    us = {("1-9", "seats"): 1.0, ("1-9", "no_value"): 3.0, ("250+", "served"): 2.0, ("250+", "no_budget"): 2.0}
    workers = {"1-9": 5.0, "250+": 500.0}
    for name in ("firms_by_status", "employment_by_status"):
        da = v5[name].copy()
        da.loc[{"country": "USA"}] = 0.0
        for (size, status), n in us.items():
            da.loc[{"country": "USA", "size_class": size, "status": status}] = \
                n * (1.0 if name == "firms_by_status" else workers[size])
        v5[name] = da
    return v5


def test_btos_measures_count_api_and_seats_in_the_us(tiny):
    m = {k: float(v) for k, v in cal.btos_measures(_with_us_firms(tiny), ticks=(0, 1)).items()}
    assert m["us_ai_firms"] == pytest.approx((1 + 2) / 8)
    assert m["us_ai_employment"] == pytest.approx((5 + 1000) / (20 + 2000))
    assert m["us_ai_firms_250"] == pytest.approx(0.5)
    assert m["us_ai_firms_1_9"] == pytest.approx(0.25)


def test_saturation_measures(tiny):
    m = {k: float(v) for k, v in cal.saturation_measures(_with_us_firms(tiny), from_tick=0).items()}
    assert m["capped_max"] == pytest.approx(0.2)
    assert m["status_max_us"] == pytest.approx(0.75)  # 3 of 4 small US firms without value
    # Tier 2 (BBB and CCC): at tick 1 the small firms are 4 rationed of 6.
    assert m["status_max_tier2"] == pytest.approx(4 / 6)
    assert m["status_max_tier2"] < cal.SATURATION_BANDS["status_max_tier2"][1]
    assert cal.saturation_measures(_with_us_firms(tiny), from_tick=1)["status_max_us"] == pytest.approx(0.75)


def test_cut_off_measures_by_region_size_and_status(tiny):
    m = {k: float(v) for k, v in cal.cut_off_measures(_with_us_firms(tiny), ticks=(0, 1)).items()}
    assert m["USA_1-9_no_value_t0"] == pytest.approx(0.75)
    assert m["USA_250+_served_t1"] == pytest.approx(0.5)
    # Tier 2 (BBB, CCC) at tick 1, 1-9 employees: 1 without budget, 1 priced out, 4 rationed.
    assert m["tier_2_1-9_rationed_t1"] == pytest.approx(4 / 6)
    assert m["tier_2_10-49_no_budget_t0"] == pytest.approx(0.5)
    assert "USA_10-49_served_t0" not in m  # the US has no firm of 10-49: no share
    assert not any(k.startswith("tier_3") for k in m)  # no tier-3 country
    assert all("seats_t" not in k or m[k] >= 0.01 for k in m)  # statuses nobody is in are left out
    assert "USA_1-9_served_t0" not in m


def test_lorenz_curve_and_top_share():
    # Sorted: 0 (weight 1), 1 (weight 1), 3 (weight 2); total value 0 + 1 + 6 = 7.
    x, y = ca.lorenz_curve([3.0, 0.0, 1.0], [2.0, 1.0, 1.0], points=5)
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(y, [0, 0, 1 / 7, 1 / 7 + 0.5 * 6 / 7, 1])
    # The top 20% of weight (0.8) lies inside the firm of value 3: it holds 0.8·3 of 7.
    assert ca.top_share([3.0, 0.0, 1.0], [2.0, 1.0, 1.0]) == pytest.approx(2.4 / 7)
    assert ca.top_share(np.ones(10), np.ones(10)) == pytest.approx(0.2)
    assert np.isnan(ca.top_share([0.0, 0.0], [1.0, 1.0]))


def test_bands_are_quantiles_over_replicates():
    da = xr.DataArray([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, np.nan]], dims=("replicate", "tick"))
    q = ca.bands(da)
    np.testing.assert_allclose(q.sel(tick=0), [1.2, 2.0, 3.0, 4.0, 4.8])
    np.testing.assert_allclose(q.sel(tick=1, quantile=0.5), 25.0)  # NaN skipped
    assert ca.bands(da.isel(replicate=0)) is not None


def test_calibration_measures(tiny):
    ds = tiny.assign(
        revenue=(("tick", "provider"), [[1e9, 2e9], [3e9, 4e9]]),
        trusted_partners=(("tick", "provider"), [[0.0, 0.0], [50.0, 0.0]]),
    )
    m = {k: float(v) for k, v in cal.measures(ds, calib=1, pmin=1.0, growth_from=0).items()}
    assert m["adoption_high"] == pytest.approx(0.375)
    assert m["adoption_rest"] == pytest.approx(0.4)
    assert m["growth_ratio"] == pytest.approx((0.375 - 0.2) / (0.4 - 0.2))
    assert m["revenue_0_11_bn"] == pytest.approx(10.0)
    assert (m["price_min_ratio"], m["price_max_ratio"]) == (1.0, 4.0)
    assert m["partners_per_release"] == 50.0  # providers with none are not releases
    assert (m["top20_value_share"], m["users_capped_share"]) == (0.8, 0.2)
    assert cal.target_hit("adoption_high", 0.275 * 1.09) and not cal.target_hit("adoption_high", 0.275 * 1.11)
    assert cal.band_hit("price_max_ratio", [4.0, 4.9]) and not cal.band_hit("price_max_ratio", [1.0, 5.1])
    assert cal.p_min() == pytest.approx(1.3 * (600 + 30000 / 36))


def ensemble_of(ds, n=5):
    """``ds`` stacked over ``replicate`` with a different offset in each replicate."""
    reps = [ds + 0.01 * r for r in range(n)]
    return xr.concat(reps, dim="replicate").assign_coords(replicate=np.arange(n)).assign_attrs(ds.attrs)


PLOTS = [ca.plot_adoption, lambda d: ca.plot_adoption(d, "tier"), ca.plot_access_gap, ca.plot_prices,
         ca.plot_users_capped, ca.plot_top20, ca.plot_capability, ca.plot_cut_off]


@pytest.mark.parametrize("plot", PLOTS)
def test_plots_label_axes_with_units(tiny, plot):
    for data in (tiny, ensemble_of(tiny), {"one": tiny, "two": ensemble_of(tiny)}):
        fig = plot(data)
        assert isinstance(fig, matplotlib.figure.Figure)
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert any("[" in ax.get_ylabel() and "]" in ax.get_ylabel() for ax in visible)
        assert any("tick [months" in ax.get_xlabel() for ax in visible)
        bands = sum(len(ax.collections) for ax in visible)
        assert (bands > 0) == (data is not tiny), "bands drawn exactly where there are replicates"
        matplotlib.pyplot.close(fig)


def test_prices_are_drawn_on_a_log_scale_so_a_spike_does_not_flatten_them(tiny):
    spiked = tiny.copy(deep=True)
    spiked["compute_price"][1, 1] = 1e4  # provider B's price jumps 2,500-fold at tick 1
    for data in (spiked, {"one": spiked, "two": tiny}):
        fig = ca.plot_prices(data)
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
        assert visible and all(ax.get_yscale() == "log" for ax in visible)
        lo, hi = visible[0].get_ylim()
        assert lo <= 1.0 and hi >= 1e4  # both the floor and the spike are in view
        matplotlib.pyplot.close(fig)


def test_comparison_plots_have_a_panel_per_category(tiny):
    fig = ca.plot_adoption({"one": tiny, "two": tiny}, "tier")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["tier 1", "tier 2", "tier 3"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["one", "two"]
