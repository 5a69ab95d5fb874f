"""``samples --session F``: render exactly what a session file shows, one image per branch of the session."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image

from ..files.atomic import atomic_output
from ..files.image_io import to_uint8
from ..model import Model
from ..tools.edit.model_id import model_sha256
from ..tools.edit.session import open_session, render_branches, session_camera, session_options, session_ws
from .common import UsageError


def session_images(model: Model, path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """{branch: image [3, H, W]} for the session's branches (all of the model's when it names none), and the
    warnings to show (another version of the model file; edits of another model, which are not applied)."""
    sha = model_sha256(model)
    session, warnings = open_session(path, sha)
    state = session.state
    branches = state.render.branches or model.branches
    missing = [b for b in branches if b not in model.branches]
    if missing:
        raise UsageError(f"the session shows branch {missing[0]!r}, which this model does not have")
    ws = session_ws(model, state, sha)
    cam = session_camera(model, state.camera)
    images = {}
    for b in branches:   # each branch at the viewer's resolution for it (direct3d's scales)
        out = render_branches(model, ws, cam, session_options(state.render, model, b), (b,))
        images[b] = out[b]["image"][0]
    return images, warnings


def render_session(model: Model, path: str | Path, outdir: Path) -> int:
    images, warnings = session_images(model, path)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    outdir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    for b, img in images.items():
        with atomic_output(outdir / f"{stem}_{b}.png") as tmp:
            Image.fromarray(to_uint8(img)).save(tmp)
    print(f"wrote {len(images)} image(s) of session {Path(path).name} to {outdir}")
    return 0
