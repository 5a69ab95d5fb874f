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

import base64
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...atomic import atomic_output
from ...cameras import DEFAULT_FOV_DEG
from ...latent_files import LatentFileError, parse_camera
from ...model import BRANCHES, Model
from ...triplane import RenderOptions
from .apply import Edit, apply_edits
from .directions import METHODS, Direction, EditError

__all__ = ["FORMAT", "SessionFileError", "SessionLatent", "SessionCamera", "SessionRender", "EditState", "Session",
           "save_session", "load_session", "open_session", "latent_ws", "session_ws", "session_camera",
           "session_options"]

FORMAT = "trident-session"
VERSION = 1
NOISE_MODES = ("const", "random", "none")


class SessionFileError(ValueError):
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

    def seed_ws(seed: int) -> Tensor:
        return model.mapping(model.z_from_seed(seed), c, latent.psi, latent.cutoff)
    ws = seed_ws(latent.seed)
    if latent.interp_t != 0.0:
        ws = torch.lerp(ws, seed_ws(latent.interp_seed), float(latent.interp_t))
    if latent.mix_seed is not None:
        lo, hi = max(0, latent.mix_range[0]), min(model.num_ws, latent.mix_range[1])
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


def session_options(render: SessionRender) -> RenderOptions:
    return RenderOptions(resolution=render.resolution, depth_resolution=render.depth_samples,
                         depth_resolution_importance=render.importance_samples,
                         deterministic=render.deterministic, noise_mode=render.noise_mode)


# -- writing -----------------------------------------------------------------------------------------------
def _array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


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
                   "ws": None if lat.ws is None else _array(lat.ws)},
        "camera": {"yaw": s.camera.yaw, "pitch": s.camera.pitch, "radius": s.camera.radius,
                   "fov_deg": s.camera.fov_deg, "label": None if s.camera.label is None else list(s.camera.label)},
        "render": {"resolution": s.render.resolution, "depth_samples": s.render.depth_samples,
                   "importance_samples": s.render.importance_samples, "deterministic": s.render.deterministic,
                   "noise_mode": s.render.noise_mode, "branches": list(s.render.branches), "view": s.render.view},
        "directions": [{"name": d.name, "layers": list(d.layers), "sigma": d.sigma, "method": d.method,
                        "source": d.source, "score": d.score, "model_sha256": d.model_sha256,
                        "vector": _array(d.vector)} for d in directions],
        "edits": [{"direction": directions.index(e.direction), "strength": e.strength} for e in s.edits],
    }


def save_session(path: str | os.PathLike, session: Session) -> None:
    """Write the session atomically (a failure leaves the previous file, or none)."""
    text = json.dumps(_to_doc(session), indent=1, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


# -- reading (strict) --------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise SessionFileError(f"session file {self.path}: {where}{': ' if where else ''}{what}")

    def obj(self, doc: Any, key: str, where: str, keys: tuple[str, ...]) -> dict:
        v = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(v, dict):
            self.fail(where, f"{key!r} must be an object")
        unknown = sorted(set(v) - set(keys))
        missing = [k for k in keys if k not in v]
        if unknown or missing:
            self.fail(f"{where}.{key}" if where else key,
                      f"unknown key {unknown[0]!r}" if unknown else f"missing {missing[0]!r}")
        return v

    def value(self, d: dict, key: str, where: str, kind: str, null: bool = False):
        v = d[key]
        if v is None and null:
            return None
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "num": isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
              "bool": isinstance(v, bool), "str": isinstance(v, str)}[kind]
        if not ok:
            names = {"int": "an integer", "num": "a number", "bool": "true or false", "str": "a string"}
            self.fail(f"{where}.{key}", f"must be {names[kind]}" + (" or null" if null else ""))
        return float(v) if kind == "num" else v

    def array(self, v: Any, where: str) -> np.ndarray:
        if not isinstance(v, dict) or set(v) != {"dtype", "shape", "base64"} or v["dtype"] != "float32" \
                or not isinstance(v["shape"], list) or not all(isinstance(n, int) and n > 0 for n in v["shape"]) \
                or not isinstance(v["base64"], str):
            self.fail(where, "must be an array {dtype: float32, shape, base64}")
        try:
            raw = base64.b64decode(v["base64"], validate=True)
        except ValueError:
            self.fail(where, "its base64 data is corrupt")
        if len(raw) != 4 * int(np.prod(v["shape"])):
            self.fail(where, f"its data does not have the size of shape {v['shape']}")
        a = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(v["shape"])
        if not np.all(np.isfinite(a)):
            self.fail(where, "contains NaN or infinite values")
        return a


def load_session(path: str | os.PathLike) -> Session:
    """Read a session file strictly (see the module docs); every problem is one :class:`SessionFileError` line."""
    p = Path(path)
    if not p.is_file():
        raise SessionFileError(f"no such session file: {p}")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SessionFileError(f"session file {p} is not valid JSON ({str(e).splitlines()[0]})") from None
    r = _Reader(p)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        r.fail("", "not a Trident session file")
    if doc.get("version") != VERSION:
        r.fail("", f"version {doc.get('version')!r}; this Trident reads version {VERSION}")
    top = ("format", "version", "model", "latent", "camera", "render", "directions", "edits")
    extra = sorted(set(doc) - set(top))
    if extra:
        r.fail("", f"unknown key {extra[0]!r}")
    m = r.obj(doc, "model", "", ("path", "sha256"))
    model_path, sha = r.value(m, "path", "model", "str"), r.value(m, "sha256", "model", "str")

    lk = ("seed", "psi", "cutoff", "interp_seed", "interp_t", "mix_seed", "mix_range", "cond_yaw", "cond_pitch", "ws")
    la = r.obj(doc, "latent", "", lk)
    mix = la["mix_range"]
    if not (isinstance(mix, list) and len(mix) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                            for x in mix)):
        r.fail("latent.mix_range", "must be [lo, hi] integers")
    ws = None if la["ws"] is None else r.array(la["ws"], "latent.ws")
    if ws is not None and ws.ndim not in (1, 2):
        r.fail("latent.ws", "must be w [w_dim] or W+ [num_ws, w_dim]")
    fields = dict(seed=r.value(la, "seed", "latent", "int"), psi=r.value(la, "psi", "latent", "num"),
                  cutoff=r.value(la, "cutoff", "latent", "int", null=True),
                  interp_seed=r.value(la, "interp_seed", "latent", "int"),
                  interp_t=r.value(la, "interp_t", "latent", "num"),
                  mix_seed=r.value(la, "mix_seed", "latent", "int", null=True), mix_range=(mix[0], mix[1]),
                  cond_yaw=r.value(la, "cond_yaw", "latent", "num"),
                  cond_pitch=r.value(la, "cond_pitch", "latent", "num"))
    latent = SessionLatent(**fields) if ws is None else SessionLatent.from_ws(ws, **fields)

    ca = r.obj(doc, "camera", "", ("yaw", "pitch", "radius", "fov_deg", "label"))
    label = ca["label"]
    if label is not None:
        if not isinstance(label, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in label):
            r.fail("camera.label", "must be 25 numbers or null")
        try:
            parse_camera(label)
        except LatentFileError as e:
            r.fail("camera.label", str(e))
        label = tuple(float(x) for x in label)
    camera = SessionCamera(yaw=r.value(ca, "yaw", "camera", "num"), pitch=r.value(ca, "pitch", "camera", "num"),
                           radius=r.value(ca, "radius", "camera", "num", null=True),
                           fov_deg=r.value(ca, "fov_deg", "camera", "num"), label=label)

    rk = ("resolution", "depth_samples", "importance_samples", "deterministic", "noise_mode", "branches", "view")
    re_ = r.obj(doc, "render", "", rk)
    branches = re_["branches"]
    if not isinstance(branches, list) or not all(b in BRANCHES for b in branches):
        r.fail("render.branches", f"must be a list of branch names ({', '.join(BRANCHES)})")
    noise = r.value(re_, "noise_mode", "render", "str")
    if noise not in NOISE_MODES:
        r.fail("render.noise_mode", f"must be one of {', '.join(NOISE_MODES)}")
    render = SessionRender(resolution=r.value(re_, "resolution", "render", "int", null=True),
                           depth_samples=r.value(re_, "depth_samples", "render", "int", null=True),
                           importance_samples=r.value(re_, "importance_samples", "render", "int", null=True),
                           deterministic=r.value(re_, "deterministic", "render", "bool"), noise_mode=noise,
                           branches=tuple(branches), view=r.value(re_, "view", "render", "str"))

    dirs_doc = doc.get("directions")
    if not isinstance(dirs_doc, list):
        r.fail("directions", "must be a list")
    directions = []
    dk = ("name", "layers", "sigma", "method", "source", "score", "model_sha256", "vector")
    for i, d in enumerate(dirs_doc):
        d = r.obj({"d": d}, "d", "", dk)
        where = f"directions[{i}]"
        layers = d["layers"]
        if not (isinstance(layers, list) and len(layers) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                      for x in layers) and 0 <= layers[0] < layers[1]):
            r.fail(f"{where}.layers", "must be [start, stop) with 0 <= start < stop")
        method = r.value(d, "method", where, "str")
        if method not in METHODS:
            r.fail(f"{where}.method", f"unknown method {method!r}")
        sigma = r.value(d, "sigma", where, "num")
        if sigma <= 0:
            r.fail(f"{where}.sigma", "must be positive")
        vec = r.array(d["vector"], f"{where}.vector")
        if vec.ndim != 1:
            r.fail(f"{where}.vector", "must be [w_dim]")
        directions.append(Direction.make(vec, layers=(layers[0], layers[1]), sigma=sigma, method=method,
                                         source=r.value(d, "source", where, "str"),
                                         model_sha256=r.value(d, "model_sha256", where, "str"),
                                         name=r.value(d, "name", where, "str"), score=r.value(d, "score", where, "num")))
    edits_doc = doc.get("edits")
    if not isinstance(edits_doc, list):
        r.fail("edits", "must be a list")
    edits = []
    for i, e in enumerate(edits_doc):
        e = r.obj({"e": e}, "e", "", ("direction", "strength"))
        k = r.value(e, "direction", f"edits[{i}]", "int")
        if not 0 <= k < len(directions):
            r.fail(f"edits[{i}].direction", f"no direction {k} (the file has {len(directions)})")
        edits.append(Edit(directions[k], r.value(e, "strength", f"edits[{i}]", "num")))
    return Session(model_path=model_path, model_sha256=sha,
                   state=EditState(latent=latent, camera=camera, edits=tuple(edits), render=render))


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
