"""The viewer's undo history (app.undo): one step per change, drags merged, exact restore, jumps, labels."""
from __future__ import annotations

import numpy as np

from app.state import ViewerState
from app.undo import MERGE_S, UndoTracker
from core.tools.edit.apply import Edit
from core.tools.edit.directions import Direction


def direction(name: str, seed: int = 0) -> Direction:
    v = np.random.RandomState(seed).randn(16).astype(np.float32)
    return Direction.make(v / np.linalg.norm(v), layers=(0, 4), sigma=0.5, method="sefa", source="test",
                          model_sha256="0" * 64, name=name)


def started() -> tuple[UndoTracker, ViewerState]:
    u, s = UndoTracker(), ViewerState()
    u.reset(s, generation=1)
    assert not u.observe(s, 0.0)          # the first observation starts the history
    return u, s


def test_each_change_is_one_labelled_step_and_undo_redo_restore_exactly():
    u, s = started()
    d = direction("smile")
    s.latent.seed = 5
    assert u.observe(s, 1.0)
    s.latent.edits = (Edit(d, 1.25),)
    u.observe(s, 2.0)
    s.camera.yaw = 0.3
    u.observe(s, 3.0)
    s.render.view = "depth"
    u.observe(s, 4.0)
    assert u.history.labels == ("model loaded", "latent: seed", "edit: smile", "camera: yaw", "render: view")
    u.undo(s)
    u.undo(s)
    assert s.camera.yaw == 0.0 and s.render.view == "rgb" and s.latent.edits == (Edit(d, 1.25),)
    assert not u.observe(s, 5.0)            # restoring is not a new step
    u.undo(s)
    assert s.latent.edits == () and s.latent.seed == 5
    u.redo(s)
    (e,) = s.latent.edits
    assert e.direction.data == d.data and e.strength == 1.25     # the same bits
    u.jump(s, 0)
    assert s.latent.seed == 0 and s.latent.edits == ()
    u.jump(s, 4)
    assert s.render.view == "depth" and s.camera.yaw == 0.3


def test_a_drag_is_one_step_and_separate_changes_are_not_merged():
    u, s = started()
    for i in range(10):                      # a slider drag: the button is held every frame
        s.camera.yaw = 0.1 * i + 0.1
        u.observe(s, 1.0 + i, held=True)
    assert len(u.history.entries) == 2 and u.history.current.camera.yaw == s.camera.yaw
    s.camera.pitch = 0.2                     # the drag turns up and down too, then sideways only: still one step
    u.observe(s, 11.0, held=True)
    s.camera.yaw = 2.0
    u.observe(s, 12.0, held=True)
    assert u.history.labels == ("model loaded", "camera: yaw, pitch")
    s.latent.seed = 3                        # another kind of change during a drag is its own step
    u.observe(s, 12.5, held=True)
    assert u.history.labels[-1] == "latent: seed"
    u.undo(s)
    assert (s.camera.yaw, s.camera.pitch, s.latent.seed) == (2.0, 0.2, 0)
    s.camera.yaw = 5.0                       # the same control much later, button up: a new step
    u.observe(s, 100.0)
    assert len(u.history.entries) == 3 and not u.history.can_redo
    s.camera.yaw = 6.0                       # within MERGE_S (a wheel or typed change in a row): merged
    u.observe(s, 100.0 + MERGE_S / 2)
    assert len(u.history.entries) == 3 and u.history.current.camera.yaw == 6.0


def test_a_new_change_after_undo_drops_the_redo_steps_and_the_state_is_a_copy():
    u, s = started()
    s.latent.seed = 1
    u.observe(s, 1.0)
    s.latent.seed = 2
    u.observe(s, 2.0)
    u.undo(s)
    s.latent.psi = 0.5                       # mutate the restored state: the stored entry must not change
    u.observe(s, 3.0)
    assert u.history.labels == ("model loaded", "latent: seed", "latent: psi") and not u.history.can_redo
    assert u.history.entries[1][1].latent.psi == 0.7


def test_animation_phase_is_not_a_step():
    u, s = started()
    s.latent.interp_phase = 0.4
    assert not u.observe(s, 1.0)


def test_ab_compare_flips_between_exact_states():
    from app.widgets.compare import CompareWidget

    class V:
        state = ViewerState()
    v = V()
    w = CompareWidget(v)
    d = direction("smile")
    v.state.latent.seed = 4
    w.pin()
    v.state.latent.seed, v.state.latent.edits, v.state.camera.yaw = 7, (Edit(d, 2.0),), 0.4
    w.show("A")
    assert (v.state.latent.seed, v.state.latent.edits, v.state.camera.yaw) == (4, (), 0.0)
    v.state.render.view = "depth"                 # a change while A is shown changes A
    w.toggle()
    assert (v.state.latent.seed, v.state.latent.edits, v.state.camera.yaw, v.state.render.view) == \
        (7, (Edit(d, 2.0),), 0.4, "rgb")
    w.toggle()
    assert v.state.latent.seed == 4 and v.state.render.view == "depth"
