"""Directions files: ``NAME.json`` (everything but the vectors) + ``NAME.npy`` (the vectors), and the per-model cache.

``NAME.npy``: float32 [K, w_dim], one unit vector per row, in the order of the JSON's ``directions``.

``NAME.json``::

    {
      "format": "trident-directions", "version": 1,
      "model": {"sha256": "<hex SHA-256 of the model file>", "path": "<the path it was computed from>"},
      "method": "sefa" | "ganspace" | "taught",
      "vectors": {"file": "NAME.npy", "shape": [K, w_dim], "sha256": "<hex SHA-256 of the .npy file>"},
      "settings": {...},      # how they were computed (layers, count, samples, conditioning camera)
      "directions": [{"name": str, "layers": [start, stop], "sigma": float, "method": str, "source": str,
                      "score": float}, ...]
    }

``layers`` is the ws range ``[start, stop)`` an edit moves; ``sigma`` the standard deviation of sampled w along the
vector (an edit of strength x moves w by x * sigma); ``score`` the SeFa eigenvalue, the GANSpace variance, or a
taught direction's training accuracy. Both files are written in full beside their targets, then renamed into place
(the ``.npy`` first); the JSON records the ``.npy``'s hash, so a pair from two different saves is refused on
loading.

The cache keeps one file pair per (model hash, method, settings) under ``$TRIDENT_CACHE/directions/`` (default
``~/.cache/trident/directions/``), so directions are computed once per model.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import TridentError, first_line
from ...files.atomic import atomic_output
from ...model import Model
from .directions import METHODS, Conditioning, Direction, EditError, check_layers, ganspace, sample_w, sefa
from .json_doc import DocReader, read_doc
from .model_id import model_sha256

__all__ = ["FORMAT", "DirectionFileError", "DirectionSet", "save_directions", "load_directions", "direction_doc",
           "direction_from_doc", "parse_direction_ref", "cache_dir", "compute_directions", "cached_directions"]

FORMAT = "trident-directions"
VERSION = 1


class DirectionFileError(TridentError):
    """A directions file that is missing, corrupt or inconsistent."""


@dataclass(frozen=True)
class DirectionSet:
    """The contents of one directions file."""

    directions: tuple[Direction, ...]
    model_sha256: str
    model_path: str
    method: str
    settings: tuple[tuple[str, Any], ...] = ()


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() != ".json":
        raise DirectionFileError(f"a directions file name ends in .json (the vectors go beside it in .npy): {p}")
    return p


def save_directions(path: str | os.PathLike, dset: DirectionSet) -> None:
    """Write ``path`` (.json) and the ``.npy`` beside it (see the module docs: a failed save changes nothing)."""
    p = _json_path(path)
    if not dset.directions:
        raise DirectionFileError("no directions to save")
    for d in dset.directions:
        if d.model_sha256 != dset.model_sha256:
            raise DirectionFileError("all directions of a file must belong to its model")
    vectors = np.stack([d.vector for d in dset.directions]).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, vectors)
    npy_bytes = buf.getvalue()
    npy_path = p.with_suffix(".npy")
    doc = {
        "format": FORMAT, "version": VERSION,
        "model": {"sha256": dset.model_sha256, "path": dset.model_path},
        "method": dset.method,
        "vectors": {"file": npy_path.name, "shape": list(vectors.shape), "sha256": _sha256_bytes(npy_bytes)},
        "settings": dict(dset.settings),
        "directions": [direction_doc(d) for d in dset.directions],
    }
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    # Both files are complete before either is renamed into place (the .npy first): a failure while writing leaves
    # the previous pair untouched.
    with atomic_output(p) as tmp_json, atomic_output(npy_path) as tmp_npy:
        tmp_npy.write_bytes(npy_bytes)
        tmp_json.write_text(text)


DIRECTION_KEYS = ("name", "layers", "sigma", "method", "source", "score")


def direction_doc(d: Direction) -> dict:
    """A direction's JSON entry, without its vector and model (the file or session holds those)."""
    return {"name": d.name, "layers": list(d.layers), "sigma": d.sigma, "method": d.method, "source": d.source,
            "score": d.score}


def direction_from_doc(r: DocReader, e: Any, where: str, vector: np.ndarray, model_sha256: str,
                       extra_keys: tuple[str, ...] = ()) -> Direction:
    """The inverse of :func:`direction_doc` (strict: exactly those keys, plus ``extra_keys``)."""
    e = r.fields(e, where, DIRECTION_KEYS + extra_keys)
    sigma = r.value(e, "sigma", where, "num")
    if sigma <= 0:
        r.fail(f"{where}.sigma", "must be positive")
    method = r.value(e, "method", where, "str")
    if method not in METHODS:
        r.fail(f"{where}.method", f"unknown method {method!r}")
    if vector.ndim != 1:
        r.fail(where, "its vector must be [w_dim]")
    return Direction.make(vector, layers=r.pair(e, "layers", where, increasing=True), sigma=sigma, method=method,
                          source=r.value(e, "source", where, "str"), model_sha256=model_sha256,
                          name=r.value(e, "name", where, "str"), score=r.value(e, "score", where, "num"))


def load_directions(path: str | os.PathLike) -> DirectionSet:
    """Read a directions file pair; every problem is one :class:`DirectionFileError` line."""
    p = _json_path(path)
    doc, r = read_doc(p, FORMAT, VERSION, DirectionFileError, "directions file")
    r.fields(doc, "", ("format", "version", "model", "method", "vectors", "settings", "directions"))
    method = r.value(doc, "method", "", "str")
    if method not in METHODS:
        r.fail("method", f"unknown method {method!r}")
    model = r.obj(doc, "model", "", ("sha256", "path"))
    sha = r.value(model, "sha256", "model", "str")
    vec_info = r.obj(doc, "vectors", "", ("file", "shape", "sha256"))
    npy_name = r.value(vec_info, "file", "vectors", "str")
    if Path(npy_name).name != npy_name:
        r.fail("vectors.file", f"the vectors file must lie beside it, got {npy_name!r}")
    npy_path = p.with_name(npy_name)
    try:
        npy_bytes = npy_path.read_bytes()
    except OSError:
        r.fail("vectors", f"its vectors file {npy_path} is missing")
    if _sha256_bytes(npy_bytes) != r.value(vec_info, "sha256", "vectors", "str"):
        r.fail("vectors", f"{npy_path.name} does not match it (written by another save?)")
    try:
        vectors = np.load(io.BytesIO(npy_bytes), allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        r.fail("vectors", f"cannot read {npy_path.name}: {first_line(e)}")
    entries = doc.get("directions")
    if not isinstance(entries, list) or not entries:
        r.fail("directions", "must be a non-empty list")
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != len(entries):
        r.fail("vectors", f"{npy_path.name} must be float32 [{len(entries)}, w_dim]")
    if not np.all(np.isfinite(vectors)):
        r.fail("vectors", f"{npy_path.name} contains NaN or infinite values")
    out = tuple(direction_from_doc(r, e, f"directions[{i}]", vectors[i], sha) for i, e in enumerate(entries))
    settings = r.obj(doc, "settings", "")
    return DirectionSet(directions=out, model_sha256=sha, model_path=r.value(model, "path", "model", "str"),
                        method=method, settings=tuple(settings.items()))


def parse_direction_ref(text: str) -> tuple[Path, int]:
    """'FILE.json:i' -> (FILE.json, i)."""
    m = re.fullmatch(r"(.+):(\d+)", str(text))
    if not m:
        raise DirectionFileError(f"bad direction {text!r} (use FILE.json:INDEX, e.g. sefa.json:0)")
    return Path(m.group(1)), int(m.group(2))


# -- computing with a cache ------------------------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get("TRIDENT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "trident") / "directions"


def compute_directions(model: Model, method: str, layers: tuple[int, int] | None = None, num: int = 5,
                       samples: int = 10000, seed: int = 0, cond: Conditioning = Conditioning()) -> DirectionSet:
    """SeFa or GANSpace directions of ``model`` as a :class:`DirectionSet` (not cached)."""
    sha = model_sha256(model)
    layers = check_layers(layers, model.num_ws)
    if num < 1:
        raise EditError("the number of directions must be at least 1")
    computers: dict[str, Callable[..., list[Direction]]] = {"sefa": sefa, "ganspace": ganspace}
    if method not in computers:
        raise EditError(f"unknown method {method!r} (sefa or ganspace; taught directions come from marked samples)")
    w = sample_w(model, samples, seed=seed, cond=cond)
    directions = computers[method](model, sha, layers=layers, num=num, w_samples=w, cond=cond)
    settings = {"layers": list(layers), "num": num, "samples": samples, "seed": seed,
                "conditioning": {"yaw": cond.yaw, "pitch": cond.pitch, "camera": cond.describe()}}
    return DirectionSet(directions=tuple(directions), model_sha256=sha, model_path=str(model.path), method=method,
                        settings=tuple(settings.items()))


def cached_directions(model: Model, method: str, layers: tuple[int, int] | None = None, num: int = 5,
                      samples: int = 10000, seed: int = 0, cond: Conditioning = Conditioning(),
                      folder: str | os.PathLike | None = None) -> DirectionSet:
    """:func:`compute_directions`, read from the cache when it was computed before for this model file."""
    sha = model_sha256(model)
    a, b = check_layers(layers, model.num_ws)
    name = f"{method}_l{a}-{b}_n{num}_s{samples}_seed{seed}_c{cond.yaw:+.4f}{cond.pitch:+.4f}.json"
    path = Path(folder if folder is not None else cache_dir()) / sha[:32] / name
    if path.is_file():
        try:
            dset = load_directions(path)
            if dset.model_sha256 == sha:
                return dset
        except DirectionFileError:
            pass  # a damaged cache entry is recomputed and replaced
    dset = compute_directions(model, method, (a, b), num, samples, seed, cond)
    save_directions(path, dset)
    return dset
