#!/usr/bin/env python3
"""bench/run's issue-40 fields (pytest; ctest's Bench.Run):

* init_ticks is a size's init_seconds over its median steady tick, and the markdown table
  shows it beside init_seconds, with members per hour under the sizes;
* run_ensemble times a real `cutoff ensemble --jobs` (a tiny one here: 5e3 firms, 2e4 users,
  3 ticks, 2 members) and reports members, seconds and members_per_hour = members/seconds·3600,
  leaving no folder behind.

Skips without pytest, xarray, matplotlib or a cutoff binary ($CUTOFF_BIN, build/cutoff, PATH).
"""
import glob
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

pytest.importorskip("xarray")
pytest.importorskip("matplotlib")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load_run():
    loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(HERE, "run"))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


run = load_run()


def cutoff_binary():
    for b in (os.environ.get("CUTOFF_BIN"), os.path.join(ROOT, "build", "cutoff"), shutil.which("cutoff")):
        if b and os.path.exists(b):
            return b
    pytest.skip("no cutoff binary")


def fake_result():
    size = {"firms": 10_000, "users": 100_000, "median_tick_seconds": 0.05, "init_seconds": 0.4,
            "agent_updates_per_s": 2.2e6, "tick_GBps": 0.5, "moved_GBps": 1.0, "peak_rss_bytes": 2e8,
            "step_seconds": {"labs": 0.001, "choice": 0.02}}
    size["init_ticks"] = run.init_ticks(size)
    ens = {"firms": 100_000, "users": 1_000_000, "ticks": 120, "jobs": 2, "members": 4, "seconds": 60.0,
           "members_per_hour": 240.0}
    return {"device": "cpu", "threads": 2, "date": "2026-12-08", "backend": "cpu", "limit": "stream",
            "limit_GBps": 29.0, "roofline_ratio": 0.017, "tick_GBps": 0.5, "sizes": [size], "peers": {},
            "members_per_hour": 240.0, "ensemble": ens}


def test_init_ticks_is_init_over_a_steady_tick():
    assert run.init_ticks({"init_seconds": 3.0, "median_tick_seconds": 0.5}) == pytest.approx(6.0)


def test_table_shows_init_and_members_per_hour():
    text = run.table(fake_result())
    header = next(ln for ln in text.splitlines() if ln.startswith("| firms"))
    row = next(ln for ln in text.splitlines() if ln.startswith("| 1e+04"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    vals = [c.strip() for c in row.strip("|").split("|")]
    assert len(cols) == len(vals)
    assert vals[cols.index("init s")] == "0.4"
    assert vals[cols.index("init ticks")] == "8"
    assert "240 members per hour" in text


def test_run_ensemble_times_a_real_ensemble(monkeypatch):
    binary = cutoff_binary()
    monkeypatch.setattr(run, "ENSEMBLE", {"firms": 5_000, "users": 20_000, "ticks": 3})
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "cutoff-bench-ensemble-*")))
    ens = run.run_ensemble(binary, "cpu", 1, 2)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "cutoff-bench-ensemble-*"))) == before
    assert ens["members"] == 2 and ens["jobs"] == 1 and ens["ticks"] == 3
    assert ens["seconds"] > 0
    assert ens["members_per_hour"] == pytest.approx(2 / ens["seconds"] * 3600)
    assert "ensemble" in ens["command"] and "--jobs 1" in ens["command"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
