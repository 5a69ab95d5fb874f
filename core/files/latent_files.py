"""Latent and camera files shared by ``invert`` (writes them) and ``samples`` / ``video`` / ``mesh`` / the viewer.

* ``latent.npy``: float32 ``ws`` [num_ws, w_dim] (W+; a W inversion stores its vector repeated per layer).
  A single w [w_dim] or a batch-of-one [1, num_ws, w_dim] is accepted on reading.
* ``camera.npy``: float32 [25], the EG3D camera label (16 cam2world row-major + 9 normalised intrinsics).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import TridentError, first_line
from .atomic import atomic_output

__all__ = ["LatentFileError", "load_latent", "save_latent", "load_camera", "save_camera", "parse_camera"]


class LatentFileError(TridentError):
    """A latent or camera file that is missing, unreadable or of the wrong shape for the model."""


MAX_LATENT_VALUES = 64 * 4096  # num_ws x w_dim within the model bounds of core.limits
MAX_CAMERA_VALUES = 25


def _read_npy(path: str | os.PathLike, what: str, max_values: int) -> np.ndarray:
    """A float array of at most ``max_values`` values: the shape is read from the header (the file is mapped,
    not read) before any data is loaded, so a huge array costs nothing."""
    p = Path(path)
    if not p.is_file():
        raise LatentFileError(f"no such {what} file: {p}")
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r")
        if isinstance(arr, np.ndarray) and arr.size > max_values:
            raise LatentFileError(f"{what} file {p} holds {arr.size} values of shape {arr.shape}; a {what} has at "
                                  f"most {max_values}")
        arr = np.array(arr) if isinstance(arr, np.ndarray) else arr
    except (OSError, ValueError, EOFError) as e:
        if isinstance(e, LatentFileError):
            raise
        raise LatentFileError(f"cannot read {what} file {p}: {first_line(e)}") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        raise LatentFileError(f"{what} file {p} does not hold a float array")
    if not np.all(np.isfinite(arr)):
        raise LatentFileError(f"{what} file {p} contains NaN or infinite values")
    return arr


def load_latent(path: str | os.PathLike, num_ws: int, w_dim: int, device: str | torch.device = "cpu") -> Tensor:
    """``latent.npy`` -> ws [1, num_ws, w_dim] for a model with that latent layout."""
    arr = _read_npy(path, "latent", MAX_LATENT_VALUES)
    if arr.shape == (w_dim,):
        arr = np.repeat(arr[None], num_ws, 0)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (num_ws, w_dim):
        raise LatentFileError(f"latent file {path} has shape {arr.shape}; this model needs ({num_ws}, {w_dim})")
    return torch.from_numpy(arr.astype(np.float32))[None].to(device)


def save_latent(path: str | os.PathLike, ws: Tensor) -> None:
    ws = ws.detach().float().cpu()
    if ws.ndim == 3:
        ws = ws[0]
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, ws.numpy().astype(np.float32))


def parse_camera(label) -> Tensor:
    """25 floats (array-like) -> camera label [1, 25], checked for shape and finiteness."""
    arr = np.asarray(label, dtype=np.float64).reshape(-1)
    if arr.shape != (25,):
        raise LatentFileError(f"a camera label has 25 floats (16 cam2world + 9 intrinsics), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise LatentFileError("camera label contains NaN or infinite values")
    if abs(arr[16]) < 1e-6 or abs(arr[20]) < 1e-6:
        raise LatentFileError("camera label has a zero focal length (intrinsics entries 0 and 4)")
    return torch.from_numpy(arr.astype(np.float32))[None]


def load_camera(path: str | os.PathLike) -> Tensor:
    """``camera.npy`` (or a .txt/.json-free plain list of 25 numbers in a text file) -> label [1, 25]."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        return parse_camera(_read_npy(p, "camera", MAX_CAMERA_VALUES))
    if not p.is_file():
        raise LatentFileError(f"no such camera file: {p}")
    if p.stat().st_size > 1 << 16:
        raise LatentFileError(f"camera file {p} is {p.stat().st_size} bytes; a list of 25 numbers is far smaller")
    try:
        values = [float(v) for v in p.read_text().replace(",", " ").replace("[", " ").replace("]", " ").split()]
    except (OSError, UnicodeDecodeError, ValueError):
        raise LatentFileError(f"camera file {p} is neither .npy nor a list of 25 numbers") from None
    return parse_camera(values)


def save_camera(path: str | os.PathLike, label: Tensor) -> None:
    arr = label.detach().float().cpu().reshape(-1).numpy().astype(np.float32)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
