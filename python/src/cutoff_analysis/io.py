"""Loaders for cutoff's HDF5 output: one run, an ensemble directory, its summary.

A run file (``cutoff run``) holds ``/metrics`` (every metric over ``tick`` and its own
dimensions ``provider``, ``class``, ``country``), optionally ``/snapshots/<population>``,
and root attributes (``schema_version``, ``scenario`` as resolved TOML, ``seed``,
``replicate``...). An ensemble directory (``cutoff ensemble``) holds
``members/m*.h5`` (run files), ``ensemble.h5`` (every metric stacked over the swept
keys and ``replicate``) and ``summary.h5`` (statistics over replicates).
"""
from __future__ import annotations

import glob
import hashlib
import os
import tomllib

import h5py
import numpy as np
import xarray as xr

#: ``schema_version`` values (root attribute, core/version.hpp) this package reads.
KNOWN_SCHEMA_VERSIONS = (1,)

#: Per-country metadata the helpers need; a run file holds them as ``country`` coordinates.
COUNTRY_META = ("population", "tier", "income_group")


class CutoffFormatError(ValueError):
    """A path that is not a cutoff output this package can read (the message names it,
    and for a damaged file the dataset that does not read back)."""


def _corrupt(path: str, what: str, error: Exception) -> CutoffFormatError:
    """The error for a file HDF5 cannot read back: a Fletcher-32 checksum that does not
    match (cutoff sets one on every numeric dataset), strings that do not match their
    digest, a metadata checksum (headers and attributes), a damaged or truncated structure."""
    return CutoffFormatError(f"{path}: corrupt: {what} does not read back ({error}); write it again from its run")


def verify_metrics(path: str) -> None:
    """Reads every chunk of every dataset in ``/metrics`` of ``path`` through its filters,
    so that a damaged one raises :class:`CutoffFormatError` naming the dataset instead of
    reading as NaN (issue 37). Memory: one chunk at a time."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _corrupt(path, "the file", e) from None
    with f:
        group = f.get("metrics")
        if not isinstance(group, h5py.Group):
            return
        for name, d in group.items():
            if not isinstance(d, h5py.Dataset) or d.size == 0:
                continue
            try:
                if d.dtype.kind == "O":
                    _verify_strings(d)
                elif d.chunks is not None:
                    for block in d.iter_chunks():
                        d[block]
            except (OSError, ValueError) as e:
                raise _corrupt(path, f"dataset /metrics/{name}", e) from None


def _verify_strings(d: h5py.Dataset) -> None:
    """Variable-length strings carry no filter: cutoff writes the SHA-256 of the strings,
    each with its NUL, in attribute ``sha256`` (core/io/hdf5.hpp, strings_digest)."""
    want = d.attrs.get("sha256")
    if want is None:
        return
    strings = (s if isinstance(s, bytes) else s.encode() for s in d[()].ravel())
    got = hashlib.sha256(b"".join(s + b"\0" for s in strings)).hexdigest()
    if got != _text(want):
        raise ValueError("its strings do not match their checksum")


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


#: Root attribute ``kind`` of each file: run files (and ensemble members) have none.
RUN_KINDS = (None, "run", "member")


#: The user block at the start of every file cutoff writes holds this tag, the SHA-256 of
#: every byte after the block and their count (core/io/seal.hpp).
SEAL_BYTES = 512
_SEAL_TAG = b"cutoff-sha256 "


def check_seal(path: str) -> bool:
    """Checks ``path`` against the whole-file checksum cutoff writes into its user block
    before HDF5 parses anything: True when it matches, False for a file without one
    (written before seals). A mismatch raises :class:`CutoffFormatError`, naming the
    damaged dataset when the per-dataset checksums find it (:func:`verify_metrics`)."""
    with open(path, "rb") as fh:
        head = fh.read(SEAL_BYTES)
        if not head.startswith(_SEAL_TAG):
            return False
        fields = head[len(_SEAL_TAG):].split(b"\n", 1)[0].split()
        digest = hashlib.sha256()
        while block := fh.read(1 << 20):
            digest.update(block)
    size = os.path.getsize(path) - SEAL_BYTES
    if len(fields) != 2 or not fields[1].isdigit():
        why = "its seal line is damaged"
    elif int(fields[1]) != size:
        why = f"{size} bytes after the user block where {int(fields[1])} were written"
    elif digest.hexdigest() != fields[0].decode(errors="replace"):
        why = "its bytes differ from the SHA-256 written with them: damaged, or changed after cutoff wrote it"
    else:
        return True
    verify_metrics(path)  # names the dataset where a chunk's or the strings' checksum fails
    raise CutoffFormatError(f"{path}: corrupt: {why}; write it again from its run")


def _root_attrs(path: str, kinds: tuple) -> tuple[dict, bool]:
    """Root attributes of ``path`` after checking that it is a cutoff output of a known
    schema version, with a ``/metrics`` group, whose ``kind`` is one of ``kinds``; and
    whether its seal matches (:func:`check_seal`)."""
    if not os.path.isfile(path):
        raise CutoffFormatError(f"{path}: no such file")
    sealed = check_seal(path)
    if not h5py.is_hdf5(path):
        raise CutoffFormatError(f"{path}: not a cutoff output (not an HDF5 file)")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _text(v.item() if isinstance(v, np.ndarray) and v.size == 1 else v)
                     for k, v in f.attrs.items()}
            has_metrics = isinstance(f.get("metrics"), h5py.Group)
    except OSError as e:  # a truncated file, a damaged header or attribute
        raise _corrupt(path, "the file's root", e) from None
    if "schema_version" not in attrs:
        raise CutoffFormatError(f"{path}: not a cutoff output (no schema_version attribute)")
    version = int(attrs["schema_version"])
    if version not in KNOWN_SCHEMA_VERSIONS:
        known = ", ".join(map(str, KNOWN_SCHEMA_VERSIONS))
        raise CutoffFormatError(f"{path}: schema_version {version} is not one this package knows ({known}); "
                                "update cutoff-analysis")
    if not has_metrics:
        raise CutoffFormatError(f"{path}: not a cutoff output (no /metrics group)")
    kind = attrs.get("kind")
    if kind not in kinds:
        what = {None: "a run file", "ensemble": "an ensemble.h5", "summary": "a summary.h5"}
        raise CutoffFormatError(f"{path}: is {what.get(kind, repr(kind))}, expected {what[kinds[0]]}"
                                + ("; open its ensemble directory with open_ensemble" if kind not in RUN_KINDS else ""))
    return attrs, sealed


def _open_metrics(path: str, kinds: tuple) -> xr.Dataset:
    attrs, sealed = _root_attrs(path, kinds)
    if not sealed:  # a matching seal already stands for every chunk's checksum
        verify_metrics(path)
    try:
        ds = xr.open_dataset(path, group="metrics", engine="h5netcdf")
    except OSError as e:
        raise _corrupt(path, "/metrics", e) from None
    ds.attrs.update(attrs)
    ds.attrs["cutoff_path"] = os.path.abspath(path)
    return ds


def open_run(path: str) -> xr.Dataset:
    """The ``/metrics`` of one run file (``cutoff run`` or an ensemble member) as a
    Dataset with dims ``tick`` (with a calendar ``date``), ``provider``, ``class``,
    ``country`` (ISO3, with ``population``, ``tier``, ``income_group``...) and the root
    attributes in ``ds.attrs`` (``cutoff_path`` is the file). Raises
    :class:`CutoffFormatError` naming the file if it is not one."""
    ds = _open_metrics(path, RUN_KINDS)
    ds.attrs["cutoff_kind"] = "run"
    return ds


def _members(directory: str) -> list[str]:
    return sorted(glob.glob(os.path.join(directory, "members", "m*.h5")))


def _ensemble_file(directory: str, name: str) -> str:
    if not os.path.isdir(directory):
        raise CutoffFormatError(f"{directory}: not an ensemble directory (not a directory)")
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        one = name == "summary.h5" and os.path.isfile(os.path.join(directory, "ensemble.h5"))
        raise CutoffFormatError(f"{directory}: no {name}" + (" (an ensemble of one replicate has none: "
                                                             "open_ensemble gives its values)" if one else
                                                             " (not an ensemble directory)"))
    return path


def _complete_from_member(ds: xr.Dataset, directory: str) -> xr.Dataset:
    """Adds what a member run file holds and the stacked file may not: the country
    metadata coordinates and the resolved scenario TOML (kept as ``scenario_toml``)."""
    members = _members(directory)
    if not members:
        return ds
    with xr.open_dataset(members[0], group="metrics", engine="h5netcdf") as m:
        if "country" in ds.dims and "country" in m.dims:
            extra = {name: m[name] for name in m["country"].coords
                     if name not in ds.coords and m[name].dims == ("country",)}
            ds = ds.assign_coords({k: v.reindex(country=ds["country"]) for k, v in extra.items()})
        if "date" not in ds.coords and "date" in m.coords and "tick" in ds.dims:
            ds = ds.assign_coords(date=m["date"].reindex(tick=ds["tick"]))
    ds.attrs["scenario_toml"] = _root_attrs(members[0], RUN_KINDS)[0].get("scenario")
    return ds


def sweep_keys(ds: xr.Dataset) -> list[str]:
    """The swept parameter names of an ensemble Dataset, in dimension order."""
    keys = ds.attrs.get("sweep_keys", "") or ""
    return [k for k in str(keys).split(",") if k]


def open_ensemble(directory: str, summary: bool = False) -> xr.Dataset:
    """The stacked metrics of an ensemble directory (``ensemble.h5``): each metric over
    ``(<swept keys>..., replicate, tick, <its own dims>)``, with ``member`` (the member
    file's number) and the country metadata of a run file. ``summary=True`` gives
    ``summary.h5`` instead: each metric over ``(stat, <swept keys>..., tick, ...)``.
    Raises :class:`CutoffFormatError` naming the path if it is not one."""
    name, kind = ("summary.h5", "summary") if summary else ("ensemble.h5", "ensemble")
    path = _ensemble_file(directory, name)
    ds = _open_metrics(path, (kind,))
    ds = _complete_from_member(ds, directory)
    ds.attrs["cutoff_kind"] = kind
    ds.attrs["cutoff_dir"] = os.path.abspath(directory)
    return ds


def open_summary(directory: str) -> xr.Dataset:
    """``summary.h5`` of an ensemble directory; see :func:`open_ensemble`."""
    return open_ensemble(directory, summary=True)


def open_output(path: str) -> xr.Dataset:
    """A run file or an ensemble directory, whichever ``path`` is."""
    return open_ensemble(path) if os.path.isdir(path) else open_run(path)


def scenario_params(ds: xr.Dataset) -> dict:
    """The resolved scenario parameters (root attribute ``scenario`` of a run file, or
    of an ensemble's first member), as a dict; empty if the output holds none."""
    for key in ("scenario_toml", "scenario"):
        text = ds.attrs.get(key)
        if text:
            try:
                return tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                continue
    return {}


def followers(ds: xr.Dataset) -> list[str]:
    """Providers that are fast followers (the scenario's ``provider.follower``)."""
    return [p["name"] for p in scenario_params(ds).get("provider", []) if p.get("follower")]


def calib_tick(ds: xr.Dataset) -> int | None:
    """The scenario's calibration tick if the output reaches it, else ``None``."""
    t = scenario_params(ds).get("calib_tick")
    return int(t) if t is not None and "tick" in ds.dims and int(t) in ds["tick"].values else None


def run_files(ds: xr.Dataset) -> xr.DataArray:
    """The run file behind each point of ``ds``: a 0-d array for a run, or one over the
    ensemble's swept keys and ``replicate`` (from its ``member`` variable)."""
    if ds.attrs.get("cutoff_kind") == "run":
        return xr.DataArray(ds.attrs["cutoff_path"])
    directory = ds.attrs["cutoff_dir"]
    return xr.apply_ufunc(np.vectorize(lambda m: os.path.join(directory, "members", f"m{int(m):06d}.h5")),
                          ds["member"])


def open_snapshots(path: str, population: str = "firms") -> xr.Dataset | None:
    """``/snapshots/<population>`` of a run file (dims ``snapshot``, agent), or ``None``
    if the run wrote no snapshots (``--snapshot-every 0``)."""
    _root_attrs(path, RUN_KINDS)
    with h5py.File(path, "r") as f:
        if f"snapshots/{population}" not in f:
            return None
    return xr.open_dataset(path, group=f"snapshots/{population}", engine="h5netcdf")
