"""``python run_viz.py``: the headless --screenshot mode end to end, and one-line errors for bad input."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app import main as app_main
from tests.conftest import EG3D_FIXTURE, ROOT, require

pytestmark = pytest.mark.slow   # each test starts the viewer app


def test_screenshot_mode_renders_the_fixture_and_exits_0_without_a_display(tmp_path, display):
    """No DISPLAY at all: --screenshot runs a private Xvfb (headless servers)."""
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["TRIDENT_CONFIG_DIR"] = str(tmp_path)
    p = subprocess.run([sys.executable, str(ROOT / "run_viz.py"), "--pkl", str(require(EG3D_FIXTURE / "network.pkl")),
                        "--screenshot", str(out), "--frames", "5", "--size", "800x450", "--threads", "2"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"saved {out} (800x450, ")
    img = np.asarray(Image.open(out))
    assert img.shape == (450, 800, 3)
    pane = img[60:420, 360:760]  # the render pane, right of the control panel
    assert pane.reshape(-1, 3).std(0).max() > 5
    assert not list(tmp_path.glob(".*.tmp"))


def test_screenshot_mode_with_a_corrupt_pickle_prints_one_line_and_fails(tmp_path, display, capsys):
    out = tmp_path / "bad.png"
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"\x80\x04\x95garbage")
    threads = str(__import__("torch").get_num_threads())  # main() sets torch's thread count; keep the suite's
    assert app_main.main(["--pkl", str(corrupt), "--screenshot", str(out), "--size", "640x360",
                          "--threads", threads]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not open corrupt.pkl: "), lines
    assert not out.exists()


def test_screenshot_with_start_mesh_waits_for_the_mesh_pane(tmp_path, display, capsys):
    """--mesh GRID extracts the start latent's mesh once the model is loaded; the capture shows the mesh pane."""
    out = tmp_path / "mesh.png"
    threads = str(__import__("torch").get_num_threads())
    pkl = str(require(EG3D_FIXTURE / "network.pkl"))
    # the fixture's random field: raw density spans about -0.6 .. 1.1
    assert app_main.main(["--pkl", pkl, "--screenshot", str(out), "--size", "960x400", "--threads", threads,
                          "--mesh", "32", "--mesh-level", "0.4"]) == 0
    assert capsys.readouterr().out.startswith(f"saved {out} (960x400, ")
    img = np.asarray(Image.open(out)).astype(int)
    right = img[60:380, 700:940]  # the mesh pane, right of the sr2d pane
    assert (np.abs(right - right[-2, -2]).sum(-1) > 30).mean() > 0.05  # a mesh is drawn there
    # an iso level outside the density's range: one error line, no file
    bad = tmp_path / "bad.png"
    assert app_main.main(["--pkl", pkl, "--screenshot", str(bad), "--size", "640x360", "--threads", threads,
                          "--mesh", "16", "--mesh-level", "500"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: mesh: ") and "500" in lines[0], lines
    assert not bad.exists()


@pytest.mark.parametrize("argv, message", [
    (["--pkl", "{pkl}", "--mesh", "8"], "error: --mesh must be a grid size from 16 to 512"),
    (["--pkl", "/no/such/model.pkl"], "error: no such file: /no/such/model.pkl"),
    (["--pkl", "."], "error: . is a directory, not a model file"),
    (["--pkl", "{pkl}", "--size", "big"], "error: --size must look like 1280x800, got 'big'"),
    (["--pkl", "{pkl}", "--screenshot", "x.jpg"], "error: --screenshot must name a .png file"),
    (["--pkl", "{pkl}", "--device", "tpu"], "error: --device must be auto, cpu or cuda[:N], got 'tpu'"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    pkl = str(require(EG3D_FIXTURE / "network.pkl"))
    assert app_main.main([a.replace("{pkl}", pkl) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [message]


def test_without_pkl_and_without_a_bundled_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(app_main, "ASSETS", tmp_path)
    assert app_main.main(["--screenshot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no bundled model in {tmp_path}/ yet; pass one with --pkl PATH"]
    (tmp_path / "b.pkl").write_bytes(b"")
    (tmp_path / "a.pkl").write_bytes(b"")
    assert app_main.default_model() == tmp_path / "a.pkl"
    (tmp_path / "default.pkl").write_bytes(b"")
    assert app_main.default_model() == tmp_path / "default.pkl"


def test_session_flag_with_a_corrupt_or_orphan_session_prints_one_line(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "trident-session", "version": 1, "model": {"path"')
    assert app_main.main(["--session", str(corrupt), "--screenshot", str(tmp_path / "x.png")]) == app_main.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: session file") and "not valid JSON" in err and len(err.splitlines()) == 1
    orphan = tmp_path / "orphan.json"   # a valid session whose model file is gone
    from core.tools.edit.session import Session, save_session
    save_session(orphan, Session(str(tmp_path / "gone.pkl"), "0" * 64))
    assert app_main.main(["--session", str(orphan), "--screenshot", str(tmp_path / "y.png")]) == app_main.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == (f"error: session orphan.json: its model {tmp_path / 'gone.pkl'} is not there; give the model "
                   "with --pkl")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
