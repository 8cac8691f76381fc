"""Two builds of cutoff give the same bits: a refactor's check (docs/architecture.md).

Runs each scenario at each size with both binaries (CPU backend, 2 threads) and
compares every dataset of the outputs byte for byte (h5py), /metrics and the
snapshots alike; the root attributes that name paths or the commit are skipped.
A dataset only the new build writes (a new output) is listed as added, not as a
difference. Prints one line per run and a summary; exit 1 on any difference.

    python3 bench/same_bytes.py OLD_BINARY NEW_BINARY [--ticks 30] \
        [--sizes 2e4/1e5,1e5/1e6] [--scenarios baseline,first-resort,compute-for-access,moratorium] \
        [--set KEY=VALUE ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED_ATTRS = {"command", "git_commit", "scenario", "scenario_file", "wall_seconds", "version"}


def run(binary, scenario, firms, users, ticks, out, sets):
    cmd = [binary, "run", os.path.join(ROOT, "data", "scenarios", scenario + ".toml"), "-o", out,
           "--firms", str(firms), "--users", str(users), "--ticks", str(ticks), "--threads", "2",
           "--backend", "cpu", "--snapshot-every", str(max(1, ticks // 4)), "-q"]
    for kv in sets:
        cmd += ["--set", kv]
    subprocess.run(cmd, check=True)


def datasets(path):
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        attrs = {k: v for k, v in f.attrs.items() if k not in SKIPPED_ATTRS}
    return found, attrs


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:  # variable-length strings: compare the values
        return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--sizes", default="2e4/1e5,1e5/1e6")
    ap.add_argument("--scenarios", default="baseline,first-resort,compute-for-access,moratorium")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to both runs")
    a = ap.parse_args()
    failures, total = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes.split(","):
            firms, users = (int(float(x)) for x in size.split("/"))
            for scenario in a.scenarios.split(","):
                outs = []
                for tag, binary in (("old", a.old), ("new", a.new)):
                    out = os.path.join(tmp, f"{scenario}-{size.replace('/', '_')}-{tag}.h5")
                    run(binary, scenario, firms, users, a.ticks, out, a.set)
                    outs.append(datasets(out))
                (d_old, at_old), (d_new, at_new) = outs
                added = sorted(set(d_new) - set(d_old))
                differ = sorted(k for k in d_old if k not in d_new or not same(d_old[k], d_new[k]))
                differ += sorted(f"@{k}" for k in set(at_old) | set(at_new)
                                 if k not in at_old or k not in at_new or not same(at_old[k], at_new[k]))
                total += len(d_old)
                failures += bool(differ)
                verdict = "identical" if not differ else "DIFFER: " + ", ".join(differ[:8])
                if added:
                    verdict += " (added: " + ", ".join(added) + ")"
                print(f"{scenario:20s} {firms:>8d}/{users:<8d} {len(d_old):4d} datasets  {verdict}", flush=True)
    print(f"same_bytes: {total} datasets compared, {failures} runs differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
