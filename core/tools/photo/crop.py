"""The EG3D/FFHQ face crop from five landmarks, as one axis-aligned affine warp with its inverse (paste back).

EG3D's in-the-wild preprocessing (NVlabs/eg3d: ``dataset_preprocessing/ffhq/preprocess_in_the_wild.py``, which runs
Deep3DFaceRecon_pytorch's ``util/preprocess.py: align_img`` with ``target_size=1024, rescale_factor=300`` and then
takes the centre 700x700 and resizes it to 512x512 with Lanczos):

1. flip y (``y' = H - 1 - y``) and fit a 2x4 affine projection of the five-point 3D template
   (:data:`TEMPLATE_5PT`) onto the landmarks by least squares ("POS", ``util/preprocess.py: POS``); the
   translation ``t`` is its last column, the scale ``s`` the mean norm of its two rotation rows;
2. resize the whole photo by ``k = 300 / s`` (to ``int(W k) x int(H k)``, bicubic) and cut a 1024 box whose
   top-left corner is ``(int(w/2 - 512 + (t_x - W/2) k), int(h/2 - 512 + (H/2 - t_y) k))`` (black outside);
3. keep the centre 700x700 of the box and resize it to 512x512 (Lanczos). No in-plane rotation.

Steps 2-3 only scale and translate, so the crop is one map from output pixels to photo pixels (continuous pixel
coordinates, pixel i covering [i, i+1)): ``X = a_x u + b_x``, ``Y = a_y v + b_y`` (:class:`CropTransform`). One
resample of that box of the original photo (bicubic when it enlarges, like EG3D's dominant first step; Lanczos when
it reduces) gives the same image without resizing a large photo first (:func:`eg3d_crop`);
:func:`eg3d_crop_two_step` is the literal version, kept to test against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["TEMPLATE_5PT", "BOX", "RESCALE", "CENTER", "OUTPUT", "CropTransform", "pos_fit", "crop_transform",
           "eg3d_crop", "eg3d_crop_two_step", "paste_back"]

# Deep3DFaceRecon_pytorch (MIT), ``util/load_mats.py``/``util/preprocess.py``: the five-point 3D template (BFM frame,
# x right, y up, z towards the viewer) derived from BFM's similarity_Lm3D_all.mat: eye centres, nose tip, mouth
# corners (left/right as seen in the image).
TEMPLATE_5PT = np.array([
    [-0.3114866, 0.2903608, 0.1337795],
    [0.3097989, 0.2897204, 0.1317953],
    [0.0032535, -0.0461793, 0.5524424],
    [-0.2521693, -0.3813392, 0.2240573],
    [0.2484662, -0.3812824, 0.2223577],
])
BOX = 1024          # align_img target_size in EG3D's preprocessing
RESCALE = 300.0     # align_img rescale_factor in EG3D's preprocessing
CENTER = 700        # centre crop of the 1024 box
OUTPUT = 512        # final side


def pos_fit(landmarks_up: np.ndarray, template: np.ndarray = TEMPLATE_5PT) -> tuple[np.ndarray, float]:
    """Least-squares 2x4 affine projection of ``template`` [N, 3] onto ``landmarks_up`` [N, 2] (y up) ->
    (translation t [2], scale s)."""
    n = template.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3], a[0::2, 3] = template, 1.0
    a[1::2, 4:7], a[1::2, 7] = template, 1.0
    k = np.linalg.lstsq(a, np.asarray(landmarks_up, dtype=np.float64).reshape(-1), rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2.0
    return np.array([k[3], k[7]]), float(s)


@dataclass(frozen=True)
class CropTransform:
    """Output pixel -> photo pixel map of a crop: ``X = scale[0] u + offset[0]``, ``Y = scale[1] v + offset[1]`` in
    continuous pixel coordinates; ``size`` is the output side; ``photo_size`` the photo's (width, height)."""

    scale: tuple[float, float]
    offset: tuple[float, float]
    size: int
    photo_size: tuple[int, int]

    def to_photo(self, pts: np.ndarray) -> np.ndarray:
        """Crop pixel centres [N, 2] (0-based, as landmarks) -> photo pixel coordinates."""
        p = np.asarray(pts, dtype=np.float64)
        return (p + 0.5) * np.array(self.scale) + np.array(self.offset) - 0.5

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates [N, 2] -> crop pixel coordinates (the inverse of :meth:`to_photo`)."""
        p = np.asarray(pts, dtype=np.float64)
        return (p + 0.5 - np.array(self.offset)) / np.array(self.scale) - 0.5

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The photo region the crop shows: (left, top, right, bottom), continuous coordinates."""
        return (self.offset[0], self.offset[1], self.offset[0] + self.scale[0] * self.size,
                self.offset[1] + self.scale[1] * self.size)

    def to_dict(self) -> dict:
        return {"scale": list(self.scale), "offset": list(self.offset), "size": self.size,
                "photo_size": list(self.photo_size)}


def _align_params(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """EG3D's resized photo size and 1024-box corner in it: (w, h, left, up)."""
    lm = np.asarray(landmarks, dtype=np.float64).copy()
    lm[:, 1] = height - 1 - lm[:, 1]
    t, s = pos_fit(lm)
    k = RESCALE / s
    w, h = int(width * k), int(height * k)
    left = int(w / 2 - BOX / 2 + (t[0] - width / 2) * k)
    up = int(h / 2 - BOX / 2 + (height / 2 - t[1]) * k)
    return w, h, left, up


def crop_transform(landmarks: np.ndarray, width: int, height: int, size: int = OUTPUT) -> CropTransform:
    """The EG3D crop of a ``width`` x ``height`` photo with five landmarks [5, 2] (pixels, y down), as a map."""
    w, h, left, up = _align_params(landmarks, width, height)
    if w < 1 or h < 1:
        raise ValueError("the landmarks imply a crop larger than the photo can be resized for")
    sx, sy = w / width, h / height                   # PIL's per-axis resize factors (sides rounded down)
    margin = (BOX - CENTER) // 2
    return CropTransform(scale=(CENTER / size / sx, CENTER / size / sy),
                         offset=((left + margin) / sx, (up + margin) / sy), size=int(size),
                         photo_size=(int(width), int(height)))


def eg3d_crop(img: np.ndarray, tf: CropTransform) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3]: one resample of the transform's box (black outside)."""
    hgt, wid = img.shape[:2]
    x0, y0, x1, y1 = tf.box
    # The region the filter reads (support up to 3 output pixels each side), padded with black where it leaves
    # the photo; only this region is copied, however large the photo.
    pad = 3 * max(tf.scale) + 2
    rx0, ry0 = math.floor(x0 - pad), math.floor(y0 - pad)
    rx1, ry1 = math.ceil(x1 + pad), math.ceil(y1 + pad)
    region = np.zeros((ry1 - ry0, rx1 - rx0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(rx0, 0), max(ry0, 0), min(rx1, wid), min(ry1, hgt)
    if sx1 > sx0 and sy1 > sy0:
        region[sy0 - ry0:sy1 - ry0, sx0 - rx0:sx1 - rx0] = img[sy0:sy1, sx0:sx1]
    resample = Image.BICUBIC if max(tf.scale) < 1 else Image.LANCZOS
    out = Image.fromarray(region).resize((tf.size, tf.size), resample,
                                         box=(x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0))
    return np.asarray(out)


def eg3d_crop_two_step(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The literal EG3D steps (resize the whole photo bicubic, cut the 1024 box, centre 700, Lanczos to 512)."""
    hgt, wid = img.shape[:2]
    w, h, left, up = _align_params(landmarks, wid, hgt)
    big = Image.fromarray(img).resize((w, h), Image.BICUBIC).crop((left, up, left + BOX, up + BOX))
    m = (BOX - CENTER) // 2
    return np.asarray(big.crop((m, m, m + CENTER, m + CENTER)).resize((OUTPUT, OUTPUT), Image.LANCZOS))


def paste_back(photo: np.ndarray, image: np.ndarray, tf: CropTransform) -> np.ndarray:
    """Put ``image`` (uint8 [n, n, 3], e.g. a re-rendered crop at any resolution) back where the crop came from in
    ``photo`` (uint8 [H, W, 3]) -> a new photo. Only whole photo pixels inside both the crop box and the photo
    are replaced."""
    out = np.array(photo, dtype=np.uint8, copy=True)
    hgt, wid = out.shape[:2]
    x0, y0, x1, y1 = tf.box
    px0, py0 = max(math.ceil(x0), 0), max(math.ceil(y0), 0)
    px1, py1 = min(math.floor(x1), wid), min(math.floor(y1), hgt)
    if px1 <= px0 or py1 <= py0:
        return out
    n = image.shape[0]
    f = n / tf.size                                   # image pixels per crop pixel
    src = ((px0 - x0) / tf.scale[0] * f, (py0 - y0) / tf.scale[1] * f,
           (px1 - x0) / tf.scale[0] * f, (py1 - y0) / tf.scale[1] * f)
    patch = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((px1 - px0, py1 - py0), Image.LANCZOS,
                                                                      box=src)
    out[py0:py1, px0:px1] = np.asarray(patch)
    return out
