"""Session files: everything needed to show again exactly what the user made (one JSON file, written atomically).

A session holds the model (path and content hash), the latent, the camera, the edits with the directions they use
(embedded, so a session does not depend on other files), and the render options. ``python -m core samples
--session F`` renders it; the viewer saves and reopens it.

Format (``version`` 1)::

    {
      "format": "trident-session", "version": 1,
      "model": {"path": str, "sha256": str},
      "latent": {"seed": int, "psi": float, "cutoff": int | null, "interp_seed": int, "interp_t": float,
                 "mix_seed": int | null, "mix_range": [lo, hi], "cond_yaw": float, "cond_pitch": float,
                 "ws": null | ARRAY},            # an explicit w [w_dim] or W+ [num_ws, w_dim]: replaces the seeds
      "camera": {"yaw": float, "pitch": float, "radius": float | null, "fov_deg": float,
                 "label": null | [25 floats]},   # an explicit EG3D camera label (e.g. an inversion's): replaces
                                                 # the orbit camera
      "render": {"resolution": int | null, "depth_samples": int | null, "importance_samples": int | null,
                 "deterministic": bool, "noise_mode": "const" | "random" | "none", "branches": [str, ...],
                 "view": str},
      "directions": [{"name", "layers": [start, stop], "sigma", "method", "source", "score",
                      "model_sha256", "vector": ARRAY}, ...],
      "edits": [{"direction": index into "directions", "strength": float (in sigma)}, ...]
    }

ARRAY is ``{"dtype": "float32", "shape": [...], "base64": <little-endian bytes>}`` (exact bits). Angles are
radians from the frontal view; null numbers mean "the model's own". The latent follows the viewer: w of ``seed``
(truncated with ``psi`` on the first ``cutoff`` layers, mapping conditioned on ``cond_yaw/cond_pitch``), lerped
towards ``interp_seed`` by ``interp_t``, then layers ``mix_range`` taken from ``mix_seed``; then the edits.

Loading is strict: any problem is one :class:`SessionFileError` line. A session whose model file has changed
(another hash) still opens, with a warning that the caller must show (:func:`open_session` returns it).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ...conventions import DEFAULT_FOV_DEG
from ...errors import TridentError, first_line
from ...files.atomic import atomic_output
from ...files.latent_files import LatentFileError, parse_camera
from ...layers import NOISE_MODES
from ...model import BRANCHES, VOLUME_BRANCHES, Model
from ...triplane import RenderOptions
from .apply import Edit, apply_edits
from .direction_files import DIRECTION_KEYS, direction_doc, direction_from_doc
from .directions import Direction, EditError
from .json_doc import DocReader, array_doc, read_doc

__all__ = ["FORMAT", "SessionFileError", "SessionLatent", "SessionCamera", "SessionRender", "EditState", "Session",
           "save_session", "load_session", "open_session", "latent_ws", "mixed_seed_ws", "session_ws",
           "session_camera", "session_options", "branch_resolution", "render_branches"]

FORMAT = "trident-session"
VERSION = 1


class SessionFileError(TridentError):
    """A session file that is missing, corrupt or not a session."""


@dataclass(frozen=True)
class SessionLatent:
    seed: int = 0
    psi: float = 0.7
    cutoff: int | None = 14
    interp_seed: int = 1
    interp_t: float = 0.0
    mix_seed: int | None = None
    mix_range: tuple[int, int] = (7, 14)
    cond_yaw: float = 0.0
    cond_pitch: float = 0.0
    ws_data: bytes | None = None               # float32 bytes of an explicit w / W+ (see :attr:`ws`)
    ws_shape: tuple[int, ...] = ()

    @classmethod
    def from_ws(cls, ws, **kw) -> "SessionLatent":
        """An explicit latent: w [w_dim], W+ [num_ws, w_dim] or [1, num_ws, w_dim]."""
        a = ws.detach().float().cpu().numpy() if isinstance(ws, Tensor) else np.asarray(ws, np.float32)
        a = np.ascontiguousarray(a[0] if a.ndim == 3 and a.shape[0] == 1 else a, dtype=np.float32)
        return cls(ws_data=a.tobytes(), ws_shape=tuple(a.shape), **kw)

    @property
    def ws(self) -> np.ndarray | None:
        if self.ws_data is None:
            return None
        return np.frombuffer(self.ws_data, dtype=np.float32).reshape(self.ws_shape)


@dataclass(frozen=True)
class SessionCamera:
    yaw: float = 0.0
    pitch: float = 0.0
    radius: float | None = None
    fov_deg: float = DEFAULT_FOV_DEG
    label: tuple[float, ...] | None = None     # 25 floats: an explicit camera, replaces the orbit


@dataclass(frozen=True)
class SessionRender:
    resolution: int | None = None
    depth_samples: int | None = None
    importance_samples: int | None = None
    deterministic: bool = True
    noise_mode: str = "const"
    branches: tuple[str, ...] = ()              # shown branches; empty: all of the model's
    view: str = "rgb"


@dataclass(frozen=True)
class EditState:
    """One state of the editor: what the undo history stores and a session saves."""

    latent: SessionLatent = SessionLatent()
    camera: SessionCamera = SessionCamera()
    edits: tuple[Edit, ...] = ()
    render: SessionRender = SessionRender()


@dataclass(frozen=True)
class Session:
    model_path: str
    model_sha256: str
    state: EditState = field(default_factory=EditState)


# -- what a session shows --------------------------------------------------------------------------------------
def latent_ws(model: Model, latent: SessionLatent) -> Tensor:
    """The latent before edits.  # [1, num_ws, w_dim]"""
    if latent.ws is not None:
        a = latent.ws
        if a.shape == (model.w_dim,):
            a = np.repeat(a[None], model.num_ws, 0)
        if a.shape != (model.num_ws, model.w_dim):
            raise EditError(f"the session's latent has shape {a.shape}; this model needs ({model.num_ws}, "
                            f"{model.w_dim})")
        return torch.from_numpy(a.copy())[None].to(model.device)
    c = model.camera_label(latent.cond_yaw, latent.cond_pitch)
    return mixed_seed_ws(lambda seed: model.mapping(model.z_from_seed(seed), c, latent.psi, latent.cutoff),
                         latent, model.num_ws)


def mixed_seed_ws(seed_ws: Callable[[int], Tensor], latent, num_ws: int) -> Tensor:
    """The viewer's latent from seeds: ``seed_ws(latent.seed)``, lerped towards ``seed_ws(latent.interp_seed)`` by
    ``latent.interp_t``, then layers ``latent.mix_range`` (clipped to ``num_ws``) taken from
    ``seed_ws(latent.mix_seed)``. ``latent`` is a :class:`SessionLatent` or the viewer's ``LatentSpec`` (the same
    fields); ``seed_ws`` maps a seed to ws [1, num_ws, w_dim] (the viewer's is cached: it is never modified)."""
    ws = seed_ws(latent.seed)
    if latent.interp_t != 0.0:
        ws = torch.lerp(ws, seed_ws(latent.interp_seed), float(latent.interp_t))
    if latent.mix_seed is not None:
        lo, hi = max(0, latent.mix_range[0]), min(num_ws, latent.mix_range[1])
        if lo < hi:
            ws = ws.clone()
            ws[:, lo:hi] = seed_ws(latent.mix_seed)[:, lo:hi]
    return ws


def session_ws(model: Model, state: EditState, model_sha256: str) -> Tensor:
    """The edited latent; edits from another model raise :class:`~.directions.DirectionMismatchError`."""
    return apply_edits(latent_ws(model, state.latent), state.edits, model_sha256)


def session_camera(model: Model, camera: SessionCamera) -> Tensor:
    """The render camera label.  # [1, 25]"""
    if camera.label is not None:
        return parse_camera(camera.label).to(model.device)
    return model.camera_label(camera.yaw, camera.pitch, camera.radius, camera.fov_deg)


def render_branches(model: Model, ws: Tensor, c: Tensor, opts: RenderOptions, branches: Sequence[str],
                    seed: int = 0) -> dict[str, dict[str, Tensor]]:
    """{branch: :meth:`Model.render` output} for one latent, without autograd: the volume-rendered branches share
    one :meth:`Model.triplanes` run; each render's sampling generator starts from ``seed``."""
    out = {}
    with torch.no_grad():
        planes = None
        for b in branches:
            if b in VOLUME_BRANCHES and planes is None:
                planes = model.triplanes(ws, noise_mode=opts.noise_mode, plain=opts.plain)
            gen = torch.Generator(device=model.device).manual_seed(seed)
            out[b] = model.render(b, ws, c, opts, planes=planes if b in VOLUME_BRANCHES else None, generator=gen)
    return out


def session_options(render: SessionRender, model: Model | None = None, branch: str = "sr2d") -> RenderOptions:
    """The render options of ``branch`` (with ``model``: a set resolution scaled for direct3d as the viewer
    does, :func:`branch_resolution`)."""
    res = render.resolution if model is None else branch_resolution(model, render.resolution, branch)
    return RenderOptions(resolution=res, depth_resolution=render.depth_samples,
                         depth_resolution_importance=render.importance_samples,
                         deterministic=render.deterministic, noise_mode=render.noise_mode)


def branch_resolution(model: Model, resolution: int | None, branch: str) -> int | None:
    """The viewer's (and a session's) resolution is sr2d's neural rendering resolution; direct3d, which renders its
    output directly, takes its output resolution scaled by the same factor (so "half resolution" halves every
    branch)."""
    if branch == "direct3d" and resolution is not None:
        return max(16, round(model.img_resolution * resolution / model.G.cfg.neural_rendering_resolution))
    return resolution


# -- writing -----------------------------------------------------------------------------------------------
def _to_doc(session: Session) -> dict:
    s = session.state
    directions: list[Direction] = []
    for e in s.edits:
        if e.direction not in directions:
            directions.append(e.direction)
    lat = s.latent
    return {
        "format": FORMAT, "version": VERSION,
        "model": {"path": session.model_path, "sha256": session.model_sha256},
        "latent": {"seed": lat.seed, "psi": lat.psi, "cutoff": lat.cutoff, "interp_seed": lat.interp_seed,
                   "interp_t": lat.interp_t, "mix_seed": lat.mix_seed, "mix_range": list(lat.mix_range),
                   "cond_yaw": lat.cond_yaw, "cond_pitch": lat.cond_pitch,
                   "ws": None if lat.ws is None else array_doc(lat.ws)},
        "camera": {"yaw": s.camera.yaw, "pitch": s.camera.pitch, "radius": s.camera.radius,
                   "fov_deg": s.camera.fov_deg, "label": None if s.camera.label is None else list(s.camera.label)},
        "render": {"resolution": s.render.resolution, "depth_samples": s.render.depth_samples,
                   "importance_samples": s.render.importance_samples, "deterministic": s.render.deterministic,
                   "noise_mode": s.render.noise_mode, "branches": list(s.render.branches), "view": s.render.view},
        "directions": [dict(direction_doc(d), model_sha256=d.model_sha256, vector=array_doc(d.vector))
                       for d in directions],
        "edits": [{"direction": directions.index(e.direction), "strength": e.strength} for e in s.edits],
    }


def save_session(path: str | os.PathLike, session: Session) -> None:
    """Write the session atomically (a failure leaves the previous file, or none)."""
    text = json.dumps(_to_doc(session), indent=1, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


# -- reading (strict) --------------------------------------------------------------------------------------
_LATENT_KEYS = ("seed", "psi", "cutoff", "interp_seed", "interp_t", "mix_seed", "mix_range", "cond_yaw",
                "cond_pitch", "ws")
_RENDER_KEYS = ("resolution", "depth_samples", "importance_samples", "deterministic", "noise_mode", "branches",
                "view")


def _latent(r: DocReader, la: dict) -> SessionLatent:
    ws = None if la["ws"] is None else r.array(la["ws"], "latent.ws")
    if ws is not None and ws.ndim not in (1, 2):
        r.fail("latent.ws", "must be w [w_dim] or W+ [num_ws, w_dim]")
    fields = dict(seed=r.value(la, "seed", "latent", "int"), psi=r.value(la, "psi", "latent", "num"),
                  cutoff=r.value(la, "cutoff", "latent", "int", null=True),
                  interp_seed=r.value(la, "interp_seed", "latent", "int"),
                  interp_t=r.value(la, "interp_t", "latent", "num"),
                  mix_seed=r.value(la, "mix_seed", "latent", "int", null=True),
                  mix_range=r.pair(la, "mix_range", "latent"), cond_yaw=r.value(la, "cond_yaw", "latent", "num"),
                  cond_pitch=r.value(la, "cond_pitch", "latent", "num"))
    return SessionLatent(**fields) if ws is None else SessionLatent.from_ws(ws, **fields)


def _camera(r: DocReader, ca: dict) -> SessionCamera:
    label = ca["label"]
    if label is not None:
        if not isinstance(label, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in label):
            r.fail("camera.label", "must be 25 numbers or null")
        try:
            parse_camera(label)
        except LatentFileError as e:
            r.fail("camera.label", first_line(e))
        label = tuple(float(x) for x in label)
    return SessionCamera(yaw=r.value(ca, "yaw", "camera", "num"), pitch=r.value(ca, "pitch", "camera", "num"),
                         radius=r.value(ca, "radius", "camera", "num", null=True),
                         fov_deg=r.value(ca, "fov_deg", "camera", "num"), label=label)


def _render(r: DocReader, rd: dict) -> SessionRender:
    branches = rd["branches"]
    if not isinstance(branches, list) or not all(b in BRANCHES for b in branches):
        r.fail("render.branches", f"must be a list of branch names ({', '.join(BRANCHES)})")
    noise = r.value(rd, "noise_mode", "render", "str")
    if noise not in NOISE_MODES:
        r.fail("render.noise_mode", f"must be one of {', '.join(NOISE_MODES)}")
    return SessionRender(resolution=r.value(rd, "resolution", "render", "int", null=True),
                         depth_samples=r.value(rd, "depth_samples", "render", "int", null=True),
                         importance_samples=r.value(rd, "importance_samples", "render", "int", null=True),
                         deterministic=r.value(rd, "deterministic", "render", "bool"), noise_mode=noise,
                         branches=tuple(branches), view=r.value(rd, "view", "render", "str"))


def _list(r: DocReader, doc: dict, key: str) -> list:
    v = doc.get(key)
    if not isinstance(v, list):
        r.fail(key, "must be a list")
    return v


def load_session(path: str | os.PathLike) -> Session:
    """Read a session file strictly (see the module docs); every problem is one :class:`SessionFileError` line."""
    doc, r = read_doc(path, FORMAT, VERSION, SessionFileError, "session file")
    r.fields(doc, "", ("format", "version", "model", "latent", "camera", "render", "directions", "edits"))
    m = r.obj(doc, "model", "", ("path", "sha256"))
    directions = []
    for i, d in enumerate(_list(r, doc, "directions")):
        where = f"directions[{i}]"
        d = r.fields(d, where, DIRECTION_KEYS + ("model_sha256", "vector"))
        directions.append(direction_from_doc(r, d, where, r.array(d["vector"], f"{where}.vector"),
                                             r.value(d, "model_sha256", where, "str"),
                                             extra_keys=("model_sha256", "vector")))
    edits = []
    for i, e in enumerate(_list(r, doc, "edits")):
        e = r.fields(e, f"edits[{i}]", ("direction", "strength"))
        k = r.value(e, "direction", f"edits[{i}]", "int")
        if not 0 <= k < len(directions):
            r.fail(f"edits[{i}].direction", f"no direction {k} (the file has {len(directions)})")
        edits.append(Edit(directions[k], r.value(e, "strength", f"edits[{i}]", "num")))
    state = EditState(latent=_latent(r, r.obj(doc, "latent", "", _LATENT_KEYS)),
                      camera=_camera(r, r.obj(doc, "camera", "", ("yaw", "pitch", "radius", "fov_deg", "label"))),
                      edits=tuple(edits), render=_render(r, r.obj(doc, "render", "", _RENDER_KEYS)))
    return Session(model_path=r.value(m, "path", "model", "str"), model_sha256=r.value(m, "sha256", "model", "str"),
                   state=state)


def open_session(path: str | os.PathLike, model_sha256: str) -> tuple[Session, list[str]]:
    """:func:`load_session` plus the warnings to show for the model now loaded (content hash ``model_sha256``):
    the session's model file changed, or some edits use directions of another model (those edits are dropped from
    the returned session, never applied)."""
    session = load_session(path)
    warnings = []
    if session.model_sha256 != model_sha256:
        warnings.append(f"session {Path(path).name} was saved with another version of the model (sha256 "
                        f"{session.model_sha256[:12]}, {session.model_path}); this model is {model_sha256[:12]}: "
                        "the latent and camera are restored, but the images may differ")
    kept = tuple(e for e in session.state.edits if e.direction.model_sha256 == model_sha256)
    dropped = [e for e in session.state.edits if e.direction.model_sha256 != model_sha256]
    if dropped:
        names = ", ".join(sorted({e.direction.name or e.direction.method for e in dropped}))
        warnings.append(f"{len(dropped)} edit(s) use directions computed for another model ({names}): not applied")
        session = Session(session.model_path, session.model_sha256,
                          EditState(session.state.latent, session.state.camera, kept, session.state.render))
    return session, warnings
