"""Startup: every command pays the imports of all commands' modules while the parser is built, so heavy libraries
that only one command needs are imported where they are used."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import runpy, sys
sys.argv = ["core", "samples", "--help"]
try:
    runpy.run_module("core", run_name="__main__")
except SystemExit:
    pass
print(sorted(m for m in ("scipy.optimize", "scipy.linalg") if m in sys.modules))
"""


def test_samples_help_does_not_import_scipy_optimize():
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-300:]
