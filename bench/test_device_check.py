#!/usr/bin/env python3
"""bench/device-check's own safeguards (issue 41), without a GPU: run by ctest as
DeviceCheck.<case>.

  killed-mid-run   the dry run killed (SIGKILL) while a step runs leaves its results
                   file valid JSON, every step with a status, the later ones 'not reached'
  mpi-hidden       the ensemble step passes with Open MPI's plugins hidden, and fails
                   (is caught) when the process is named a rank by an MPI launcher's
                   variable, so that MPI_Init runs and cannot load its plugins
  preflight        a bundle that holds its libraries loads from itself; one with a
                   library taken out is named as missing; a build with MPI is refused
                   by --pack's packer (exit 2, naming the MPI library)

Only the Python standard library. Exit 0 when the case holds, 1 otherwise, 77 (skip)
when the build lacks what the case needs.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "device-check")


def load_device_check():
    loader = importlib.machinery.SourceFileLoader("device_check", SCRIPT)
    spec = importlib.util.spec_from_loader("device_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def links_mpi(prog):
    out = subprocess.run(["ldd", prog], capture_output=True, text=True).stdout
    return "libmpi" in out


def killed_mid_run(dc, build, tmp):
    # Kill the dry run while one of its steps runs (whichever: on a machine without a GPU
    # the first steps can take less than a poll), then read what it left.
    out = os.path.join(tmp, "out")
    p = subprocess.Popen([sys.executable, SCRIPT, "--dry-run", "--build", build, "--out", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = None
    deadline = time.monotonic() + 120
    seen = None
    while time.monotonic() < deadline and p.poll() is None:
        names = [f for f in os.listdir(out) if f.startswith("dry-run-") and f.endswith(".json")] \
            if os.path.isdir(out) else []
        if names:
            path = os.path.join(out, names[0])
            with open(path) as f:
                seen = json.load(f)  # must never be half a file
        if seen and any(v["status"] == "running" for k, v in seen["steps"].items() if k != dc.STEPS[0]):
            break
        time.sleep(0.02)
    check(p.poll() is None, "the dry run is still running when killed")
    p.send_signal(signal.SIGKILL)
    p.wait()
    check(path is not None, "the results file exists while the steps run")
    with open(path) as f:
        result = json.load(f)
    steps = result["steps"]
    check(list(steps) == dc.STEPS, f"every step is listed: {list(steps)}")
    status = [steps[s]["status"] for s in dc.STEPS]
    check(status.count("running") == 1, f"exactly one step reads 'running': {status}")
    k = status.index("running")
    check(k > 0 and all(s == "passed" for s in status[:k]), f"the steps before it passed: {status}")
    check(all(s == "not reached" for s in status[k + 1:]), f"the later steps read 'not reached': {status}")
    check(result["ok"] is None, "a check that did not finish is neither OK nor failed")
    check(not [f for f in os.listdir(out) if f.endswith(".tmp")], "no temporary file is left")


def mpi_hidden(dc, build, tmp):
    cutoff = os.path.join(build, "cutoff")
    args = types.SimpleNamespace(budget=200, bin=build, dry_run=True)
    e = dict(firms=8000, users=20000, ticks=2, jobs=(2,))

    def step(env_extra):
        os.environ.update(env_extra)
        try:
            ck = dc.Check(args, tmp, os.path.join(tmp, "check.log"))
        finally:
            for k in env_extra:
                os.environ.pop(k)
        for k in dc.MPI_LAUNCHER_VARIABLES:
            if k not in env_extra:
                ck.env.pop(k, None)
        runs = dc.ensemble_step(ck, e, "cpu")
        ck.log.close()
        return ck.failures, runs

    failures, runs = step({})
    check(not failures and "members_per_hour" in runs[0],
          f"a single-process ensemble runs with Open MPI's plugins hidden: {failures}")
    if not links_mpi(cutoff):
        print("skipping the rest: cutoff is built without MPI (nothing for a launcher variable to reach)")
        return
    failures, runs = step({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"})
    check(failures and "Open MPI's plugins hidden" in failures[0],
          f"the step fails when MPI_Init runs with its plugins hidden: {failures}")


def preflight(dc, build, tmp):
    cutoff = os.path.join(build, "cutoff")
    if links_mpi(cutoff):
        try:
            dc.pack([cutoff], os.path.join(tmp, "refused"))
            check(False, "--pack refuses a program that loads MPI")
        except SystemExit as e:
            check(e.code == 2, f"--pack refuses a program that loads MPI with exit 2 (got {e.code})")
        check(not os.path.exists(os.path.join(tmp, "refused")), "and leaves no bundle behind")
    # A bundle of cutoff and all its libraries (MPI's too: only the loader is tested here).
    dc.MPI_LIBS = dc.re.compile(r"^$")
    dest = os.path.join(tmp, "bundle")
    dc.pack([cutoff], dest)
    problems, notes = dc.preflight(dest)
    check(problems == [], f"the bundle loads from itself: {problems}")
    check(notes and "GLIBC" in notes[0], f"the preflight names the newest GLIBC needed: {notes}")
    libs = sorted(os.listdir(os.path.join(dest, "lib")))
    gone = next(x for x in libs if x.startswith("libtomlplusplus")) if any(
        x.startswith("libtomlplusplus") for x in libs) else libs[0]
    os.remove(os.path.join(dest, "lib", gone))
    problems, _ = dc.preflight(dest)
    check(any(gone in p for p in problems), f"a library taken out of the bundle is named: {problems}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["killed-mid-run", "mpi-hidden", "preflight"])
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    if shutil.which("readelf") is None or shutil.which("ldd") is None:
        print("skipping: no readelf or ldd")
        return 77
    dc = load_device_check()
    tmp = tempfile.mkdtemp(prefix="test-device-check-")
    try:
        {"killed-mid-run": killed_mid_run, "mpi-hidden": mpi_hidden, "preflight": preflight}[a.case](dc, a.build, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
