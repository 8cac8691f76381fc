#!/usr/bin/env python3
"""Executes notebooks top to bottom with nbclient; exit 1 on any cell error.

    python python/tools/run_notebooks.py notebooks/*.ipynb [--save-to DIR] [--figures DIR]

Each notebook runs in its own directory with ``cutoff`` found on PATH. ``--save-to``
writes the executed notebooks there (the stored ones stay without outputs);
``--figures`` writes every PNG figure the cells displayed, to look at. Exit status 77
(ctest's skip) if nbclient or a Jupyter kernel is missing.
"""
import argparse
import base64
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--save-to", help="directory for the executed notebooks")
    ap.add_argument("--figures", help="directory for the figures the cells displayed (PNG)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = ap.parse_args()
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as e:
        print(f"run_notebooks: skipped: {e} (bash .ci/setup installs it)")
        return 77
    if "python3" not in KernelSpecManager().find_kernel_specs():
        print("run_notebooks: skipped: no python3 Jupyter kernel (pip install ipykernel)")
        return 77
    failed = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        try:
            client.execute()
            print(f"run_notebooks: {path}: ok ({time.time() - start:.0f} s)")
        except CellExecutionError as e:
            print(f"run_notebooks: {path}: cell error\n{e}", file=sys.stderr)
            failed.append(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        if args.save_to:
            os.makedirs(args.save_to, exist_ok=True)
            nbformat.write(nb, os.path.join(args.save_to, os.path.basename(path)))
        if args.figures:
            os.makedirs(args.figures, exist_ok=True)
            n = 0
            for i, cell in enumerate(nb.cells):
                for out in cell.get("outputs", []):
                    png = out.get("data", {}).get("image/png")
                    if png:
                        n += 1
                        with open(os.path.join(args.figures, f"{stem}-cell{i:02d}-{n}.png"), "wb") as f:
                            f.write(base64.b64decode(png))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
