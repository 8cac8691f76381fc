"""The Python API (issue 39) against the command line it shares its path with: the same
bytes as ``cutoff run``, the same error messages as ``cutoff validate`` and ``cutoff run``,
fields as read-only views without a copy, steps without the GIL, memory returned.

Needs the built module (``cutoff``, PYTHONPATH=build/python as ctest's Python.Api sets it)
and the ``cutoff`` binary (``CUTOFF_BIN``, else on PATH)."""
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import weakref

import h5py
import numpy as np
import pytest
import xarray as xr

import cutoff
from cutoff_analysis.io import open_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BASELINE = os.path.join(ROOT, "data", "scenarios", "baseline.toml")
# Small runs as python/tests/conftest.py makes them (τ0 on the run's own counts).
SETS = {"n_large": 2500, "tau0_ref_firms": 0}
FIRMS, USERS, TICKS, SEED, REPLICATE = 8000, 20000, 12, 5, 2
CLI_SMALL = ["--firms", str(FIRMS), "--users", str(USERS), "--ticks", str(TICKS), "--seed", str(SEED),
             "--replicate", str(REPLICATE), "--set", "n_large=2500", "--set", "tau0_ref_firms=0"]


@pytest.fixture(scope="session")
def cutoff_bin():
    path = os.environ.get("CUTOFF_BIN") or shutil.which("cutoff")
    if not path:
        pytest.skip("no cutoff binary (set CUTOFF_BIN or put cutoff on PATH)")
    return path


@pytest.fixture(scope="module")
def cli_file(cutoff_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "cli.h5"
    subprocess.run([cutoff_bin, "run", BASELINE, "-o", str(out), *CLI_SMALL, "-q"], check=True)
    return str(out)


def small(**kw):
    with pytest.warns(UserWarning, match="below 100000 firm agents"):
        return cutoff.Simulation(cutoff.Scenario.load(BASELINE, set=SETS), firms=FIRMS, users=USERS, ticks=TICKS,
                                 seed=SEED, replicate=REPLICATE, **kw)


def datasets(path):
    """{name: (dtype, shape, bytes or values)} of every dataset in an HDF5 file."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            v = obj[()]
            out[name] = (obj.dtype.str, obj.shape, v.tobytes() if obj.dtype.kind != "O" else v.tolist())
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def root_attrs(path):
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        provenance = attrs["provenance_attributes"]
        provenance = (provenance.decode() if isinstance(provenance, bytes) else str(provenance)).split()
    return {k: v for k, v in attrs.items() if k not in provenance}


def test_save_writes_the_bytes_cutoff_run_writes(cli_file, tmp_path):
    sim = small()
    sim.step(5)  # save() runs the other 7, as `cutoff run` runs all 12
    api_file = str(tmp_path / "api.h5")
    sim.save(api_file)
    assert sim.tick == TICKS
    cli, api = datasets(cli_file), datasets(api_file)
    assert sorted(api) == sorted(cli)
    assert len(cli) > 50 and "metrics/capacity" in cli
    for name in cli:
        assert api[name] == cli[name], f"dataset {name} differs"
    a, c = root_attrs(api_file), root_attrs(cli_file)
    assert sorted(a) == sorted(c)
    for k in c:
        assert np.array_equal(np.asarray(a[k]), np.asarray(c[k])), f"root attribute {k} differs"
    # After save(), metrics() holds every tick, the 7 that save() ran included.
    with open_run(api_file) as ref:
        ref = ref.load()
    ref.attrs.pop("cutoff_path")
    xr.testing.assert_identical(sim.metrics(), ref)


def test_metrics_is_the_dataset_open_run_reads(cli_file):
    sim = small()
    sim.step(TICKS)
    ds = sim.metrics()
    with open_run(cli_file) as ref:
        ref = ref.load()
    assert ds.sizes["tick"] == TICKS
    provenance = set(ref.attrs["provenance_attributes"].split()) | {"cutoff_path"}
    for d in (ds, ref):
        for k in provenance:
            d.attrs.pop(k, None)
    xr.testing.assert_identical(ds, ref)
    # Part way, it holds the ticks run so far, each the same (the generation table holds the
    # generations trained so far).
    part = small()
    part.step(4)
    pm = part.metrics()
    for k in provenance:
        pm.attrs.pop(k, None)
    assert pm.sizes["tick"] == 4
    assert pm.sizes["generation"] <= ds.sizes["generation"]
    xr.testing.assert_identical(pm.drop_dims("generation"), ds.isel(tick=slice(0, 4)).drop_dims("generation"))


def test_fields_are_read_only_views_that_keep_the_simulation_alive():
    sim = small(threads=1)
    names = [f["name"] for f in cutoff.firm_fields()]
    assert sorted(sim.firms) == sorted(names) and len(sim.users) == len(cutoff.user_fields())
    a, b = sim.firms["W"], sim.firms["W"]  # wealth, float64
    assert a.shape == (sim.n_firms,) and a.dtype == np.float64 and np.shares_memory(a, b)
    assert not a.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 1
    for arrays in (sim.firms, sim.users):
        for v in arrays.values():
            assert not v.flags.writeable
    # A live view: after a step it holds the new values, still without a copy.
    before = {n: v.copy() for n, v in sim.firms.items()}
    view = sim.firms
    sim.step(2)
    changed = [n for n in names if not np.array_equal(before[n], view[n])]
    assert changed, "no firm field changed in two ticks"
    for n in names:
        assert np.array_equal(view[n], sim.firms[n]) and np.shares_memory(view[n], sim.firms[n])
    # The view keeps the simulation alive; once both go, it is freed.
    alive = weakref.ref(sim)
    keep = sim.users[next(iter(sim.users))]
    del sim, view, a, b, arrays, v
    gc.collect()
    assert alive() is not None
    assert keep.sum() >= 0  # readable
    del keep
    gc.collect()
    assert alive() is None


def cli_error(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("cutoff: error: ")
    return line[len("cutoff: error: "):]


@pytest.mark.parametrize("key,value", [("bm", -3), ("no_such_key", 1), ("kyc_rate", [0.1, 0.2])])
def test_bad_set_raises_the_message_cutoff_validate_prints(cutoff_bin, key, value):
    text = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
    expected = cli_error(cutoff_bin, "validate", BASELINE, "--set", f"{key}={text}")
    assert "--set" in expected
    with pytest.raises(cutoff.InputError) as e:
        cutoff.Scenario.load(BASELINE, set={key: value})
    assert isinstance(e.value, ValueError)
    # The same words; the origin is the argument that carried the override.
    assert str(e.value) == expected.replace("--set", "set")


def test_bad_file_and_counts_raise_the_cli_messages(cutoff_bin, tmp_path):
    missing = str(tmp_path / "missing.toml")
    with pytest.raises(ValueError) as e:
        cutoff.Scenario.load(missing)
    assert str(e.value) == cli_error(cutoff_bin, "validate", missing)
    expected = cli_error(cutoff_bin, "run", BASELINE, "-o", str(tmp_path / "x.h5"), "--firms", "2000", "-q")
    assert "n_firms" in expected and "2000" in expected
    with pytest.raises(ValueError) as e:
        cutoff.Simulation(cutoff.Scenario.load(BASELINE), firms=2000)
    assert str(e.value) == expected
    assert not os.path.exists(tmp_path / "x.h5")


def test_step_past_the_horizon_and_bad_save_paths_raise(tmp_path):
    sim = small()
    with pytest.raises(ValueError, match=r"step\(13\): the simulation is at tick 0 of 12 \(horizon\); allowed: 0 to 12"):
        sim.step(13)
    with pytest.raises(ValueError, match=r"save\(path\) '.*' is a directory"):
        sim.save(str(tmp_path))
    assert sim.tick == 0


def test_steps_release_the_gil():
    sims = [small(threads=1), small(threads=1)]
    barrier = threading.Barrier(2)

    def go(s):
        barrier.wait()
        s.step(1)

    threads = [threading.Thread(target=go, args=(s,)) for s in sims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = (s.last_step_span for s in sims)
    assert a0 < a1 and b0 < b1
    # Each span is one tick run without the GIL: held, the two could not overlap.
    assert max(a0, b0) < min(a1, b1), f"spans {a0, a1} and {b0, b1} do not overlap"


def test_memory_is_returned_when_the_simulation_goes():
    """In a fresh process (the allocator's state its own): the resident size comes back
    after a large simulation is deleted."""
    code = textwrap.dedent(f"""
        import gc, warnings, psutil, cutoff
        warnings.simplefilter("ignore")
        rss = lambda: psutil.Process().memory_info().rss
        sc = cutoff.Scenario.load({BASELINE!r}, set={SETS!r})
        gc.collect(); r0 = rss()
        sim = cutoff.Simulation(sc, firms=20000, users=8000000, ticks=1, threads=1)
        r1 = rss()
        del sim; gc.collect(); r2 = rss()
        print(r0, r1, r2)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 0, out.stderr
    r0, r1, r2 = map(int, out.stdout.split())
    grown = r1 - r0
    assert grown > 100 << 20, f"an 8e6-user simulation added only {grown} bytes"
    assert r2 - r0 < grown // 10, f"after del: {r2 - r0} of {grown} bytes still resident"


def test_the_stub_beside_the_module_types_the_api():
    """nanobind's stubgen writes _cutoff.pyi with the module (CMakeLists.txt); it types what
    a checker needs: every public name, with annotated arguments and results."""
    import ast

    stub = os.path.join(os.path.dirname(cutoff._cutoff.__file__), "_cutoff.pyi")
    tree = ast.parse(open(stub).read())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"Scenario", "Simulation", "InputError", "FileError"} <= set(classes)
    methods = {f.name: f for f in classes["Simulation"].body if isinstance(f, ast.FunctionDef)}
    for name in ("__init__", "step", "save", "firms", "users", "tick"):
        f = methods[name]
        assert f.returns is not None, name
        assert all(a.annotation is not None for a in f.args.args[1:]), name
    assert "NDArray" in ast.unparse(methods["firms"].returns)
    load = [f for f in classes["Scenario"].body if isinstance(f, ast.FunctionDef) and f.name == "load"][0]
    assert "Mapping" in ast.unparse(load.args.args[1].annotation)


def test_ensemble_writes_what_cutoff_ensemble_writes(cutoff_bin, tmp_path):
    args = ["--firms", str(FIRMS), "--users", str(USERS), "--ticks", "6", "--seed", str(SEED), "--set", "n_large=2500",
            "--set", "tau0_ref_firms=0", "--replicates", "2", "--sweep", "bm=1,2.5"]
    subprocess.run([cutoff_bin, "ensemble", BASELINE, "-o", str(tmp_path / "cli"), *args, "-q"], check=True)
    with pytest.warns(UserWarning, match="below 100000 firm agents"):
        ds = cutoff.ensemble(cutoff.Scenario.load(BASELINE, set=SETS), str(tmp_path / "api"), replicates=2,
                             sweep={"bm": [1, 2.5]}, firms=FIRMS, users=USERS, ticks=6, seed=SEED)
    assert ds.sizes["replicate"] == 2 and list(ds["bm"].values) == [1.0, 2.5]
    for name in ("ensemble.h5", "summary.h5"):
        cli, api = datasets(tmp_path / "cli" / name), datasets(tmp_path / "api" / name)
        assert sorted(api) == sorted(cli) and len(cli) > 50
        for k in cli:
            assert api[k] == cli[k], f"{name}: dataset {k} differs"
    with pytest.raises(ValueError, match="--sweep 'bm=1,1': value 1 appears twice"):
        cutoff.ensemble(cutoff.Scenario.load(BASELINE, set=SETS), str(tmp_path / "bad"), sweep={"bm": [1, 1]})
