#!/usr/bin/env python3
"""Runs the analysis package's pytest suite (python/tests); exit status 77 (ctest's
skip) where pytest or the package's dependencies are missing.

    python python/tools/run_pytest.py [tests/test_x.py ...] [pytest arguments]
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

# Test files named on the command line (tests/test_explore.py) run alone; else the whole suite.
tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
files = [a for a in sys.argv[1:] if not a.startswith("-")]
options = [a for a in sys.argv[1:] if a.startswith("-")]
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *(files or [tests]), *options]))
