"""Shared pieces of the photo-preparation tests: real photos that ship with scikit-image, one detector."""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from skimage import data


@functools.lru_cache(maxsize=1)
def detector():
    from core.tools.photo.mtcnn import MTCNN
    return MTCNN()


def astronaut() -> np.ndarray:
    """skimage.data.astronaut(): a real 512x512 portrait, one face, looking at the camera."""
    return data.astronaut()


def mirrored() -> np.ndarray:
    return np.ascontiguousarray(astronaut()[:, ::-1])


def resized(img: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((width, height or width), Image.LANCZOS))
