"""A tiny random dataset in EG3D's format (images + camera labels) for training tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.cameras import Camera
from training.dataset_tool import Item, write_dataset


def random_dataset(path: Path, res: int = 64, n: int = 12) -> Path:
    """``n`` random RGB images of side ``res`` with frontal-ish cameras (yaw in +-0.5 rad), written to ``path``."""
    rng = np.random.RandomState(0)
    items = [Item(label=Camera.frontal_offset(float(rng.uniform(-0.5, 0.5)), 0.0).to_label()[0].numpy(),
                  image=rng.randint(0, 255, (res, res, 3), dtype=np.uint8)) for _ in range(n)]
    write_dataset(path, items)
    return path
