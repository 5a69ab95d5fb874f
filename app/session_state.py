"""The viewer's state <-> core's session files (``core.tools.edit.session``), and opening an inversion's latent.

A session is written from what the panes render (the request's rounded values), so ``python -m core samples
--session F`` and a reopened viewer render the same ws, camera and options: the same pixels. An inversion result (a
stored latent) is saved as its exact float32 ws. Reading: :func:`apply_session` writes a session into the state; a
session camera given as an explicit label (25 floats) becomes the orbit camera it describes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from core.tools.edit.session import EditState, Session, SessionCamera, SessionLatent, SessionRender

from .requests import LatentBank, ModelInfo
from .state import VIEWS, ViewerState


def to_session(state: ViewerState, info: ModelInfo, bank: LatentBank, model_path: str, model_sha256: str) -> Session:
    """The session describing what the viewer shows now (its settled, full-resolution render)."""
    lat, cam, r = state.latent.spec(), state.camera.spec(), state.render
    seeds = dict(seed=lat.seed, psi=lat.psi, cutoff=lat.cutoff, interp_seed=lat.interp_seed, interp_t=lat.interp_t,
                 mix_seed=lat.mix_seed, mix_range=tuple(lat.mix_range), cond_yaw=lat.cond_yaw,
                 cond_pitch=lat.cond_pitch)
    latent = SessionLatent.from_ws(bank.get(lat.stored), **seeds) if lat.stored is not None else SessionLatent(**seeds)
    camera = SessionCamera(yaw=cam.yaw, pitch=cam.pitch, radius=cam.radius, fov_deg=cam.fov_deg)
    render = SessionRender(resolution=r.resolution or None, depth_samples=r.depth_samples or None,
                           importance_samples=r.importance_samples or None, deterministic=r.deterministic,
                           branches=tuple(info.branches), view=r.view)
    return Session(model_path=str(Path(model_path).resolve()), model_sha256=model_sha256,
                   state=EditState(latent=latent, camera=camera, edits=lat.edits, render=render))


def apply_session(state: ViewerState, session: Session, info: ModelInfo, bank: LatentBank) -> None:
    """Show ``session`` (its edits must already be checked against the model: ``open_session`` drops others)."""
    s, la = state.latent, session.state.latent
    s.seed, s.psi, s.interp_seed, s.interp_t = la.seed, la.psi, la.interp_seed, la.interp_t
    s.cutoff = info.num_ws if la.cutoff is None else la.cutoff
    s.mix_enabled = la.mix_seed is not None
    if la.mix_seed is not None:
        s.mix_seed = la.mix_seed
    s.mix_lo, s.mix_hi = la.mix_range
    s.cond_yaw, s.cond_pitch = la.cond_yaw, la.cond_pitch
    s.interp_animate = False
    if la.ws is not None:
        ws = la.ws if la.ws.ndim == 2 else np.repeat(la.ws[None], info.num_ws, 0)
        s.stored, s.use_stored = bank.add(ws), True
    else:
        s.use_stored = False
    s.edits = session.state.edits
    c, ca = state.camera, session.state.camera
    c.auto_orbit = False
    if ca.label is not None:
        c.yaw, c.pitch, c.radius, c.fov_deg = orbit_from_label(ca.label)
    else:
        c.yaw, c.pitch, c.fov_deg = ca.yaw, ca.pitch, ca.fov_deg
        c.radius = info.radius if ca.radius is None else ca.radius
    r, ro = state.render, session.state.render
    r.resolution, r.depth_samples = ro.resolution or 0, ro.depth_samples or 0
    r.importance_samples, r.deterministic = ro.importance_samples or 0, ro.deterministic
    if ro.view in VIEWS:
        r.view = ro.view


def orbit_from_label(label) -> tuple[float, float, float, float]:
    """An EG3D camera label (25 floats) -> the viewer's orbit camera (yaw, pitch radians; radius; fov degrees)."""
    from core.cameras import focal_to_fov
    from core.files.latent_files import parse_camera
    from core.tools.inversion import orbit_from_label as core_orbit
    yaw, pitch, radius, focal = core_orbit(parse_camera(label))
    return yaw, pitch, radius, focal_to_fov(focal)


def open_latent(state: ViewerState, path: str, info: ModelInfo, w_dim: int, bank: LatentBank) -> str:
    """Show an inversion's ``latent.npy`` (and its ``camera.npy`` when one lies beside it); returns what was opened.
    Bad files raise :class:`core.files.latent_files.LatentFileError` (one line)."""
    from core.files.latent_files import load_camera, load_latent
    ws = load_latent(path, info.num_ws, w_dim)[0].numpy()
    camera = Path(path).with_name("camera.npy")
    orbit = orbit_from_label(load_camera(camera).numpy()) if camera.is_file() else None
    s = state.latent
    s.stored, s.use_stored, s.interp_animate = bank.add(ws), True, False
    opened = Path(path).name
    if orbit is not None:
        c = state.camera
        c.yaw, c.pitch, c.radius, c.fov_deg = orbit
        c.auto_orbit = False
        opened += f" + {camera.name} (yaw {math.degrees(c.yaw):.1f}, pitch {math.degrees(c.pitch):.1f} deg)"
    return opened
