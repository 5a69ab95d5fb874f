"""App test fixtures: an X display (a private Xvfb when none is set), isolated config, viewers, golden images.

A missing display stack is a test failure, never a skip: the viewer is part of the product.
Set ``TRIDENT_UPDATE_GOLDEN=1`` to rewrite the golden PNGs (then look at them before committing).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def display():
    """``$DISPLAY`` if set, else a private Xvfb for the whole session."""
    from app.headless import DisplayError, start_xvfb, stop_xvfb
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    try:
        proc, name = start_xvfb(1280, 800)
    except DisplayError as e:
        pytest.fail(f"no X display for the viewer tests: {e}")
    os.environ["DISPLAY"] = name
    try:
        yield name
    finally:
        os.environ.pop("DISPLAY", None)
        stop_xvfb(proc)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """Recent-files lists and outputs (screenshots, videos, meshes) go to the test's temp folder, never the user's
    home or the repository."""
    monkeypatch.setenv("TRIDENT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TRIDENT_OUTDIR", str(tmp_path / "outputs"))


@pytest.fixture
def make_viewer(display):
    """``make_viewer(loader, width, height)`` -> a Viewer with a deterministic clock; closed after the test."""
    from app.viewer import Viewer
    made = []

    def make(loader, width: int = 960, height: int = 540):
        v = Viewer(loader=loader, width=width, height=height, fixed_dt=1 / 60)
        made.append(v)
        return v
    yield make
    for v in made:
        v.close()


def run_until(viewer, condition, timeout: float = 120.0, min_frames: int = 2) -> int:
    """Step the viewer until ``condition()`` holds (after at least ``min_frames``); returns the frame count."""
    deadline = time.monotonic() + timeout
    n = 0
    while n < min_frames or not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s ({n} frames)")
        viewer.step()
        n += 1
        time.sleep(0.01 if viewer.renderer.idle else 0.02)  # leave the CPU to the render thread and jobs
    return n


def settle(viewer, timeout: float = 120.0) -> np.ndarray:
    """Run until every pane shows the newest request, then return one more captured frame."""
    run_until(viewer, viewer.settled, timeout)
    return viewer.step(capture=True)


def assert_matches_golden(image: np.ndarray, name: str, mean_tol: float = 1.0, frac_tol: float = 0.005) -> None:
    """Compare with ``golden/<name>.png``: mean absolute error and the fraction of pixels off by more than 16."""
    path = GOLDEN / f"{name}.png"
    if os.environ.get("TRIDENT_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
    assert path.exists(), f"golden image missing: {path} (run with TRIDENT_UPDATE_GOLDEN=1 to create it)"
    golden = np.asarray(Image.open(path).convert("RGB"))
    assert golden.shape == image.shape, f"{name}: size {image.shape} vs golden {golden.shape}"
    diff = np.abs(image.astype(np.int16) - golden.astype(np.int16))
    mean, frac = float(diff.mean()), float((diff.max(-1) > 16).mean())
    if mean > mean_tol or frac > frac_tol:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"trident_{name}"
        Image.fromarray(image).save(f"{out}_actual.png")
        Image.fromarray((np.clip(diff * 4, 0, 255)).astype(np.uint8)).save(f"{out}_diff.png")
        raise AssertionError(f"{name}: differs from the golden image (mean abs {mean:.2f} > {mean_tol} or "
                             f"{frac:.2%} pixels off > {frac_tol:.2%}); see {out}_actual.png / _diff.png")


@pytest.fixture
def gl_window(display):
    """A small window whose OpenGL 3.3 core context is current (for GL-only tests)."""
    from app.window import Window
    w = Window(320, 240, fixed_dt=1 / 60)
    yield w
    w.close()


@pytest.fixture(scope="session")
def three_branch_model(tmp_path_factory):
    """A Trident file with all three branches: the Mimic3D fixture (sr2d + direct3d) plus a small student
    initialised from it (random weights otherwise; made here, no training)."""
    import torch
    from core.files.checkpoint import load_snapshot, save_snapshot
    from core.model import model_from_snapshot
    from core.student import StudentGenerator, init_from_teacher, student_config_for_teacher, student_payload
    from tests.conftest import MIMIC3D_FIXTURE, require
    snap = load_snapshot(require(MIMIC3D_FIXTURE / "network.pkl"))
    G = model_from_snapshot(snap).G
    torch.manual_seed(0)
    cfg = student_config_for_teacher(G, style_dim=64, mapping_layers=2, channel_base=1024, channel_max=32,
                                     sr_kind="light", sr_channels=[16, 8])
    student = StudentGenerator(cfg).eval()
    init_from_teacher(student, G, num_samples=64)
    snap.extra["student"] = student_payload(student)
    path = tmp_path_factory.mktemp("models") / "three_branches.pkl"
    save_snapshot(path, snap)
    return path
