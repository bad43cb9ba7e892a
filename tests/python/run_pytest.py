"""Runs the Python module's tests (tests/python/) under pytest, for ctest (tests/CMakeLists.txt).

Usage: run_pytest.py TESTS_DIR PACKAGE_DIR
Exit 77 (ctest: skipped) when the build has no module in PACKAGE_DIR (no pybind11-dev or
python3-dev; a sanitizer build) or pytest, numpy or pandas is missing; pytest's status otherwise.
"""
import glob
import importlib.util
import os
import sys

tests, package = sys.argv[1], sys.argv[2]
if not glob.glob(os.path.join(package, "_moesim*.so")):
    print(f"skipped: no Python module in {package} (it needs pybind11-dev and python3-dev)")
    sys.exit(77)
for name in ("pytest", "numpy", "pandas"):
    if importlib.util.find_spec(name) is None:
        print(f"skipped: no {name} for {sys.executable} (python3-{name}; scripts/install-deps.sh)")
        sys.exit(77)

import pytest  # noqa: E402

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", tests]))
