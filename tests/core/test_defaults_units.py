"""One set of defaults and units for the app and the command line (issue 16, item 4): the commands' parsers, the
viewer's start state and docs/defaults.md all agree with core/defaults.py; angles on the command line are radians
(``--yaw-deg/--pitch-deg`` for degrees) and a yaw above 2*pi radians is an error, not a back view."""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import defaults as D
from core.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = str(ROOT / "assets" / "default.pkl")


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    """The named command's parser on ``argv`` (defaults filled in), as ``python -m core`` builds it."""
    sub = argparse.ArgumentParser().add_subparsers()
    mod = next(m for m in COMMANDS if m.__name__.rsplit(".", 1)[-1] == command.replace("-", "_"))
    return mod.add_parser(sub).parse_args(argv)


def test_cli_and_app_share_the_defaults():
    from app.jobs import InversionJob, MeshJob, VideoJob
    from app.main import build_parser
    from app.state import ViewerState
    from app.widgets.export import ExportWidget
    from app.widgets.inversion import InversionWidget
    from app.widgets.mesh import MeshWidget

    s = parse("samples", ["--network", "x", "--seeds", "0", "--outdir", "o"])
    v = parse("video", ["--network", "x", "--seeds", "0", "--out", "o.mp4"])
    inv = parse("invert", ["--network", "x", "--image", "p.png", "--outdir", "o"])
    mesh = parse("mesh", ["--network", "x", "--seed", "0"])
    app = ViewerState()
    assert s.trunc == v.trunc == mesh.trunc == app.latent.psi == D.TRUNCATION_PSI
    assert s.trunc_cutoff == app.latent.cutoff == D.TRUNCATION_CUTOFF
    assert s.deterministic is app.render.deterministic is (not v.stochastic) is D.DETERMINISTIC
    assert s.precision == v.precision == app.render.precision == build_parser().parse_args([]).precision == D.PRECISION
    w = InversionWidget(None)
    assert inv.steps == w.steps == InversionJob().steps == D.INVERT_STEPS
    assert inv.loss == ("lpips" if w.lpips else "mse") == InversionJob().loss == D.INVERT_LOSS == "mse"
    assert inv.pti_steps == w.pti_steps == D.PTI_STEPS
    assert mesh.res == MeshWidget(None).resolution == MeshJob(latent=None).resolution == D.MESH_GRID
    assert mesh.level == MeshWidget(None).level == build_parser().parse_args([]).mesh_level == D.MESH_LEVEL
    e = ExportWidget(None)
    assert v.frames == e.frames == VideoJob(path="", latents=()).frames == D.VIDEO_FRAMES
    assert v.fps == e.fps == D.VIDEO_FPS
    assert e.min_side == D.VIDEO_MIN_SIDE
    assert (v.yaw_range, v.pitch_range) == (D.TURNTABLE_YAW, D.TURNTABLE_PITCH)


def test_defaults_table_in_the_docs_matches():
    text = (ROOT / "docs" / "defaults.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| What")}
    assert rows["truncation psi"] == f"{D.TRUNCATION_PSI:g}"
    assert rows["truncation cutoff"] == str(D.TRUNCATION_CUTOFF)
    assert rows["deterministic depth sampling"] == ("on" if D.DETERMINISTIC else "off")
    assert rows["precision"] == D.PRECISION
    assert rows["inversion steps"] == str(D.INVERT_STEPS) and rows["inversion loss"] == D.INVERT_LOSS
    assert rows["PTI steps"] == str(D.PTI_STEPS) and rows["mesh grid"] == str(D.MESH_GRID)
    assert rows["mesh iso level"] == f"{D.MESH_LEVEL:g}"
    assert rows["video frames"] == str(D.VIDEO_FRAMES) and rows["video frame rate"] == str(D.VIDEO_FPS)
    assert str(D.VIDEO_MIN_SIDE) in rows["video size"]
    assert rows["turntable swing"] == f"yaw {D.TURNTABLE_YAW:g}, pitch {D.TURNTABLE_PITCH:g}"
    assert "docs/defaults.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("argv", [["--yaw", "30"], ["--yaw", "-7"], ["--pitch", "2"], ["--yaw-deg", "400"]])
def test_angles_out_of_range_are_one_line_errors(argv, tmp_path, capsys):
    code = main(["samples", "--network", BUNDLED, "--seeds", "0", "--outdir", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    if argv[0] == "--yaw" and argv[1] == "30":
        assert "--yaw-deg 30" in err[0]
    assert not (tmp_path / "o").exists()


def test_run_viz_takes_radians_like_the_commands():
    """``run_viz.py --yaw`` was degrees while ``core samples --yaw`` was radians."""
    proc = subprocess.run([sys.executable, "run_viz.py", "--yaw", "30", "--screenshot", "x.png"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--yaw-deg" in proc.stderr and "Traceback" not in proc.stderr
    from app.main import build_parser
    args = build_parser().parse_args(["--yaw-deg", "30", "--pitch", "0.1"])
    assert D.checked_yaw_pitch(args.yaw, args.pitch, args.yaw_deg, args.pitch_deg) == (math.radians(30), 0.1)


@pytest.mark.slow
def test_yaw_deg_equals_yaw_in_radians(tmp_path):
    fast = ["--network", BUNDLED, "--seeds", "2", "--nrr", "16", "--samples", "4", "4"]
    assert main(["samples", *fast, "--yaw-deg", "30", "--pitch-deg", "-10", "--outdir", str(tmp_path / "d")]) == 0
    assert main(["samples", *fast, "--yaw", repr(math.radians(30)), "--pitch", repr(math.radians(-10)),
                 "--outdir", str(tmp_path / "r")]) == 0
    a, b = (np.asarray(Image.open(tmp_path / d / "seed0002.png")) for d in ("d", "r"))
    assert np.array_equal(a, b)
