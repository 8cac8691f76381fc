#!/usr/bin/env python3
"""Runs the analysis package's pytest suite (python/tests); exit status 77 (ctest's
skip) where pytest or the package's dependencies are missing.

    python python/tools/run_pytest.py [pytest arguments]
"""
import os
import sys

try:
    import h5netcdf  # noqa: F401
    import matplotlib  # noqa: F401
    import pytest
    import xarray  # noqa: F401
except ImportError as e:
    print(f"run_pytest: skipped: {e} (bash .ci/setup installs it)")
    sys.exit(77)

tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", tests, *sys.argv[1:]]))
