"""Session files: bit-equal round trip, strict one-line errors, hash-mismatch warnings, atomic save."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.tools.edit.apply import Edit
from core.tools.edit.directions import Direction
from core.tools.edit.model_id import model_sha256
from core.tools.edit.session import (EditState, Session, SessionCamera, SessionFileError, SessionLatent,
                                     SessionRender, load_session, open_session, save_session, session_camera,
                                     session_ws)
from tests.core.edit_fixtures import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("edit_models"))


def make_session(model, explicit_ws: bool = True) -> Session:
    sha = model_sha256(model)
    rng = np.random.default_rng(0)
    dirs = [Direction.make(rng.standard_normal(model.w_dim).astype(np.float32), layers=(k, k + 3),
                           sigma=0.1 * k + 0.3333333, method=m, source=f"test {k}", model_sha256=sha, name=f"d{k}",
                           score=1 / 3) for k, m in enumerate(("sefa", "ganspace", "taught"))]
    ws = torch.from_numpy(rng.standard_normal((model.num_ws, model.w_dim)).astype(np.float32) / 3)
    latent = SessionLatent.from_ws(ws, seed=5) if explicit_ws else \
        SessionLatent(seed=5, psi=0.61, cutoff=None, interp_seed=8, interp_t=0.3, mix_seed=11, mix_range=(2, 5),
                      cond_yaw=0.1, cond_pitch=-0.05)
    camera = SessionCamera(yaw=0.3, pitch=-0.1, radius=2.71, fov_deg=20.0,
                           label=tuple(model.camera_label(0.2, 0.1)[0].tolist()) if explicit_ws else None)
    render = SessionRender(resolution=16, depth_samples=4, importance_samples=4, deterministic=True,
                           noise_mode="const", branches=("direct3d", "sr2d"), view="depth")
    edits = (Edit(dirs[0], 1.25), Edit(dirs[1], -2.0 / 3), Edit(dirs[0], 0.1), Edit(dirs[2], 3.0))
    return Session(str(model.path), sha, EditState(latent=latent, camera=camera, edits=edits, render=render))


@pytest.mark.parametrize("explicit_ws", [True, False])
def test_round_trip_is_bit_equal(model, tmp_path, explicit_ws):
    session = make_session(model, explicit_ws)
    path = tmp_path / "s.json"
    save_session(path, session)
    back = load_session(path)
    assert back == session                        # every field, vectors and ws compared as bytes
    sha = model_sha256(model)
    assert torch.equal(session_ws(model, back.state, sha), session_ws(model, session.state, sha))
    assert torch.equal(session_camera(model, back.state.camera), session_camera(model, session.state.camera))
    doc = json.loads(path.read_text())
    assert len(doc["directions"]) == 3 and [e["direction"] for e in doc["edits"]] == [0, 1, 0, 2]
    save_session(tmp_path / "again.json", back)
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_a_changed_model_file_opens_with_warnings(model, tmp_path):
    session = make_session(model)
    path = tmp_path / "s.json"
    save_session(path, session)
    same, warnings = open_session(path, session.model_sha256)
    assert same == session and warnings == []
    other, warnings = open_session(path, "f" * 64)
    assert len(warnings) == 2 and "another version of the model" in warnings[0]
    assert "not applied" in warnings[1] and other.state.edits == ()       # edits of another model are dropped
    assert other.state.latent == session.state.latent and all("\n" not in w for w in warnings)


@pytest.mark.parametrize("change,message", [
    (lambda t: t[: len(t) // 2], "not valid JSON"),
    (lambda t: "[]", "not a Trident session"),
    (lambda t: t.replace('"version": 1', '"version": 7'), "version 7"),
    (lambda t: t.replace('"psi":', '"psi_typo":'), "unknown key 'psi_typo'"),
    (lambda t: t.replace('"seed": 5', '"seed": "five"'), "latent.seed: must be an integer"),
    (lambda t: t.replace('"noise_mode": "const"', '"noise_mode": "loud"'), "render.noise_mode"),
    (lambda t: t.replace('"direction": 2', '"direction": 9'), "no direction 9"),
    (lambda t: t.replace('"base64": "', '"base64": "!!', 1), "base64"),
])
def test_a_corrupt_session_is_one_line_error(model, tmp_path, change, message):
    path = tmp_path / "s.json"
    save_session(path, make_session(model, explicit_ws=False))
    path.write_text(change(path.read_text()))
    with pytest.raises(SessionFileError) as e:
        load_session(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_saving_is_atomic(model, tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    first = make_session(model)
    save_session(path, first)
    before = path.read_bytes()

    def half_then_fail(self, text, *a, **k):
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError):
        save_session(path, make_session(model, explicit_ws=False))
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert load_session(path) == first
