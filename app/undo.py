"""Undo/redo of the viewer state on core's :class:`core.tools.edit.apply.History` (pure logic, no GL).

Every frame :meth:`UndoTracker.observe` compares the state with the history's current entry; a change of the latent,
an edit strength, the camera or a render option becomes one step, labelled with what changed ("latent: seed",
"edit: sefa 0", "camera: yaw, pitch", "render: view"). A slider drag or a pane drag is one step, not one per frame:
while the mouse button is held, or within :data:`MERGE_S` of the last change, a change of the same kinds (camera,
edit, latent, render) replaces the newest step (relabelled with everything the gesture changed).
Entries are copies, so undo and redo give back exactly (bit for bit, the edits' vectors included)
what was there. Loading another model starts a new history (its latents and directions belong to that model).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from core.tools.edit.apply import History

from .state import CameraState, LatentState, RenderState, ViewerState

MERGE_S = 0.6            # changes with the same label this close together are one step
SKIPPED = {"interp_phase"}  # animation bookkeeping, not a user change


@dataclass(frozen=True)
class Snapshot:
    """A copy of the undoable part of :class:`~app.state.ViewerState`."""

    latent: LatentState
    camera: CameraState
    render: RenderState

    @classmethod
    def of(cls, state: ViewerState) -> "Snapshot":
        return cls(replace(state.latent), replace(state.camera), replace(state.render))

    def restore(self, state: ViewerState) -> None:
        """Write this snapshot into ``state`` (copies: editing the state later leaves the snapshot untouched)."""
        state.latent, state.camera, state.render = replace(self.latent), replace(self.camera), replace(self.render)

    def __eq__(self, other) -> bool:
        return isinstance(other, Snapshot) and not describe_change(self, other)

    __hash__ = None  # mutable parts


def _changed(a, b) -> list[str]:
    return [f.name for f in fields(a) if f.name not in SKIPPED and getattr(a, f.name) != getattr(b, f.name)]


def describe_change(old: Snapshot, new: Snapshot) -> str:
    """A short label of what differs ('' when nothing does)."""
    lat = [n for n in _changed(old.latent, new.latent) if n != "edits"]
    parts = []
    if old.latent.edits != new.latent.edits:
        before = {e.direction: e.strength for e in old.latent.edits}
        after = {e.direction: e.strength for e in new.latent.edits}
        moved = [d for d in {**before, **after} if before.get(d, 0.0) != after.get(d, 0.0)]
        parts.append("edit: " + ", ".join(d.name or d.method for d in moved) if moved else "edit")
    if lat:
        parts.append("latent: " + ", ".join(lat))
    cam = _changed(old.camera, new.camera)
    if cam:
        parts.append("camera: " + ", ".join(cam))
    ren = _changed(old.render, new.render)
    if ren:
        parts.append("render: " + ", ".join(ren))
    return "; ".join(parts)


def groups(label: str) -> set[str]:
    """{'camera', 'edit', ...}: what a step's label says changed."""
    return {part.split(":")[0].strip() for part in label.split(";")}


class UndoTracker:
    """The viewer's undo history; ``generation`` is the loaded model's (a new model starts a new history)."""

    def __init__(self, limit: int = 200):
        self.limit = limit
        self.history: History[Snapshot] | None = None
        self.generation = -1
        self._last_change = -1e9
        self._start: str | None = None

    def reset(self, state: ViewerState, generation: int, label: str = "model loaded") -> None:
        """Start a new history at the next :meth:`observe` (after the widgets ran once: ImGui's sliders hold float32,
        so the first frame may round the values a model load set)."""
        self.generation = generation
        self._start = label

    def observe(self, state: ViewerState, now: float, held: bool = False) -> bool:
        """Record a change of ``state`` since the current entry as a step; returns whether one was recorded.
        ``held``: a mouse button is down (a drag in progress merges into its step)."""
        if self._start is not None:
            self.history = History.start(Snapshot.of(state), self._start, self.limit)
            self._start, self._last_change = None, -1e9
            return False
        return self._observe(state, now, held)

    def _observe(self, state: ViewerState, now: float, held: bool) -> bool:
        if self.history is None:
            return False
        snap = Snapshot.of(state)
        h = self.history
        label = describe_change(h.current, snap)
        if not label:
            return False
        merge = (held or now - self._last_change < MERGE_S) and h.position > 0 \
            and groups(label) <= groups(h.entries[h.position][0])
        if merge:   # the same gesture goes on (a drag may move yaw and pitch, then yaw only): one step
            before = h.entries[h.position - 1][1]
            h = h.undo()
            self.history = h.push(describe_change(before, snap), snap) if describe_change(before, snap) else h
        else:
            self.history = h.push(label, snap)
        self._last_change = now
        return True

    def _go(self, history: History[Snapshot], state: ViewerState) -> None:
        self.history = history
        history.current.restore(state)
        self._last_change = -1e9  # the next change is a new step, never merged into the one we returned to

    def undo(self, state: ViewerState) -> None:
        if self.history is not None and self.history.can_undo:
            self._go(self.history.undo(), state)

    def redo(self, state: ViewerState) -> None:
        if self.history is not None and self.history.can_redo:
            self._go(self.history.redo(), state)

    def jump(self, state: ViewerState, index: int) -> None:
        if self.history is not None:
            self._go(self.history.jump(index), state)
