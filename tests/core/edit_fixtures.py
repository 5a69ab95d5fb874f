"""Shared helpers of the editing tests: small random generators saved as model files (they need a content hash)."""
from __future__ import annotations

from pathlib import Path

import torch

from core.build import build_generator
from core.files.checkpoint import save_snapshot, snapshot_from_modules
from core.model import load_model
from tests.conftest import tiny_mimic3d_config


def tiny_model_file(folder: Path, seed: int = 0, name: str = "tiny.pkl") -> Path:
    """A random tiny Mimic3D generator (sr2d + direct3d, 6 ws of 16 dims) written as a Trident file."""
    torch.manual_seed(seed)
    G = build_generator(tiny_mimic3d_config())
    path = folder / name
    save_snapshot(path, snapshot_from_modules(G))
    return path


def tiny_model(folder: Path, seed: int = 0, name: str = "tiny.pkl"):
    return load_model(tiny_model_file(folder, seed, name))
