"""A strip of a dataset's first images, shown beside a model in the viewer (Model panel) and in the README.

    python tools/training_strip.py DATASET.zip OUT.png [--count 8]

The bundled model's strip: ``python -m training dataset synth --dest data/synth64.zip --count 2000 --resolution 64
--seed 0`` (the dataset it was trained on; images 0-7 do not depend on --count), then
``python tools/training_strip.py data/synth64.zip assets/default.training.png``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.files.dataset import iter_images  # noqa: E402
from core.files.image_io import save_png  # noqa: E402


def strip(dataset: str, count: int) -> np.ndarray:
    """The first ``count`` images side by side.  # [H, count * W, 3] uint8"""
    images = [img for _, img in iter_images(dataset, limit=count)]
    if not images:
        raise SystemExit(f"error: no images in {dataset}")
    return np.concatenate(images, axis=1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=8)
    a = p.parse_args()
    print(f"wrote {save_png(a.out, strip(a.dataset, a.count))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
