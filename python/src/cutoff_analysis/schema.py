"""The scenario schema (every scenario key: type, unit, range, default), read from the
table that ``cutoff validate --doc-params`` prints (docs/parameters.md).

The CLI has no machine-readable form of the schema; its Markdown table is generated
from the schema itself (core/model/params.cpp), so parsing it gives the same facts. With
no binary at hand, the repository's docs/parameters.md (the same text, checked in CI)
is read instead.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOC = os.path.join(ROOT, "docs", "parameters.md")

#: The scenario's policy levers (docs/model.md §4): the booleans a policy maker switches.
LEVERS = ("moratorium", "first_resort", "crackdown", "open_weights", "policy_build", "policy_deal", "policy_kyc",
          "diffusion_rule")


@dataclass(frozen=True)
class Key:
    """One scenario key of the schema."""
    name: str
    type: str          # "real", "integer", "bool", "string", "real[3]", ...
    unit: str
    range: str         # as the doc writes it ("0 to 1", "true, false", ...)
    default: str       # TOML text
    meaning: str
    lo: float | None   # numeric range of a scalar number key (inf where open)
    hi: float | None

    @property
    def scalar_number(self) -> bool:
        return self.type in ("real", "integer")

    @property
    def is_lever(self) -> bool:
        return self.name in LEVERS


def default_cutoff() -> str | None:
    """The cutoff binary: ``$CUTOFF_BIN``, else this checkout's build/cutoff, else
    ``cutoff`` on PATH; ``None`` if there is none."""
    env = os.environ.get("CUTOFF_BIN")
    if env:
        return env
    built = os.path.join(ROOT, "build", "cutoff")
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    return shutil.which("cutoff")


def parse_params_doc(text: str) -> dict[str, Key]:
    """The "Scenario keys" table of docs/parameters.md as {key: Key}."""
    keys: dict[str, Key] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        if section != "Scenario keys" or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6:
            continue
        name, typ, unit, rng, default = cells[0].strip("`"), cells[1], cells[2], cells[3], cells[4].strip("`")
        meaning = "|".join(cells[5:]).strip()
        lo = hi = None
        m = re.fullmatch(r"(-?[0-9.e+]+|-?inf) to (-?[0-9.e+]+|inf)", rng)
        if typ in ("real", "integer") and m:
            lo, hi = float(m.group(1)), float(m.group(2))  # float() reads inf
        keys[name] = Key(name, typ, unit, rng, default, meaning, lo, hi)
    if not keys:
        raise ValueError("no 'Scenario keys' table found in the parameters document")
    return keys


@lru_cache(maxsize=4)
def _schema(cutoff: str | None) -> dict[str, Key]:
    if cutoff:
        done = subprocess.run([cutoff, "validate", "--doc-params"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{cutoff} validate --doc-params: exit {done.returncode}: {done.stderr.strip()}")
        return parse_params_doc(done.stdout)
    if not os.path.isfile(DOC):
        raise RuntimeError(f"no cutoff binary and no {DOC}: cannot read the scenario schema")
    with open(DOC, encoding="utf-8") as f:
        return parse_params_doc(f.read())


def schema(cutoff: str | None = "auto") -> dict[str, Key]:
    """Every scenario key as {name: :class:`Key`}, from ``cutoff validate --doc-params``
    (``cutoff="auto"``: :func:`default_cutoff`; ``None``: the repository's
    docs/parameters.md)."""
    if cutoff == "auto":
        cutoff = default_cutoff()
        if cutoff is None:
            return _schema(None)
    return _schema(cutoff)
