"""What the bench's paired scenario scripts share (bench/scenarios.py, bench/need_trial.py,
bench/scenario_table.py): the shipped scenarios, configurations given on the command line,
the US labs' prices and plans, the compute-for-access hosts' K accessed, and how an
interval is printed. Not a command."""
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from calibration import interval  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "src"))
from cutoff_analysis.calibration import p_min  # noqa: E402
from cutoff_analysis.io import scenario_params  # noqa: E402

SCENARIO_DIR = os.path.join(ROOT, "data", "scenarios")
#: The shipped scenarios other than the baseline, in the order of docs/model.md §4's table.
SCENARIOS = ["buildout", "moratorium", "first-resort", "compute-for-access", "crackdown", "open-weights",
             "diffusion-rule"]
#: The plans' list prices when an output's resolved scenario holds none (docs/model.md §9).
PLAN_LIST = (0.0, 20.0, 200.0)


def scenario_path(name):
    return os.path.join(SCENARIO_DIR, f"{name}.toml")


def shipped_scenarios():
    """Every scenario in data/scenarios but the baseline: SCENARIOS' order, then any other by name."""
    found = sorted(f[:-5] for f in os.listdir(SCENARIO_DIR) if f.endswith(".toml") and f != "baseline.toml")
    return [s for s in SCENARIOS if s in found] + [s for s in found if s not in SCENARIOS]


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the flag and the value."""


def parse_configs(text, flag="--configs"):
    """'LABEL:key=value,key=value;LABEL:...' as [(label, [key=value, ...])]; an empty
    list of keys is the defaults. Raises UsageError naming the flag and the bad part."""
    out = []
    for item in text.split(";"):
        if not item.strip():
            continue
        label, colon, sets = item.partition(":")
        label = label.strip()
        if not colon or not label:
            raise UsageError(f"{flag}: '{item.strip()}' in '{text}': expected LABEL:key=value,... "
                             "(LABEL: alone for the defaults)")
        if label in [c[0] for c in out]:
            raise UsageError(f"{flag}: label '{label}' given twice in '{text}'")
        pairs = [s.strip() for s in sets.split(",") if s.strip()]
        for s in pairs:
            key, eq, value = s.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise UsageError(f"{flag}: '{s}' of configuration '{label}' in '{text}': expected key=value")
        out.append((label, pairs))
    if not out:
        raise UsageError(f"{flag}: '{text}' names no configuration")
    return out


def us_labs(ds):
    return [p for p, h in zip(ds["provider"].values, ds["provider_home"].values, strict=True) if h == "USA"]


def us_price(ds):
    """The US-homed labs' compute price over p_min, mean over the labs."""
    return ds["compute_price"].sel(provider=us_labs(ds)).mean("provider") / p_min(ds)


def plan_list(ds, plan):
    """A plan's list price: the resolved scenario's `plan_price` (docs/model.md §9)."""
    prices = scenario_params(ds).get("plan_price", PLAN_LIST)
    return float(prices[plan])


def us_plan(ds, plan=1):
    """The US labs' price of a plan (1 plus, 2 pro) over its list price, mean over the labs
    (docs/model.md §2.9: the list price times (π_p(t−1)/p_min)^plan_pass)."""
    return ds["plan_price"].sel(provider=us_labs(ds)).isel(plan=plan).mean("provider") / plan_list(ds, plan)


def us_plan_value(ds):
    """The US labs' plan layer earnings per H100e over their compute price."""
    us = us_labs(ds)
    return (ds["plan_value"].sel(provider=us) / ds["compute_price"].sel(provider=us)).mean("provider")


def hosts_K(ds, hosts, t):
    """Employment-weighted K accessed over the countries flagged in hosts at tick index t
    (per replicate): all the size classes' firms, 0 for those that bought nothing (§7)."""
    emp = ds["employment_by_status"].isel(tick=t).sum("status")
    K = ds["K_accessed"].isel(tick=t).fillna(0.0)
    w = (emp * hosts).sum("size_class")
    return (K * emp * hosts).sum(("size_class", "country")) / w.sum("country").where(lambda x: x > 0)


def deal_hosts(ds, t):
    """Countries holding a compute-for-access deal at tick index t (§6: `policy` bit 2), per replicate."""
    return (ds["policy"].isel(tick=t).astype(int) & 2) > 0


def fmt(x):
    """An effect: mean [95% interval] over the replicate pairs, signed."""
    m, hw, _ = interval(np.asarray(x, dtype=float).ravel())
    return f"{m:+.3f} [{m - hw:+.3f}, {m + hw:+.3f}]" if not math.isnan(m) else "nan"


def level(x):
    """A level: mean [95% interval] over the replicates."""
    m, hw, _ = interval(np.asarray(x, dtype=float).ravel())
    return f"{m:.3f} [{m - hw:.3f}, {m + hw:.3f}]"
