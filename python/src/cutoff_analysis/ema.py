"""cutoff as an EMA Workbench ``Model``: its uncertainties and levers are scenario keys
(types and allowed ranges from the scenario schema, :mod:`cutoff_analysis.schema`), its
outcomes the standard outputs of :func:`cutoff_analysis.explore.outputs`, and each
experiment is one ``cutoff run SCENARIO --set key=value...``. So ``perform_experiments``,
its samplers (Latin hypercube, Sobol', Morris), evaluators and analyses (PRIM, CART,
feature scoring) work on it::

    from ema_workbench import perform_experiments
    from cutoff_analysis.ema import cutoff_model
    m = cutoff_model("data/scenarios/baseline.toml",
                     uncertainties={"kappa": (0.4, 1.4), "bm": (0.5, 2.0)},
                     levers=["moratorium"], firms=8000, users=20000, ticks=24)
    experiments, outcomes = perform_experiments(m, scenarios=16, policies=2)

``ema_workbench`` is imported when a model is made: the rest of the package works
without it.
"""
from __future__ import annotations

import math
import os
import subprocess
import tempfile
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .explore import OUTPUTS, CutoffError, cutoff_command, outputs
from .io import open_run
from .schema import schema


def _ema():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "ipyparallel not installed"
            import ema_workbench
    except ImportError as e:  # pragma: no cover - the pinned requirements install it
        raise ImportError(f"cutoff_analysis.ema needs the EMA Workbench ({e}): pip install ema_workbench "
                          "(bash .ci/setup installs the pinned version)") from None
    return ema_workbench


def _name(key: str) -> str:
    """EMA's name of a scenario key: a Python identifier (``provider.0.offset`` →
    ``provider__0__offset``), since EMA passes the values as keyword arguments."""
    return key.replace(".", "__")


def _key(name: str) -> str:
    return name.replace("__", ".")


def _toml(value) -> str:
    """A value as TOML text for ``--set`` (numpy scalars included)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def parameter(key: str, bounds: Sequence[float] | None = None, cutoff: str | None = "auto"):
    """An EMA parameter for scenario key ``key``: ``BooleanParameter`` for a bool key,
    ``IntegerParameter`` for an integer one, ``RealParameter`` for a real one, over
    ``bounds`` (default: the schema's range, which must then be finite). Refuses keys the
    schema does not know or that are not scalars, and bounds outside the schema's range."""
    ema = _ema()
    keys = schema(cutoff)
    base = key.split(".")[0] if key.startswith("provider.") else key
    if key.startswith("provider."):
        if bounds is None:
            raise ValueError(f"'{key}': give its bounds (provider fields have no range in the key table)")
        return ema.RealParameter(_name(key), float(bounds[0]), float(bounds[1]))
    if base not in keys:
        raise ValueError(f"'{key}' is not a scenario key (cutoff validate --doc-params lists them)")
    k = keys[base]
    if k.type == "bool":
        return ema.BooleanParameter(_name(key))
    if not k.scalar_number:
        raise ValueError(f"'{key}' is of type {k.type}: only real, integer and bool keys can be varied")
    lo, hi = (k.lo, k.hi) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"'{key}': its range {k.range} is not finite: give bounds")
    if lo < k.lo or hi > k.hi or not lo < hi:
        raise ValueError(f"'{key}' bounds [{lo}, {hi}]: allowed {k.range}, with lo below hi")
    if k.type == "integer":
        return ema.IntegerParameter(_name(key), int(math.ceil(lo)), int(math.floor(hi)))
    return ema.RealParameter(_name(key), lo, hi)


def _parameters(spec, cutoff) -> list:
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [parameter(k, v, cutoff) for k, v in spec.items()]
    return [parameter(k, None, cutoff) for k in spec]


class CutoffRunner:
    """The function behind the EMA model: one ``cutoff run`` per experiment, with each
    uncertainty and lever as ``--set key=value``; returns the standard outputs at ``tick``
    (default the last). Picklable, so EMA's multiprocessing and MPI evaluators can use it."""

    def __init__(self, scenario: str, outcomes: Sequence[str], firms=None, users=None, ticks=None, seed=None,
                 replicate=None, sets: Sequence[str] = (), cutoff: str | None = None, threads: int | None = 1,
                 workdir: str | None = None, tick: int | None = None, keep: bool = False):
        self.scenario, self.outcomes = os.path.abspath(scenario), list(outcomes)
        self.flags = []
        for flag, v in (("--firms", firms), ("--users", users), ("--ticks", ticks), ("--seed", seed),
                        ("--replicate", replicate), ("--threads", threads)):
            if v is not None:
                self.flags += [flag, str(int(v))]
        for s in sets:
            self.flags += ["--set", s]
        self.cutoff, self.workdir, self.tick, self.keep = cutoff_command(cutoff), workdir, tick, keep

    def command(self, out: str, **values) -> list[str]:
        cmd = [self.cutoff, "run", self.scenario, "-o", out, "-q", *self.flags]
        for name, v in values.items():
            cmd += ["--set", f"{_key(name)}={_toml(v)}"]
        return cmd

    def __call__(self, **values) -> dict:
        d = self.workdir or tempfile.gettempdir()
        os.makedirs(d, exist_ok=True)
        fd, out = tempfile.mkstemp(prefix="cutoff-ema-", suffix=".h5", dir=d)
        os.close(fd)
        try:
            cmd = self.command(out, **values)
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                raise CutoffError(cmd, done.returncode, done.stderr or done.stdout)
            with open_run(out) as ds:
                row = outputs(ds, self.tick).iloc[0]
            return {k: float(row[k]) for k in self.outcomes}
        finally:
            if not self.keep and os.path.exists(out):
                os.remove(out)


def cutoff_model(scenario: str, uncertainties=None, levers=None, outcomes: Sequence[str] | None = None,
                 name: str = "cutoff", firms: int | None = None, users: int | None = None, ticks: int | None = None,
                 seed: int | None = None, replicate: int | None = None, sets: Sequence[str] = (),
                 cutoff: str | None = None, threads: int | None = 1, workdir: str | None = None,
                 tick: int | None = None, keep: bool = False):
    """An EMA Workbench ``Model`` running ``cutoff run SCENARIO`` per experiment.

    ``uncertainties`` and ``levers``: scenario keys, as a list (ranges from the schema)
    or a dict ``{key: (lo, hi)}`` (bool keys take ``None``); types from the schema
    (:func:`parameter`). ``outcomes``: names from :data:`~cutoff_analysis.explore.OUTPUTS`
    (default all), each a ``ScalarOutcome`` at ``tick`` (default the last). ``firms``,
    ``users``, ``ticks``, ``seed``, ``replicate`` and ``sets`` (``key=value`` overrides)
    apply to every experiment; ``threads`` per run (1: let EMA's evaluators run
    experiments side by side). ``keep`` keeps each run's file in ``workdir``."""
    ema = _ema()
    outcomes = list(OUTPUTS if outcomes is None else outcomes)
    unknown = [o for o in outcomes if o not in OUTPUTS]
    if unknown:
        raise ValueError(f"outcomes {unknown}: allowed {list(OUTPUTS)}")
    ckey = cutoff or "auto"
    unc, lev = _parameters(uncertainties, ckey), _parameters(levers, ckey)
    if not unc and not lev:
        raise ValueError("cutoff_model: give at least one uncertainty or lever")
    runner = CutoffRunner(scenario, outcomes, firms, users, ticks, seed, replicate, sets, cutoff, threads, workdir,
                          tick, keep)
    model = ema.Model(name, function=runner)
    model.uncertainties = unc
    model.levers = lev
    model.outcomes = [ema.ScalarOutcome(o) for o in outcomes]
    return model
