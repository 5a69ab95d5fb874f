"""Strict reading of the editor's JSON files (directions, sessions): every problem is one line naming the file and
the field, raised as the caller's error class."""
from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ...errors import first_line

__all__ = ["DocReader", "read_doc", "array_doc"]

_KINDS = {"int": "an integer", "num": "a number", "bool": "true or false", "str": "a string"}


def array_doc(a: np.ndarray) -> dict:
    """float32 array -> {"dtype": "float32", "shape": [...], "base64": little-endian bytes} (exact bits)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


class DocReader:
    """Typed access to a parsed JSON document; failures raise ``error(f"{what} {path}: {field}: {problem}")``."""

    def __init__(self, error: type[Exception], what: str, path: Path):
        self.error, self.what, self.path = error, what, path

    def fail(self, where: str, problem: str) -> NoReturn:
        raise self.error(f"{self.what} {self.path}: {where}{': ' if where else ''}{problem}")

    def obj(self, parent: Any, key: str, where: str, keys: tuple[str, ...] | None = None,
            optional: tuple[str, ...] = ()) -> dict:
        """parent[key] checked by :meth:`fields`."""
        v = parent.get(key) if isinstance(parent, dict) else None
        return self.fields(v, f"{where}.{key}" if where else key, keys, optional)

    def fields(self, v: Any, where: str, keys: tuple[str, ...] | None = None, optional: tuple[str, ...] = ()) -> dict:
        """``v`` as an object; with ``keys``, exactly those keys (plus any of ``optional``)."""
        if not isinstance(v, dict):
            self.fail(where, "must be an object")
        if keys is not None:
            unknown = sorted(set(v) - set(keys) - set(optional))
            missing = [k for k in keys if k not in v]
            if unknown or missing:
                self.fail(where, f"unknown key {unknown[0]!r}" if unknown else f"missing {missing[0]!r}")
        return v

    def value(self, d: dict, key: str, where: str, kind: str, null: bool = False):
        """d[key] checked as ``kind`` ("int", "num" (finite, returned as float), "bool", "str"), or None if ``null``."""
        if key not in d:
            self.fail(where, f"missing {key!r}")
        v = d[key]
        if v is None and null:
            return None
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "num": isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
              "bool": isinstance(v, bool), "str": isinstance(v, str)}[kind]
        if not ok:
            self.fail(f"{where}.{key}" if where else key, f"must be {_KINDS[kind]}" + (" or null" if null else ""))
        return float(v) if kind == "num" else v

    def pair(self, d: dict, key: str, where: str, increasing: bool = False) -> tuple[int, int]:
        """d[key] as two integers (``increasing``: 0 <= a < b, a layer range)."""
        v = d.get(key)
        ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        if not ok or (increasing and not 0 <= v[0] < v[1]):
            self.fail(f"{where}.{key}" if where else key, "must be [start, stop) with 0 <= start < stop" if increasing
                      else "must be two integers")
        return v[0], v[1]

    def array(self, v: Any, where: str) -> np.ndarray:
        """An :func:`array_doc` back to a float32 array (finite values only)."""
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


def read_doc(path: str | os.PathLike, fmt: str, version: int, error: type[Exception], what: str
             ) -> tuple[dict, DocReader]:
    """Parse ``path`` and check its ``format`` and ``version``; -> (document, reader)."""
    p = Path(path)
    if not p.is_file():
        raise error(f"no such {what}: {p}")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{what} {p} is not valid JSON ({first_line(e)})") from None
    r = DocReader(error, what, p)
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        r.fail("", f"not a Trident {what}")
    if doc.get("version") != version:
        r.fail("", f"version {doc.get('version')!r}; this Trident reads version {version}")
    return doc, r
