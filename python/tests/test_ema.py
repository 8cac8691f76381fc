"""cutoff as an EMA Workbench model (cutoff_analysis.ema): parameters typed from the
schema, the command each experiment runs, and a tiny experiment set through
perform_experiments with the real binary."""
import os
import stat

import numpy as np
import pytest

ema_workbench = pytest.importorskip("ema_workbench")

from cutoff_analysis import ema  # noqa: E402
from cutoff_analysis.explore import CutoffError  # noqa: E402

from conftest import BASELINE  # noqa: E402

# 214 countries need min_firms x 214 firm agents: smaller minimums for 2,000 firms.
TINY = ["n_large=500", "tau0_ref_firms=0", "min_firms=5", "min_users=20"]


def test_parameters_take_their_type_and_range_from_the_schema():
    p = ema.parameter("kappa", (0.4, 1.4))
    assert isinstance(p, ema_workbench.RealParameter) and (p.lower_bound, p.upper_bound) == (0.4, 1.4)
    assert isinstance(ema.parameter("moratorium"), ema_workbench.BooleanParameter)
    lead = ema.parameter("lead", (6, 18))
    assert isinstance(lead, ema_workbench.IntegerParameter)
    assert isinstance(ema.parameter("train_share"), ema_workbench.RealParameter)  # schema range 0 to 0.99
    offset = ema.parameter("provider.0.offset", (-1, 1))
    assert offset.name == "provider__0__offset"
    for key, bounds, msg in (("no_such_key", (0, 1), "not a scenario key"), ("kappa", (0, 11), "allowed 0 to 10"),
                             ("p_max", None, "not finite"), ("kyc_rate", (0, 1), "real\\[3\\]"),
                             ("provider.0.offset", None, "give its bounds")):
        with pytest.raises(ValueError, match=msg):
            ema.parameter(key, bounds)
    with pytest.raises(ValueError, match="outcomes"):
        ema.cutoff_model(BASELINE, uncertainties={"kappa": (0.4, 1.4)}, outcomes=["nope"])


def test_each_experiment_sets_its_values(tmp_path):
    script = tmp_path / "fake-cutoff"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\necho "cutoff: error: bad" >&2\nexit 2\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    run = ema.CutoffRunner(BASELINE, ["users_capped"], firms=2000, ticks=13, sets=["n_large=500"], cutoff=str(script),
                           workdir=str(tmp_path))
    with pytest.raises(CutoffError, match="bad"):
        run(kappa=np.float64(0.5), moratorium=np.bool_(True), crackdown=False, lead=np.int64(7),
            provider__0__offset=-0.25, bm=2.0)
    args = (tmp_path / "args").read_text().split("\n")
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == ["n_large=500", "kappa=0.5", "moratorium=true", "crackdown=false", "lead=7", "provider.0.offset=-0.25", "bm=2"]
    assert args[args.index("--firms") + 1] == "2000" and args[args.index("--threads") + 1] == "1"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".h5")]  # the run file is removed


def test_perform_experiments_on_cutoff(cutoff_bin, tmp_path):
    """4 experiments (2 scenarios of kappa and bm x the moratorium on and off) at 2,000
    firms, 8,000 users and 13 ticks through EMA's own perform_experiments."""
    outcomes = ["cut_off_small_world", "us_price", "users_capped", "tier3_gap"]
    model = ema.cutoff_model(BASELINE, uncertainties={"kappa": (0.4, 1.4), "bm": (0.5, 2.0)}, levers=["moratorium"],
                             outcomes=outcomes, firms=2000, users=8000, ticks=13, sets=TINY, cutoff=cutoff_bin,
                             workdir=str(tmp_path))
    experiments, results = ema_workbench.perform_experiments(model, scenarios=2, policies=2)
    assert len(experiments) == 4 and set(experiments["moratorium"]) == {True, False}
    assert experiments["kappa"].between(0.4, 1.4).all()
    assert sorted(results) == sorted(outcomes)
    for name in outcomes:
        assert results[name].shape == (4,) and np.isfinite(results[name]).all(), name
    assert ((results["users_capped"] >= 0) & (results["users_capped"] <= 1)).all()
    assert (results["us_price"] > 0.5).all()  # at least about p_min
    # Same uncertainties, lever on and off: the runs are not all the same.
    assert len(set(np.round(results["us_price"], 12))) > 1
