"""Applying edits to latents, and the undo/redo history of an editing session (pure data, no GUI).

An :class:`Edit` is a direction with a strength in units of the direction's sigma; :func:`apply_edits` adds
``strength * sigma * v`` to ws[:, start:stop] for each edit in order, whatever the ws came from (a seed, an
interpolation, a style mix, an inverted w or W+), for a batch [N, num_ws, w_dim].

:class:`History` is an immutable list of (label, state) entries with a position: every operation returns a new
History, and a state is stored, never recomputed, so undo and redo give back exactly (bit for bit) what was there.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, Sequence, TypeVar

import torch
from torch import Tensor

from .directions import Direction, EditError, check_model

__all__ = ["Edit", "apply_edits", "History"]


@dataclass(frozen=True)
class Edit:
    direction: Direction
    strength: float          # in units of direction.sigma


def apply_edits(ws: Tensor, edits: Sequence[Edit], model_sha256: str | None = None) -> Tensor:
    """ws [N, num_ws, w_dim] -> edited copy, same shape (the input is not modified). With ``model_sha256``, an edit
    whose direction belongs to another model raises (it is never applied silently)."""
    if ws.ndim != 3:
        raise EditError(f"ws must be [N, num_ws, w_dim], got shape {tuple(ws.shape)}")
    out = ws.clone()
    for e in edits:
        d = e.direction
        if model_sha256 is not None:
            check_model(d, model_sha256, what=f"direction {d.name or d.method!r}")
        a, b = d.layers
        if d.w_dim != ws.shape[2] or b > ws.shape[1]:
            raise EditError(f"direction {d.name or d.method!r} (w_dim {d.w_dim}, layers {a}:{b}) does not fit ws "
                            f"of shape {tuple(ws.shape[1:])}")
        if e.strength == 0:
            continue
        v = torch.from_numpy(d.vector.copy()).to(device=ws.device, dtype=ws.dtype)
        out[:, a:b] += (float(e.strength) * d.sigma) * v
    return out


T = TypeVar("T")


@dataclass(frozen=True)
class History(Generic[T]):
    """Undo/redo over immutable states. ``entries[position]`` is the current one."""

    entries: tuple[tuple[str, T], ...]
    position: int = 0
    limit: int = 200                 # oldest entries are dropped beyond this

    @classmethod
    def start(cls, state: T, label: str = "start", limit: int = 200) -> "History[T]":
        return cls(entries=((label, state),), position=0, limit=max(2, limit))

    @property
    def current(self) -> T:
        return self.entries[self.position][1]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.entries)

    @property
    def can_undo(self) -> bool:
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        return self.position < len(self.entries) - 1

    def push(self, label: str, state: T, merge: bool = False) -> "History[T]":
        """A new step after the current one (the redo steps are dropped). ``merge``: replace the current step
        instead when it has the same label (one step per slider drag, not one per frame). A state equal to the
        current one adds nothing."""
        if state == self.current:
            return self
        kept = self.entries[:self.position + 1]
        if merge and self.position > 0 and kept[-1][0] == label:
            kept = kept[:-1]
        entries = (kept + ((label, state),))[-self.limit:]
        return replace(self, entries=entries, position=len(entries) - 1)

    def undo(self) -> "History[T]":
        return replace(self, position=self.position - 1) if self.can_undo else self

    def redo(self) -> "History[T]":
        return replace(self, position=self.position + 1) if self.can_redo else self

    def jump(self, index: int) -> "History[T]":
        """Go to entry ``index`` (clicking an entry of the history list)."""
        if not 0 <= index < len(self.entries):
            raise IndexError(f"history has {len(self.entries)} entries, no entry {index}")
        return replace(self, position=index)
