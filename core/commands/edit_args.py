"""What ``edit``, ``video`` and ``mesh`` share about edits: a direction named ``FILE.json:INDEX`` (refused when it
belongs to another model), and a session file opened for the loaded model (its warnings printed)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..model import Model
from ..tools.edit.direction_files import load_directions, parse_direction_ref
from ..tools.edit.directions import Direction, check_model
from ..tools.edit.model_id import model_sha256
from ..tools.edit.session import Session, open_session
from .common import UsageError


def direction_ref(text: str) -> tuple[Path, int, Direction, object]:
    """'FILE.json:INDEX' -> (path, index, the direction, its DirectionSet); the model is not checked yet."""
    path, index = parse_direction_ref(text)
    dset = load_directions(path)
    if not 0 <= index < len(dset.directions):
        raise UsageError(f"{path} has {len(dset.directions)} directions (0 to {len(dset.directions) - 1}), "
                         f"no direction {index}")
    return path, index, dset.directions[index], dset


def direction_for(model: Model, text: str) -> Direction:
    """The direction 'FILE.json:INDEX' of ``model`` (another model's is refused: DirectionMismatchError)."""
    path, _, direction, dset = direction_ref(text)
    check_model(dset, model_sha256(model), what=f"the directions in {path.name}")
    return direction


def session_for(model: Model, path: str | Path) -> Session:
    """The session file for ``model``: warnings (another version of the model file, other models' edits, which
    are dropped) go to stderr."""
    session, warnings = open_session(path, model_sha256(model))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return session
