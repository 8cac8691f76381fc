"""The cutoff model in-process (issue 39): ``import cutoff``.

The native module ``cutoff._cutoff`` (python/api/module.cpp, nanobind) runs the model through
the same functions as ``cutoff run``; this package adds what is Python's own:
:meth:`Simulation.metrics` reads the run's ``/metrics`` with :func:`cutoff_analysis.open_run`,
so the Dataset is the one the HDF5 output gives. docs/python-api.md has examples.

    >>> import cutoff
    >>> sc = cutoff.Scenario.load("data/scenarios/baseline.toml", set={"horizon": 12})
    >>> sim = cutoff.Simulation(sc, firms=2000, users=20000, seed=1)
    >>> sim.step(12)
    >>> sim.firms["A"]          # a read-only NumPy view of the model's array
    >>> sim.metrics()           # xarray.Dataset, as cutoff_analysis.open_run gives it
    >>> sim.save("run.h5")      # the file `cutoff run` writes with the same inputs
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import _cutoff
from ._cutoff import FileError, InputError, Scenario, __version__, firm_fields, git_commit, user_fields

if TYPE_CHECKING:
    import xarray

__all__ = ["FileError", "InputError", "Scenario", "Simulation", "__version__", "ensemble", "firm_fields",
           "git_commit", "user_fields"]


class Simulation(_cutoff.Simulation):
    __doc__ = _cutoff.Simulation.__doc__

    def metrics(self) -> xarray.Dataset:
        """The metrics of the ticks run so far, as the xarray Dataset that
        :func:`cutoff_analysis.open_run` reads from a run's ``/metrics`` (dims ``tick``,
        ``country``, ``provider``...; the run's attributes in ``ds.attrs``). It is read from
        an output written through the run's own writer into a temporary folder, so that it
        cannot differ from the file's; loaded into memory, the file removed."""
        from cutoff_analysis.io import open_run  # the analysis package, installed beside

        with tempfile.TemporaryDirectory(prefix="cutoff-metrics-") as d:
            path = os.path.join(d, "metrics.h5")
            self._write_ticks_so_far(path)
            with open_run(path) as ds:
                ds = ds.load()
        ds.attrs.pop("cutoff_path", None)  # the temporary file, gone
        return ds


def ensemble(scenario: Scenario, out: str, replicates: int = 1,
             sweep: Mapping[str, Sequence[float] | str] | None = None, *, jobs: int = 1, threads: int = 0,
             firms: int | None = None, users: int | None = None, seed: int | None = None, ticks: int | None = None,
             backend: str = "auto", max_memory: str = "") -> xarray.Dataset:
    """Runs ``cutoff ensemble`` into the folder ``out`` (members/, ensemble.h5, summary.h5 with
    2+ replicates; docs/ensembles.md) through the command's own code, then opens it with
    :func:`cutoff_analysis.open_ensemble`. ``sweep`` is ``{key: [values]}`` or ``{key: "lo:hi:n"}``,
    each as ``--sweep``; the other arguments mean what :class:`Simulation`'s and the command's do.
    The GIL is released while the members run; a second call with the same arguments resumes."""
    _cutoff._ensemble(scenario, out, replicates, sweep, jobs, threads, firms, users, seed, ticks, backend,
                      max_memory)
    from cutoff_analysis.io import open_ensemble

    return open_ensemble(out)
