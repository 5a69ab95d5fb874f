"""A model's identity: the SHA-256 of its file's bytes (directions and sessions record it; a changed file is a
different model)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ...errors import TridentError, first_line

__all__ = ["ModelIdentityError", "file_sha256", "model_sha256"]

_CHUNK = 1 << 20
_memo: dict[tuple[str, int, int], str] = {}


class ModelIdentityError(TridentError):
    """The model has no file to hash, or the file cannot be read."""


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes; remembered per (path, size, modification time) within the process."""
    p = Path(path).resolve()
    try:
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns)
        if key not in _memo:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(_CHUNK), b""):
                    h.update(block)
            _memo[key] = h.hexdigest()
    except OSError as e:
        raise ModelIdentityError(f"cannot read model file {path}: {e.strerror or first_line(e)}") from None
    return _memo[key]


def model_sha256(model) -> str:
    """The content hash of the file a :class:`core.model.Model` was loaded from."""
    if not getattr(model, "path", None):
        raise ModelIdentityError("this model was not loaded from a file, so it has no content hash")
    return file_sha256(model.path)
