"""The editor in the real viewer (Xvfb, OpenGL, a small random Trident model on the CPU): an Edit-panel slider
dragged with the mouse changes every pane; Ctrl+Z / Ctrl+Y restore the exact latent; a saved session reopened by
``run_viz.py --session`` shows the same pane pixels and ``core samples --session`` renders the pane's image; an
inversion's latent.npy + camera.npy dropped on the window becomes the current latent; bad files are one line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import run_until, settle
from tests.app.test_viewer_fake import drag
from tests.core.edit_fixtures import tiny_model_file

pytestmark = pytest.mark.slow   # each test starts the viewer app
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("editor_models")
    return tiny_model_file(folder), tiny_model_file(folder, seed=1, name="other.pkl")


@pytest.fixture
def editor(make_viewer, models, tmp_path, monkeypatch):
    from app.model_backend import ModelBackend
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    v = make_viewer(lambda path: ModelBackend.open(path, "cpu", v.bank), 960, 540)
    v.state.render.resolution = 8        # sr2d's neural resolution; direct3d renders at the scaled 16 px
    v.open_model(str(models[0]))
    settle(v)
    return v


def widget(v, name: str):
    return next(w for w in v.widgets if type(w).__name__ == name)


def images(v) -> dict[str, np.ndarray]:
    return {b: p.result.image.copy() for b, p in v.panes.items()}


def current_ws(v) -> np.ndarray:
    return v.model_backend().ws(v.state.latent.spec()).numpy().copy()


def chord(v, *keys) -> None:
    """Press and release a key chord (e.g. Ctrl+Z) through ImGui's input queue, one frame each way."""
    from imgui_bundle import imgui
    io = imgui.get_io()
    for k in keys:
        io.add_key_event(k, True)
    v.step()
    for k in reversed(keys):
        io.add_key_event(k, False)
    v.step()


def directions_ready(v):
    ew = widget(v, "EditWidget")
    ew.reveal()
    run_until(v, lambda: len(ew.directions) == 5 and ew.strip_task is not None and ew.strip_task.done
              and len(ew.strips) == 5, timeout=300)
    run_until(v, lambda: 0 in ew.slider_rects)
    return ew


def test_slider_changes_every_pane_and_undo_redo_restore_the_exact_latent(editor):
    from imgui_bundle import imgui
    v = editor
    ew = directions_ready(v)
    assert all(d.method == "sefa" and d.layers == (0, v.info.num_ws) for d in ew.directions)
    assert all(ew.strips[d].size == (7 * 64, 64) for d in ew.directions)   # the -3..+3 sigma thumbnails
    before, ws0 = images(v), current_ws(v)
    steps = len(v.undo.history.entries)
    x0, y0, x1, y1 = ew.slider_rects[0]
    drag(v, ((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 4, 0))             # the mouse drags the slider
    strength = ew.strength(ew.directions[0])
    assert strength > 1.0
    settle(v)
    after, ws1 = images(v), current_ws(v)
    assert set(after) == {"sr2d", "direct3d"}
    for b in after:
        assert np.abs(after[b].astype(int) - before[b].astype(int)).mean() > 0.5, f"{b} did not change"
    assert len(v.undo.history.entries) == steps + 1 and v.undo.history.labels[-1] == "edit: sefa 0"
    chord(v, imgui.Key.mod_ctrl, imgui.Key.z)
    assert v.state.latent.edits == () and np.array_equal(current_ws(v), ws0)
    settle(v)
    assert all(np.array_equal(p.result.image, before[b]) for b, p in v.panes.items())
    chord(v, imgui.Key.mod_ctrl, imgui.Key.y)
    assert ew.strength(ew.directions[0]) == strength and np.array_equal(current_ws(v), ws1)
    settle(v)
    assert all(np.array_equal(p.result.image, after[b]) for b, p in v.panes.items())
    # clicking the first entry of the history list returns there
    hw = widget(v, "HistoryWidget")
    io = imgui.get_io()
    io.add_mouse_pos_event(40, 200)              # the Edit panel scrolled the controls: scroll back to the top
    io.add_mouse_wheel_event(0.0, 50.0)
    for _ in range(3):
        v.step()
    x0, y0, x1, y1 = hw.rects[0]
    assert y0 > 0
    drag(v, ((x0 + x1) / 2, (y0 + y1) / 2), (0, 0), steps=1)
    assert v.undo.history.position == 0 and v.state.latent.edits == () and np.array_equal(current_ws(v), ws0)


def test_session_reopens_with_the_same_panes_and_core_samples_renders_the_pane(editor, models, tmp_path):
    from core.__main__ import main
    from core.tools.edit.apply import Edit
    v = editor
    ew = directions_ready(v)
    s = v.state.latent
    s.seed, s.mix_enabled, s.mix_seed, s.mix_lo, s.mix_hi = 3, True, 9, 2, 4
    ew.set_strength(ew.directions[1], -2.25)
    ew.rename(1, "my direction")
    v.state.camera.yaw, v.state.camera.pitch = 0.3, -0.1
    shot = settle(v)
    path = tmp_path / "look.json"
    sw = v.session_widget
    assert sw.save(str(path)), sw.error
    assert [e.direction.name for e in v.state.latent.edits] == ["my direction"]
    panes = {b: (p.last_input.origin, p.last_input.size_px) for b, p in v.panes.items()}
    pane_images = images(v)
    v.close()                                                  # quit
    out = tmp_path / "reopened.png"
    env = dict(os.environ, TRIDENT_CONFIG_DIR=str(tmp_path / "cfg"))
    run = subprocess.run([sys.executable, "run_viz.py", "--session", str(path), "--device", "cpu",
                          "--size", "960x540", "--screenshot", str(out)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    reopened = np.asarray(Image.open(out).convert("RGB"))
    assert reopened.shape == shot.shape
    for b, ((x, y), side) in panes.items():
        x, y, side = round(x), round(y), round(side)
        a, r = shot[y:y + side, x:x + side], reopened[y:y + side, x:x + side]
        assert a.std() > 2 and np.array_equal(a, r), f"pane {b} differs after --session"
    assert main(["samples", "--network", str(models[0]), "--session", str(path), "--outdir",
                 str(tmp_path / "s")]) == 0
    for b, img in pane_images.items():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "s" / f"look_{b}.png")), img), b
    assert isinstance(v.state.latent.edits[0], Edit)


def test_inversion_latent_and_camera_dropped_on_the_window(editor, tmp_path):
    import torch
    from core.files.latent_files import save_camera, save_latent
    v = editor
    m = v.model_backend().model
    ws = torch.from_numpy(np.random.RandomState(0).randn(1, m.num_ws, m.w_dim).astype(np.float32) * 0.5)
    folder = tmp_path / "inversion"
    folder.mkdir()
    save_latent(folder / "latent.npy", ws)
    save_camera(folder / "camera.npy", m.camera_label(0.25, -0.15, fov_deg=14.0))
    before = images(v)
    v.window._on_drop(v.window.handle, [str(folder / "latent.npy")])
    settle(v)
    assert "latent.npy + camera.npy" in v.session_widget.message
    assert np.array_equal(current_ws(v), ws[0].numpy()[None])
    c = v.state.camera
    assert (c.yaw, c.pitch, c.fov_deg) == pytest.approx((0.25, -0.15, 14.0), abs=1e-4)
    assert all(p.result.request.latent.stored is not None for p in v.panes.values())
    assert any(not np.array_equal(p.result.image, before[b]) for b, p in v.panes.items())
    assert v.undo.history.labels[-1].startswith("latent: ")       # opening a latent is one undoable step
    v.undo.undo(v.state)
    assert v.state.latent.use_stored is False


def test_bad_files_are_one_line_and_change_nothing(editor, models, tmp_path):
    from core.tools.edit.direction_files import DirectionSet, save_directions
    from core.tools.edit.model_id import model_sha256
    from core.model import load_model
    from core.tools.edit.directions import Direction
    v = editor
    ew = directions_ready(v)
    sw = v.session_widget
    state_before = (v.state.latent.spec(), v.state.camera.spec())
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "trident-session", "version": 1, "model": ')
    v.window._on_drop(v.window.handle, [str(corrupt)])
    v.step()
    assert sw.error.startswith("session file") and "\n" not in sw.error
    assert (v.state.latent.spec(), v.state.camera.spec()) == state_before
    other = load_model(models[1])
    d = Direction.make(np.eye(other.w_dim, dtype=np.float32)[0], layers=(0, 2), sigma=1.0, method="sefa",
                       source="test", model_sha256=model_sha256(other), name="foreign")
    save_directions(tmp_path / "foreign.json", DirectionSet((d,), model_sha256(other), str(models[1]), "sefa"))
    n = len(ew.directions)
    assert not ew.load_file(str(tmp_path / "foreign.json"))
    assert "another model" in ew.error and "not applied" in ew.error and "\n" not in ew.error
    assert len(ew.directions) == n
    # a session whose model file changed since: opens, with a warning
    ew.set_strength(ew.directions[0], 1.0)
    settle(v)
    path = tmp_path / "s.json"
    assert sw.save(str(path))
    sha = model_sha256(v.model_backend().model)
    text = path.read_text()
    path.write_text(text.replace(sha, "f" * 64, 1))           # the model entry only: the file changed since
    assert sw.open(str(path))
    assert len(sw.warnings) == 1 and "another version of the model" in sw.warnings[0]
    assert len(v.state.latent.edits) == 1                      # its directions are this model's: applied
    path.write_text(text.replace(sha, "f" * 64))              # the directions too: they are another model's
    assert sw.open(str(path))
    assert len(sw.warnings) == 2 and "not applied" in sw.warnings[1]
    assert v.state.latent.edits == ()
    settle(v)                                                  # and the app keeps rendering
    assert all(p.error is None for p in v.panes.values())


def test_teach_a_direction_by_marking_samples(editor):
    v = editor
    ew = directions_ready(v)
    d0 = ew.directions[0]
    for seed in range(4):             # samples that "have" the attribute are pushed along d0, the others against it
        v.state.latent.seed = seed
        for has in (True, False):
            ew.set_strength(d0, 2.0 if has else -2.0)
            ew.mark(has)
    ew.set_strength(d0, 0.0)
    ew.teach_name = "along d0"
    task = ew.fit()
    run_until(v, lambda: task.done and any(d.name == "along d0" for d in ew.directions), timeout=120)
    taught = next(d for d in ew.directions if d.name == "along d0")
    assert taught.method == "taught" and taught.layers == (0, v.info.num_ws) and taught.score == 1.0
    assert float(np.dot(taught.vector, d0.vector)) > 0.9
