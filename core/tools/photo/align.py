"""Photo -> EG3D-aligned face crop + camera label: read (safely), detect, choose a face, crop, estimate the camera.

* Reading goes through :func:`core.files.image_io.read_image`: the header's size is checked before any pixel is decoded
  (decompression bombs are refused), EXIF orientation is applied, CMYK / 16-bit / palette / alpha images become
  8-bit RGB, an animated GIF gives its first frame.
* Choosing (EG3D's rule, ``preprocess_in_the_wild.py``): among faces with confidence > 0.9, the largest by box
  width + height. When another confident face is nearly as large (at least :data:`AMBIGUOUS_RATIO` of it), the
  choice is left to the user (``face=K``, 0 = largest; ``face="largest"`` forces the rule).
* A face whose box is narrower than :data:`MIN_FACE_PX` is refused: its 512 px crop would be enlarged more than
  about 6x from the photo. The detector's pyramid starts at :func:`search_min_face` (32 px, or 1/50 of the shorter
  side of a large photo): the P-Net pyramid is most of the time, and smaller faces could not be used anyway.

Every refusal is an :class:`AlignError` (a :class:`core.files.image_io.PhotoError`) with a one-line message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ...files.image_io import PhotoError, read_image
from .camera import HeadPose, PoseCalibration, estimate_pose, label_orbit_deg, pose_to_label
from .crop import CropTransform, crop_transform, eg3d_crop
from .mtcnn import MTCNN, Face

__all__ = ["AlignError", "Alignment", "align_image", "align_photo", "choose_face", "draw_overlay", "MIN_FACE_PX",
           "MIN_SCORE", "AMBIGUOUS_RATIO", "search_min_face"]

MIN_SCORE = 0.9          # EG3D: faces with confidence above this are candidates
MIN_FACE_PX = 48         # narrowest usable face box (px)
AMBIGUOUS_RATIO = 0.8    # a second face this large (width + height, relative) makes the default choice ambiguous
SEARCH_MIN_PX = 32       # the detector looks for faces down to this width (faces of 32-47 px are "too small")
SEARCH_FRACTION = 1 / 50  # ... or this fraction of the shorter side, if larger (big photos: a shorter pyramid)


class AlignError(PhotoError):
    """A photo cannot be aligned (no face, several faces and none chosen, face too small); one line."""


@dataclass
class Alignment:
    """Everything aligning one photo produced."""

    name: str
    photo_size: tuple[int, int]                  # (width, height)
    faces: list[Face]                            # all detections, largest first
    index: int                                   # the chosen face
    transform: CropTransform
    crop: np.ndarray                             # uint8 [512, 512, 3]
    pose: HeadPose                               # after calibration, when one was given
    label: np.ndarray                            # float32 [25], EG3D dataset.json format
    calibration: PoseCalibration | None = None
    raw_pose: HeadPose | None = field(default=None, repr=False)

    @property
    def face(self) -> Face:
        return self.faces[self.index]

    def crop_landmarks(self) -> np.ndarray:
        return self.transform.to_crop(self.face.landmarks)

    def summary(self) -> dict:
        """JSON-ready description (angles in degrees)."""
        yaw, pitch = label_orbit_deg(self.label)
        out = {
            "image": self.name,
            "label": [float(v) for v in self.label],
            "head_pose_deg": {k: round(v, 3) for k, v in self.pose.degrees.items()},
            "orbit_offset_deg": {"yaw": round(yaw, 3), "pitch": round(pitch, 3)},
            "fit_rms_px_224": round(self.pose.rms_px, 3),
            "face_index": self.index,
            "faces": [{"box": [round(v, 2) for v in f.box], "score": round(f.score, 5),
                       "landmarks": np.round(f.landmarks, 2).tolist()} for f in self.faces],
            "crop": self.transform.to_dict(),
            "crop_landmarks": np.round(self.crop_landmarks(), 2).tolist(),
        }
        if self.calibration is not None:
            out["calibration"] = {"pitch_offset_deg": round(np.degrees(self.calibration.pitch), 3),
                                  "yaw_offset_deg": round(np.degrees(self.calibration.yaw), 3)}
        return out


def _describe(faces: list[Face], most: int = 5) -> str:
    text = ", ".join(f"{i}: {f.width:.0f}x{f.height:.0f} px at ({f.box[0]:.0f}, {f.box[1]:.0f}) score {f.score:.2f}"
                     for i, f in enumerate(faces[:most]))
    return text + (f", ... {len(faces) - most} more" if len(faces) > most else "")


def choose_face(faces: list[Face], face: int | str | None, name: str, min_score: float = MIN_SCORE) -> int:
    """Index into ``faces`` (largest first) of the face to align, or an :class:`AlignError`."""
    if face is not None and face != "largest":
        k = int(face)
        if not 0 <= k < len(faces):
            found = f"{len(faces)} face(s) found ({_describe(faces)})" if faces else "no face found"
            raise AlignError(f"{name}: --face {k} does not exist; {found}")
        return k
    sure = [i for i, f in enumerate(faces) if f.score > min_score]
    if not sure:
        near = f" (best candidate score {faces[0].score:.2f} <= {min_score})" if faces else ""
        raise AlignError(f"{name}: no face found{near}")
    if face is None and len(sure) > 1 and faces[sure[1]].size >= AMBIGUOUS_RATIO * faces[sure[0]].size:
        raise AlignError(f"{name}: {len(sure)} faces found ({_describe([faces[i] for i in sure])}); choose one "
                         f"with --face K (0 = largest) or --face largest")
    return sure[0]


def search_min_face(width: int, height: int) -> float:
    """The smallest face (px) the detector's pyramid looks for in a ``width`` x ``height`` photo."""
    return max(float(SEARCH_MIN_PX), min(width, height) * SEARCH_FRACTION)


def align_image(img: np.ndarray, name: str = "photo", face: int | str | None = None,
                detector: MTCNN | None = None, calibration: PoseCalibration | None = None,
                min_score: float = MIN_SCORE) -> Alignment:
    """uint8 RGB [H, W, 3] -> :class:`Alignment` (or an :class:`AlignError`)."""
    h, w = img.shape[:2]
    if min(h, w) < MIN_FACE_PX:
        raise AlignError(f"{name}: the image is {w}x{h} pixels, too small to hold a usable face "
                         f"(faces must be at least {MIN_FACE_PX} px wide)")
    detector = detector or MTCNN()
    smallest = search_min_face(w, h)
    faces = detector.detect(img, min_face=smallest)
    try:
        k = choose_face(faces, face, name, min_score)
    except AlignError as e:
        if faces:
            raise
        raise AlignError(f"{e} (faces narrower than about {smallest:.0f} px are not searched for)") from None
    chosen = faces[k]
    if chosen.width < MIN_FACE_PX:
        raise AlignError(f"{name}: the face is {chosen.width:.0f} px wide; at least {MIN_FACE_PX} px is needed "
                         f"(use a larger photo or a closer shot)")
    tf = crop_transform(chosen.landmarks, w, h)
    raw = estimate_pose(chosen.landmarks, h)
    pose = calibration.apply(raw) if calibration is not None else raw
    return Alignment(name, (w, h), faces, k, tf, eg3d_crop(img, tf), pose, pose_to_label(pose), calibration, raw)


def align_photo(path: str | os.PathLike, face: int | str | None = None, detector: MTCNN | None = None,
                calibration: PoseCalibration | None = None, min_score: float = MIN_SCORE) -> tuple[np.ndarray,
                                                                                                    Alignment]:
    """Read and align a photo file -> (the photo as uint8 RGB, its :class:`Alignment`)."""
    img = read_image(path)
    return img, align_image(img, Path(path).name, face, detector, calibration, min_score)


def draw_overlay(photo: np.ndarray, al: Alignment, max_side: int = 2048) -> np.ndarray:
    """The photo with every face box (chosen: green, others: red, numbered), the five landmarks and the crop box
    (yellow) -> uint8 [H', W', 3], scaled down so the longer side is at most ``max_side``."""
    h, w = photo.shape[:2]
    f = min(1.0, max_side / max(h, w))
    img = Image.fromarray(photo)
    if f < 1:
        img = img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)
    draw = ImageDraw.Draw(img)
    lw = max(1, round(max(img.size) / 400))
    for i, face in enumerate(al.faces):
        colour = (0, 220, 0) if i == al.index else (230, 40, 40)
        draw.rectangle([v * f for v in face.box], outline=colour, width=lw)
        draw.text((face.box[0] * f + lw + 1, face.box[1] * f + lw + 1), str(i), fill=colour)
        r = max(2, lw * 1.5)
        for x, y in face.landmarks * f:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    draw.rectangle([v * f for v in al.transform.box], outline=(255, 220, 0), width=lw)
    return np.asarray(img)
