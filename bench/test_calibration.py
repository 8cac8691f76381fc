#!/usr/bin/env python3
"""bench/calibration.py's convergence table can fail (pytest; ctest's Bench.Calibration),
on replicate values made here, where the truth is known:

* a column equal to the reference agrees on every figure, and nothing stands;
* a figure moved by many standard errors is outside two of them and stands at the
  false discovery rate, while the unmoved figures of the same column do not;
* columns drawn from the reference's own distribution (a control) put about one figure
  in sixteen outside two standard errors, while a difference stands in at most 5% of
  such tables: the two rules differ as the script's docstring says;
* a figure constant over replicates agrees when equal and stands when not.

Skips without numpy, scipy or xarray (the analysis venv's).
"""
import os
import sys

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("scipy.stats")
pytest.importorskip("xarray")  # calibration.py imports the analysis package

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calibration as cal  # noqa: E402


def rows(table):
    """{figure: verdicts} from the printed table (the lines with one mean per column)."""
    out = {}
    for line in table.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("f") and parts[-1] in ("yes", "NO", "yes*", "NO*"):
            out[parts[0]] = parts[-1]
    return out


def reference(rng, n_figures=200, seeds=10):
    return {f"f{i:03d}": rng.normal(0.5, 0.05, seeds) for i in range(n_figures)}


def test_equal_columns_agree_everywhere():
    rng = np.random.default_rng(1)
    ref = reference(rng)
    verdicts = rows(cal.convergence([("ref", ref), ("same", {k: v.copy() for k, v in ref.items()})]))
    assert len(verdicts) == len(ref)
    assert set(verdicts.values()) == {"yes"}


def test_a_moved_figure_stands_and_the_others_do_not():
    rng = np.random.default_rng(2)
    ref = reference(rng)
    other = {k: rng.normal(0.5, 0.05, 10) for k in ref}
    other["f007"] = other["f007"] + 0.2  # 0.2 against a combined SE of about 0.022
    text = cal.convergence([("ref", ref), ("moved", other)])
    verdicts = rows(text)
    assert verdicts["f007"] == "NO*"
    assert [k for k, v in verdicts.items() if v.endswith("*")] == ["f007"]
    assert "1 differ at the 5% false discovery rate: f007" in text


def test_a_control_falls_outside_two_se_by_chance_only():
    # 40 tables of 200 figures, every column drawn like the reference (a control).
    rng = np.random.default_rng(3)
    outside, tables_with_a_finding = 0, 0
    for _ in range(40):
        ref = reference(rng)
        control = {k: rng.normal(0.5, 0.05, 10) for k in ref}
        verdicts = rows(cal.convergence([("ref", ref), ("control", control)]))
        outside += sum(v.startswith("NO") for v in verdicts.values())
        tables_with_a_finding += any(v.endswith("*") for v in verdicts.values())
    # Two SE over 10 replicates: Welch's t (about 18 degrees of freedom) beyond 2 has
    # probability 0.061, so about 490 of the 8,000 figures by chance alone.
    assert 400 < outside < 580
    # Benjamini-Hochberg at 5% when nothing differs: a finding in at most 5% of tables
    # (2 of 40 expected; 6 or more has probability 0.014).
    assert tables_with_a_finding <= 5


def test_constant_figures():
    ref = {"f_same": np.full(5, 50.0), "f_diff": np.full(5, 1.0), "f_var": np.linspace(0, 1, 5)}
    other = {"f_same": np.full(5, 50.0), "f_diff": np.full(5, 1.5), "f_var": np.linspace(0, 1, 5)}
    verdicts = rows(cal.convergence([("ref", ref), ("other", other)]))
    assert verdicts == {"f_same": "yes", "f_diff": "NO*", "f_var": "yes"}
