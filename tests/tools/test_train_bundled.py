"""tools/train_bundled.py: which stage runs next and how it starts (the stage commands themselves are tested with
the training commands; a whole CPU run of the script is in docs/gpu.md)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _next(work, *extra):
    data = work / "d.zip"
    data.write_bytes(b"")  # exists: no dataset stage
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "train_bundled.py"), "--workdir", str(work),
                           "--data", str(data), "--minutes", "10", "--stage1-kimg", "10", "--stage2-kimg", "10",
                           "--distill-kimg", "10", "--dry-run", *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("[pipeline] python")]


def _snap(work, stage, kimg):
    run = work / stage / "00000-run"
    run.mkdir(parents=True, exist_ok=True)
    (run / f"network-snapshot-{kimg}.pkl").write_bytes(b"")
    return run / f"network-snapshot-{kimg}.pkl"


def test_fresh_start_runs_stage1_time_boxed(tmp_path):
    (cmd,) = _next(tmp_path, "--set-stage1", "generator.aware3d_gain=0.5", "--batch", "32")
    assert "train --config mimic3d-stage1-synth-tiny" in cmd and "--resume" not in cmd and "--init" not in cmd
    assert "--max-minutes 5.50" in cmd                     # stage 1's share of the budget (0.55)
    assert "--set generator.aware3d_gain=0.5" in cmd and "--set optim.batch=32" in cmd


@pytest.mark.parametrize("snaps,want", [
    ([("stage1", "000004")], ["mimic3d-stage1", "--resume auto"]),                    # continue stage 1
    ([("stage1", "000010")], ["mimic3d-stage2", "--init", "stage1/00000-run/network-snapshot-000010.pkl"]),
    ([("stage1", "000004"), ("stage2", "000002")], ["mimic3d-stage2", "--resume auto"]),  # stage 1 closed by stage 2
    ([("stage1", "000004"), ("stage2", "000010")], ["distill", "--teacher", "stage2/00000-run"]),
])
def test_the_open_stage_continues(tmp_path, snaps, want):
    for stage, kimg in snaps:
        _snap(tmp_path, stage, kimg)
    (cmd,) = _next(tmp_path)
    assert all(w in cmd for w in want), cmd


def test_continue_stage2_from_a_returned_file(tmp_path):
    (cmd,) = _next(tmp_path, "--continue-stage2", str(tmp_path / "stage2-continue.pkl"))
    assert "mimic3d-stage2" in cmd and f"--init {tmp_path / 'stage2-continue.pkl'}" in cmd
