"""Loaders on small real outputs: dims, coordinates, metadata, and clear errors."""
import csv
import os
import shutil
import subprocess

import h5py
import numpy as np
import pytest

import cutoff_analysis as ca
from cutoff_analysis.io import SEAL_BYTES
from conftest import REPLICATES, ROOT, SWEEP, TICKS


def country_table():
    with open(os.path.join(ROOT, "data", "countries.csv")) as f:
        return {r["iso3"]: r for r in csv.DictReader(row for row in f if not row.startswith("#"))}


def test_open_run_dims_and_coords(run_file):
    ds = ca.open_run(run_file)
    params = ca.scenario_params(ds)
    assert list(ds["tick"].values) == list(range(TICKS))
    assert list(ds["provider"].values) == [p["name"] for p in params["provider"]]
    assert sorted(ds["country"].values) == sorted(country_table())
    assert ds["class"].size == 6 and "consumer" in ds["class"].values
    assert ds["adoption_share"].dims == ("tick", "country")
    assert ds["price"].dims == ("tick", "provider", "class")
    assert ds["K_lead"].dims == ("tick",)
    assert ds.attrs["seed"] == 3 and ds.attrs["replicate"] == 1
    assert ds.attrs["cutoff_path"] == os.path.abspath(run_file)
    assert set(ds["income_group"].values) <= set(ca.INCOME_GROUPS)
    assert set(ds["tier"].values) <= set(ca.TIERS)
    assert (ds["population"] > 0).all()
    assert ca.followers(ds) == [p["name"] for p in params["provider"] if p["follower"]]
    assert ca.calib_tick(ds) == params["calib_tick"]


def test_open_run_who_is_cut_off_and_the_generation_table(run_file):
    # docs/model.md v4 §7: statuses by country and size class, users per country, ζ, the generations.
    ds = ca.open_run(run_file)
    assert ds["firms_by_status"].dims == ("tick", "country", "size_class", "status")
    assert list(ds["status"].values) == list(ca.STATUSES)
    assert list(ds["size_class"].values) == ["1-9", "10-49", "50-249", "250+"]
    assert ds["firms_by_status"].attrs["units"] == "firms"
    assert ds["K_gap"].dims == ("tick", "country", "size_class")
    assert ds["plan_share"].dims == ("tick", "country", "plan")
    for name in ("capped_share", "tokens_per_adopter", "zeta", "quota_demand"):
        assert ds[name].dims == ("tick", "country"), name
    assert (ds["zeta"] == 1).all()  # the baseline has no tier-2 quota
    gens = ds["generation_K"]
    assert gens.dims == ("generation",) and gens.size >= 2 * ds.sizes["provider"]
    assert (ds["generation_general"] >= ds["generation_entry"]).all()
    # Snapshot generation indices point into the table.
    snap = ca.open_snapshots(run_file)
    used = np.unique(snap["generation"].values)
    assert (used[used != 255] < gens.size).all()
    shares = ca.cut_off_share(ds)
    assert ((shares >= 0) & (shares <= 1)).all()


def test_country_metadata_matches_the_table(run_file):
    ds = ca.open_run(run_file)
    table = country_table()
    for iso in ds["country"].values[:20]:
        row, c = table[iso], ds.sel(country=iso)
        assert str(c["income_group"].values) == row["income_group"]
        assert int(c["tier"]) == int(row["tier"])


def test_lorenz_from_snapshots_agrees_with_the_recorded_top20(run_file):
    ds = ca.open_run(run_file)
    curve = ca.lorenz(ds, points=1001)
    assert curve.dims == ("population_share",)
    tick = curve.attrs["tick"]
    # The curve is linear within each firm, so a fine grid reproduces the C++ rank statistic.
    top = 1 - float(curve.interp(population_share=0.8))
    assert top == pytest.approx(float(ds["top20_value_share"].sel(tick=tick)), abs=2e-3)
    exact = ca.analysis.firm_value_and_weight(run_file)
    assert ca.top_share(exact[0], exact[1]) == pytest.approx(float(ds["top20_value_share"].sel(tick=tick)), rel=1e-9)
    # The calibration's population (docs/model.md §8): the firms with 250+ employees.
    large = ca.analysis.firm_value_and_weight(run_file, min_employees=250)
    assert 0 < large[0].size < exact[0].size
    recorded = float(ds["top20_value_share_large"].sel(tick=tick))
    assert ca.top_share(large[0], large[1]) == pytest.approx(recorded, rel=1e-9)
    assert recorded != pytest.approx(float(ds["top20_value_share"].sel(tick=tick)), rel=1e-3)


def test_lorenz_of_fields_in_memory_is_the_snapshots_curve(run_file):
    # What notebooks/scenarios.ipynb draws from cutoff.Simulation.firms: the same curve as
    # from the file's last snapshot, given the metrics up to the snapshot's tick.
    ds = ca.open_run(run_file)
    curve = ca.lorenz(ds)
    snaps = ca.open_snapshots(run_file, "firms")
    with snaps:
        fields = {k: v.values for k, v in snaps.isel(snapshot=-1).data_vars.items()}
    mine = ca.lorenz_of(fields, ds.sel(tick=slice(None, curve.attrs["tick"])))
    assert mine.attrs["tick"] == curve.attrs["tick"]
    np.testing.assert_array_equal(mine.values, curve.values)


def test_open_ensemble_dims_coords_and_members(fake_ensemble_dir):
    key, values = SWEEP
    ds = ca.open_ensemble(fake_ensemble_dir)
    assert ca.sweep_keys(ds) == [key]
    assert ds["adoption_share"].dims == (key, "replicate", "tick", "country")
    assert list(ds[key].values) == values
    assert list(ds["replicate"].values) == list(range(REPLICATES))
    assert ds["member"].dims == (key, "replicate")
    # Country metadata come from a member where ensemble.h5 lacks them.
    assert {"population", "income_group", "tier"} <= set(ds["country"].coords)
    files = ca.io.run_files(ds)
    m = ca.open_run(str(files.sel({key: values[1], "replicate": 1}).values))
    assert m.attrs["member"] == int(ds["member"].sel({key: values[1], "replicate": 1}))
    assert m.attrs[key] == values[1]
    np.testing.assert_array_equal(m["adoption_share"].values,
                                  ds["adoption_share"].sel({key: values[1], "replicate": 1}).values)
    np.testing.assert_array_equal(m["population"].values, ds["population"].values)
    assert ca.calib_tick(ds) == 14


def test_open_summary(fake_ensemble_dir):
    s = ca.open_summary(fake_ensemble_dir)
    assert list(s["stat"].values) == ["mean", "std", "q05", "q25", "q50", "q75", "q95"]
    assert s["adoption_share"].dims[:3] == ("stat", SWEEP[0], "tick")
    ens = ca.open_ensemble(fake_ensemble_dir)
    np.testing.assert_allclose(s["frontier_K"].sel(stat="mean"), ens["frontier_K"].mean("replicate"))


def test_helpers_keep_the_ensemble_dims(fake_ensemble_dir):
    ds = ca.open_ensemble(fake_ensemble_dir)
    key = SWEEP[0]
    assert ca.adoption_by(ds).dims == ("income_group", key, "replicate", "tick")
    assert ca.lorenz(ds).dims == (key, "replicate", "population_share")
    q = ca.bands(ca.users_capped(ds))
    assert q.dims == ("quantile", key, "tick")


@pytest.fixture
def bad_files(tmp_path, run_file):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1, 2]
    future = tmp_path / "future.h5"
    shutil.copy(run_file, future)
    with h5py.File(future, "a") as f:
        f.attrs["schema_version"] = 99
    with open(future, "r+b") as fh:  # a future version's file, not this one changed: no seal
        fh.write(bytes(SEAL_BYTES))
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f.attrs["schema_version"] = 1
    return {"not an HDF5 file": text, "no schema_version": plain, "schema_version 99": future,
            "no /metrics group": bare}


def test_clear_errors_name_the_file(bad_files):
    for why, path in bad_files.items():
        with pytest.raises(ca.CutoffFormatError, match=why) as e:
            ca.open_run(str(path))
        assert str(path) in str(e.value)


def test_ensemble_errors(tmp_path, fake_ensemble_dir):
    with pytest.raises(ca.CutoffFormatError, match="no ensemble.h5") as e:
        ca.open_ensemble(str(tmp_path))
    assert str(tmp_path) in str(e.value)
    with pytest.raises(ca.CutoffFormatError, match="open_ensemble"):
        ca.open_run(os.path.join(fake_ensemble_dir, "ensemble.h5"))
    with pytest.raises(ca.CutoffFormatError, match="no such file"):
        ca.open_run(str(tmp_path / "missing.h5"))


def test_report_writes_figures_and_summary(tmp_path, run_file, fake_ensemble_dir):
    from cutoff_analysis.report import FIGURES, main
    for src, name in ((run_file, "run"), (fake_ensemble_dir, "ens")):
        out = tmp_path / name
        assert main([src, "-o", str(out)]) == 0
        pngs = sorted(p.name for p in out.glob("*.png"))
        assert pngs == sorted(f"{stem}.png" for stem, _, _ in FIGURES)
        text = (out / "summary.md").read_text()
        assert "tick 14" in text and f"tick {TICKS - 1}" in text
        for png in pngs:
            assert f"]({png})" in text


def test_report_bad_input_exits_2(tmp_path, capsys, bad_files):
    from cutoff_analysis.report import main
    path = bad_files["schema_version 99"]
    assert main([str(path), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "schema_version 99" in err
    assert main([str(tmp_path), "-o", str(tmp_path / "r")]) == 2


# Failure paths (issue 37): a damaged or truncated file names itself and, where it can, the
# dataset; cutoff-report follows the command line's exit statuses and leaves nothing half-written.

def _damage_first_chunk(path, dataset):
    """Overwrites bytes inside the first stored chunk of ``dataset`` (its address from
    HDF5's chunk index), as a bad disk or a stray write would."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(b"\x5a" * 8)


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in err


def test_a_damaged_dataset_is_named_not_read_as_nan(tmp_path, run_file):
    bad = tmp_path / "bad.h5"
    shutil.copy(run_file, bad)
    _damage_first_chunk(bad, "metrics/capacity")
    with pytest.raises(ca.CutoffFormatError, match="/metrics/capacity") as e:
        ca.open_run(str(bad))
    assert "corrupt" in str(e.value) and str(bad) in str(e.value)
    ca.open_run(run_file).close()  # the undamaged original still reads


def _replace_once(path, text, new):
    """Overwrites the one occurrence of ``text`` in ``path`` with ``new`` (same length):
    a name or a string value, wherever HDF5 keeps it."""
    data = open(path, "rb").read()
    assert len(text) == len(new) and data.count(text) == 1, text
    with open(path, "r+b") as fh:
        fh.seek(data.index(text))
        fh.write(new)


@pytest.mark.parametrize("text, new, names", [
    (b"schema_version", b"schema_versiom", None),   # a root attribute's name: not "no schema_version"
    (b"fully resolved", b"fully resolveD", None),   # a root attribute's text
    (b"Afghanistan", b"Afghanistam", "/metrics/country_name"),  # strings, in HDF5's global heap
])
def test_damage_anywhere_reads_as_corrupt(tmp_path, run_file, text, new, names):
    bad = tmp_path / "bad.h5"
    shutil.copy(run_file, bad)
    _replace_once(bad, text, new)
    with pytest.raises(ca.CutoffFormatError, match="corrupt") as e:
        ca.open_run(str(bad))
    assert str(bad) in str(e.value)
    if names:
        assert names in str(e.value)


def test_the_seal_covers_every_byte_after_the_user_block(tmp_path, run_file):
    from cutoff_analysis.io import check_seal
    data = open(run_file, "rb").read()
    assert data.startswith(b"cutoff-sha256 ")
    check_seal(run_file)
    bad = tmp_path / "bad.h5"
    for at in (SEAL_BYTES, len(data) // 3, len(data) - 1):  # a byte no HDF5 checksum may cover
        bad.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        with pytest.raises(ca.CutoffFormatError, match="corrupt"):
            check_seal(str(bad))
    bad.write_bytes(data[:-10])
    with pytest.raises(ca.CutoffFormatError, match="truncated file|bytes after the user block"):
        check_seal(str(bad))


def test_report_bad_input_exits_2_with_one_line(tmp_path, capsys, run_file):
    from cutoff_analysis.report import main
    corrupt, truncated, a_file = tmp_path / "corrupt.h5", tmp_path / "truncated.h5", tmp_path / "a-file"
    shutil.copy(run_file, corrupt)
    _damage_first_chunk(corrupt, "metrics/capacity")
    data = open(run_file, "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    a_file.write_text("not a folder")
    for args, needles in (([str(corrupt), "-o", str(tmp_path / "r1")], ["corrupt", "/metrics/capacity"]),
                          ([str(truncated), "-o", str(tmp_path / "r2")], [str(truncated)]),
                          ([run_file, "-o", str(a_file)], [str(a_file), "not a folder"])):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert _one_line(err), err
        for n in needles:
            assert n in err, err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    assert a_file.read_text() == "not a folder"


def _mount_tmpfs(path, options):
    """Mounts a tmpfs on ``path``; the reason it cannot, or None."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exited {r.returncode}")


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_report_full_disk_exits_1_and_leaves_nothing(tmp_path, capsys, run_file):
    from cutoff_analysis.report import main
    mnt = tmp_path / "disk"
    why = _mount_tmpfs(mnt, "size=64k")
    if why:
        pytest.skip(f"cannot mount a tmpfs here ({why}): needs root and a container that permits mount")
    try:
        assert main([run_file, "-o", str(mnt / "report")]) == 1
        err = capsys.readouterr().err
        assert _one_line(err), err
        assert "disk full" in err and str(mnt / "report") in err
        assert os.listdir(mnt) == [], os.listdir(mnt)
    finally:
        _umount(mnt)


def test_report_read_only_folder_exits_2(tmp_path, capsys, run_file):
    from cutoff_analysis.report import main
    mnt = tmp_path / "ro"
    why = _mount_tmpfs(mnt, "size=64k,ro")
    if why:
        pytest.skip(f"cannot mount a tmpfs here ({why}): needs root and a container that permits mount")
    try:
        assert main([run_file, "-o", str(mnt / "report")]) == 2
        err = capsys.readouterr().err
        assert _one_line(err), err
        assert "read-only" in err and str(mnt / "report") in err
    finally:
        _umount(mnt)


def test_report_into_an_existing_folder_replaces_whole_files(tmp_path, run_file):
    from cutoff_analysis.report import main
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.md").write_text("an older summary")
    (out / "notes.txt").write_text("the user's own file")
    assert main([run_file, "-o", str(out)]) == 0
    assert (out / "summary.md").read_text() != "an older summary"
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert [p.name for p in tmp_path.iterdir()] == ["report"], "a temporary folder was left beside -o"
