"""Edits on ws (seeds, mixes, W+ batches) and the undo/redo history: undo and redo restore ws bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.tools.edit.apply import Edit, History, apply_edits
from core.tools.edit.directions import Direction, EditError
from core.tools.edit.model_id import model_sha256
from core.tools.edit.session import EditState, SessionCamera, SessionLatent, latent_ws, session_ws
from tests.core.edit_fixtures import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("edit_models"))


def direction(sha: str, w_dim: int, layers: tuple[int, int], seed: int, sigma: float = 0.5) -> Direction:
    v = np.random.default_rng(seed).standard_normal(w_dim)
    return Direction.make(v / np.linalg.norm(v), layers=layers, sigma=sigma, method="sefa", source="test",
                          model_sha256=sha, name=f"d{seed}")


def test_edits_move_only_their_layers_by_strength_times_sigma():
    ws = torch.randn(3, 6, 16)                      # a batch of W+ latents, all layers different
    before = ws.clone()
    d1, d2 = direction("m", 16, (1, 3), 1), direction("m", 16, (2, 6), 2, sigma=2.0)
    out = apply_edits(ws, [Edit(d1, 1.5), Edit(d2, -0.5)], "m")
    assert torch.equal(ws, before)                  # the input is untouched
    v1, v2 = torch.from_numpy(d1.vector.copy()), torch.from_numpy(d2.vector.copy())
    expected = before.clone()
    expected[:, 1:3] += 0.75 * v1
    expected[:, 2:6] -= 1.0 * v2
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(out[:, 0], before[:, 0])
    assert torch.equal(apply_edits(ws, [Edit(d1, 0.0)]), ws)
    with pytest.raises(EditError, match="does not fit"):
        apply_edits(torch.zeros(1, 2, 16), [Edit(d2, 1.0)])
    with pytest.raises(EditError, match="another model"):
        apply_edits(ws, [Edit(d1, 1.0)], "other")


def test_style_mix_and_inverted_latents_take_the_edit(model):
    sha = model_sha256(model)
    d = direction(sha, model.w_dim, (0, 3), 4)
    mixed = latent_ws(model, SessionLatent(seed=1, mix_seed=2, mix_range=(3, 6)))
    seed2 = latent_ws(model, SessionLatent(seed=2))
    assert torch.equal(mixed[:, 3:], seed2[:, 3:]) and not torch.equal(mixed[:, :3], seed2[:, :3])
    out = apply_edits(mixed, [Edit(d, 2.0)], sha)
    assert torch.equal(out[:, 3:], mixed[:, 3:]) and not torch.equal(out[:, :3], mixed[:, :3])
    inverted = SessionLatent.from_ws(torch.randn(1, model.num_ws, model.w_dim))
    assert np.array_equal(latent_ws(model, inverted)[0].numpy(), inverted.ws)
    one_w = SessionLatent.from_ws(torch.randn(model.w_dim))     # a W inversion: one w for every layer
    assert torch.equal(latent_ws(model, one_w)[0], torch.from_numpy(one_w.ws.copy()).expand(model.num_ws, -1))


def test_undo_redo_restore_the_exact_ws(model):
    sha = model_sha256(model)
    d1, d2 = direction(sha, model.w_dim, (0, 6), 1), direction(sha, model.w_dim, (2, 4), 2)
    states = [EditState(latent=SessionLatent(seed=3, psi=0.7))]
    states.append(EditState(latent=states[0].latent, edits=(Edit(d1, 1.3),)))
    states.append(EditState(latent=states[0].latent, edits=(Edit(d1, 1.3), Edit(d2, -2.1))))
    states.append(EditState(latent=SessionLatent(seed=3, psi=0.7, mix_seed=9, mix_range=(3, 6)),
                            edits=states[2].edits, camera=SessionCamera(yaw=0.4)))
    h = History.start(states[0])
    expected = [session_ws(model, states[0], sha)]
    for i, s in enumerate(states[1:]):
        h = h.push(f"step {i}", s)
        expected.append(session_ws(model, s, sha))
    assert h.labels == ("start", "step 0", "step 1", "step 2") and h.can_undo and not h.can_redo
    for k in (2, 1, 0):
        h = h.undo()
        assert h.current is states[k]
        assert torch.equal(session_ws(model, h.current, sha), expected[k])
    assert not h.can_undo and h.undo() is h
    for k in (1, 2, 3):
        h = h.redo()
        assert torch.equal(session_ws(model, h.current, sha), expected[k])
    # clicking an entry of the list; a new step after an undo drops the redo steps
    h = h.jump(1)
    assert torch.equal(session_ws(model, h.current, sha), expected[1])
    h = h.push("other", states[3])
    assert h.labels == ("start", "step 0", "other") and not h.can_redo
    with pytest.raises(IndexError):
        h.jump(5)


def test_history_merges_a_slider_drag_and_keeps_a_limit():
    h = History.start(0, limit=4)
    h = h.push("strength", 1, merge=True).push("strength", 2, merge=True).push("strength", 3, merge=True)
    assert h.labels == ("start", "strength") and h.current == 3
    assert h.push("strength", 3) is h                # no change, no step
    for i in range(10):
        h = h.push(f"s{i}", 100 + i)
    assert len(h.entries) == 4 and h.current == 109 and h.labels[0] == "s6"
    h2 = h.undo()
    assert h.current == 109 and h2.current == 108     # histories are values: the old one is unchanged
