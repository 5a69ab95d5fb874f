"""Procedural head-like objects and the FFHQ-like camera distribution of the synthetic dataset.

Objects (all parameters drawn from ``numpy.random.default_rng([seed, index])`` by :func:`sample_scene`, so image
``index`` of a dataset does not depend on batch size, worker count or the other images) are unions of ellipsoids:

* a head ellipsoid (varied proportions) whose centre, the *object centre*, is the camera pivot (0, 0, 0.2) plus a
  small random offset (at most 0.03 per axis), like a face in FFHQ;
* optional neck and shoulders; round ears, pointy ears or horns (a symmetric pair); a small nose, an animal snout
  with a dark tip, or a long nose; eyes (white + coloured pupil, or "button" eyes); a mouth; a striped hair cap or
  a hat with a brim. Colours come from palettes with jitter (display values, squared into linear light);
* every object is left-right symmetric about its centre's x, so :meth:`Objects.mirrored` is the exact mirror
  image, the scene a :func:`core.cameras.flip_yaw_label` camera sees;
* all geometry lies inside the tri-plane box [-0.5, 0.5]^3.

Cameras (EG3D ``LookAtPoseSampler`` conventions, via :func:`core.cameras.lookat_cam2world`):
yaw = pi/2 + clip(N(0, 0.3), +-35 deg), pitch = pi/2 + clip(N(0, 0.12), +-15 deg), radius 2.7 around the world
origin, looking at the pivot (0, 0, 0.2); focal ``fov_to_focal(18.837)`` = 4.2634, principal point (0.5, 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.cameras import Camera, fov_to_focal, intrinsics_matrix, lookat_cam2world
from core.conventions import DEFAULT_FOV_DEG, DEFAULT_PIVOT, DEFAULT_RADIUS
from core.files.dataset import DatasetError

PIVOT = DEFAULT_PIVOT
RADIUS = DEFAULT_RADIUS
FOV_DEG = DEFAULT_FOV_DEG
YAW_STD, YAW_LIMIT = 0.3, math.radians(35.0)
PITCH_STD, PITCH_LIMIT = 0.12, math.radians(15.0)
CENTER_JITTER = 0.03
BOX_HALF = 0.5

# Primitive slots (every object has all of them; absent ones are skipped). "px"/"nx": the +x / -x side.
SLOTS = ("head", "neck", "base", "ear_px", "ear_nx", "nose", "nose_tip", "eye_px", "eye_nx", "pupil_px",
         "pupil_nx", "mouth", "hair", "brim")
PART_GROUPS = {
    "head": ("head",), "neck": ("neck", "base"), "ears": ("ear_px", "ear_nx"), "nose": ("nose", "nose_tip"),
    "eyes": ("eye_px", "eye_nx", "pupil_px", "pupil_nx"), "mouth": ("mouth",), "hair": ("hair", "brim"),
}
K = len(SLOTS)
_SLOT = {name: i for i, name in enumerate(SLOTS)}
# How the tracer intersects each slot (fixed per slot, so results never depend on which objects share a batch):
# "sphere": equal semi-axes; "axis": axis-aligned ellipsoid; "general": rotated ellipsoid.
SLOT_KIND = {"head": "axis", "neck": "axis", "base": "axis", "ear_px": "general", "ear_nx": "general",
             "nose": "general", "nose_tip": "sphere", "eye_px": "sphere", "eye_nx": "sphere", "pupil_px": "sphere",
             "pupil_nx": "sphere", "mouth": "axis", "hair": "axis", "brim": "axis"}

# Palettes in display values (0..255); converted to linear light by squaring (gamma 2).
SKIN = [(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 104, 72), (110, 72, 50),
        (80, 52, 38), (150, 200, 140), (140, 170, 220), (200, 150, 210), (240, 170, 90), (190, 190, 195),
        (230, 120, 110)]
HAIR = [(30, 25, 22), (70, 45, 30), (120, 80, 45), (200, 160, 90), (170, 70, 35), (160, 160, 165), (60, 90, 200),
        (220, 90, 160), (70, 160, 90), (240, 240, 235)]
CLOTH = [(180, 40, 40), (40, 60, 140), (40, 110, 60), (50, 50, 55), (200, 170, 60), (120, 70, 150),
         (230, 230, 220), (90, 150, 170)]
IRIS = [(60, 40, 25), (40, 90, 160), (50, 120, 60), (20, 20, 20), (120, 90, 40), (110, 60, 140)]
HORN = [(235, 225, 200), (120, 110, 100), (60, 50, 45), (200, 160, 90)]
MOUTH = [(120, 40, 40), (70, 30, 30), (160, 60, 70)]
NOSE_TIP = [(40, 30, 30), (20, 20, 20), (150, 80, 80)]
EYE_WHITE = [(245, 245, 240), (230, 230, 210)]
BACKGROUND = [(200, 200, 205), (170, 185, 200), (215, 205, 185), (150, 160, 150), (90, 95, 110), (225, 215, 225),
              (60, 60, 65), (190, 210, 225), (120, 140, 170), (210, 190, 160)]



# ----------------------------------------------------------------------------------------------------------
# objects


@dataclass
class Objects:
    """A batch of objects, float64 numpy. Ellipsoid k of object b: centre ``centers[b, k]``, semi-axes
    ``radii[b, k]`` along the columns of the rotation ``rot[b, k]`` (local -> world)."""

    center: np.ndarray      # [B, 3] object (head) centre
    centers: np.ndarray     # [B, K, 3]
    radii: np.ndarray       # [B, K, 3]
    rot: np.ndarray         # [B, K, 3, 3]
    albedo: np.ndarray      # [B, K, 3] linear
    present: np.ndarray     # [B, K] bool
    stripe_amp: np.ndarray  # [B, K] albedo modulation depth (0: plain)
    stripe_freq: np.ndarray  # [B, K] stripes per world unit along y
    lights: np.ndarray      # [B, 4] ambient, key, headlight, rim weights
    specular: np.ndarray    # [B] specular weight
    background: np.ndarray  # [B, 2, 3] linear top and bottom colours

    @property
    def batch(self) -> int:
        return self.center.shape[0]

    @staticmethod
    def stack(items: Sequence["Objects"]) -> "Objects":
        return Objects(**{f: np.concatenate([getattr(o, f) for o in items]) for f in Objects.__dataclass_fields__})

    def mirrored(self) -> "Objects":
        """The mirror image in the world x axis (x -> -x): the scene seen by a ``flip_yaw`` camera."""
        s = np.array([-1.0, 1.0, 1.0])
        fields = {f: getattr(self, f).copy() for f in Objects.__dataclass_fields__}
        fields["center"] = self.center * s
        fields["centers"] = self.centers * s
        fields["rot"] = s[:, None] * self.rot * s  # S R S
        return Objects(**fields)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds of the present ellipsoids.  # [B, 3], [B, 3]"""
        half = np.sqrt(((self.rot * self.radii[:, :, None, :]) ** 2).sum(-1))  # [B, K, 3]
        lo = np.where(self.present[..., None], self.centers - half, np.inf).min(1)
        hi = np.where(self.present[..., None], self.centers + half, -np.inf).max(1)
        return lo, hi

    def surface_distance(self, points: np.ndarray, b: int) -> np.ndarray:
        """Approximate signed distance of points [N, 3] to the surface of object b (first order: f / |grad f|
        per ellipsoid, minimum over ellipsoids; 0 on the surface, negative inside)."""
        out = np.full(points.shape[0], np.inf)
        for k in np.flatnonzero(self.present[b]):
            local = (points - self.centers[b, k]) @ self.rot[b, k] / self.radii[b, k]
            f = (local ** 2).sum(1) - 1
            grad = 2 * (local / self.radii[b, k]) @ self.rot[b, k].T
            out = np.minimum(out, f / np.linalg.norm(grad, axis=1))
        return out

    def implicit(self, points: np.ndarray, b: int) -> np.ndarray:
        """min over present ellipsoids of |local(p)|^2 - 1 for points [N, 3] of object b (0 on the surface)."""
        out = np.full(points.shape[0], np.inf)
        for k in np.flatnonzero(self.present[b]):
            local = (points - self.centers[b, k]) @ self.rot[b, k] / self.radii[b, k]
            out = np.minimum(out, (local ** 2).sum(1) - 1)
        return out


def _colour(rng: np.random.Generator, palette: list, jitter: float = 0.08) -> np.ndarray:
    c = np.asarray(palette[rng.integers(len(palette))], dtype=np.float64) / 255.0
    c = np.clip(c * rng.uniform(1 - jitter, 1 + jitter, 3), 0.0, 0.97)
    return c ** 2  # display -> linear (gamma 2)


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def sample_object(rng: np.random.Generator, parts: Sequence[str] | None = None) -> Objects:
    """One random head-like object (batch of 1). ``parts``: keep only these PART_GROUPS (default all)."""
    centers = np.zeros((K, 3))
    radii = np.full((K, 3), 0.01)
    rot = np.tile(np.eye(3), (K, 1, 1))
    albedo = np.zeros((K, 3))
    present = np.zeros(K, dtype=bool)
    amp = np.zeros(K)
    freq = np.zeros(K)

    def put(slot: str, c, r, colour, R=None, stripes=(0.0, 0.0)) -> None:
        k = _SLOT[slot]
        centers[k], radii[k], albedo[k], present[k] = c, r, colour, True
        if R is not None:
            rot[k] = R
        amp[k], freq[k] = stripes

    C = np.asarray(PIVOT) + rng.uniform(-CENTER_JITTER, CENTER_JITTER, 3)
    hx, hy, hz = rng.uniform(0.13, 0.17), rng.uniform(0.15, 0.20), rng.uniform(0.13, 0.17)
    h = np.array([hx, hy, hz])
    skin = _colour(rng, SKIN)
    put("head", C, h, skin)

    if rng.random() < 0.85:  # neck, maybe shoulders
        nr = rng.uniform(0.06, 0.09)
        put("neck", C + [0.0, -0.9 * hy - 0.06, -0.02], [nr, 0.13, nr * 0.95], skin * rng.uniform(0.85, 1.0))
        if rng.random() < 0.7:
            put("base", C + [0.0, -0.33, -0.03], [rng.uniform(0.22, 0.28), 0.07, rng.uniform(0.12, 0.16)],
                _colour(rng, CLOTH))

    ears = rng.choice(4, p=[0.15, 0.35, 0.3, 0.2])  # none, round, pointy, horns
    if ears:
        if ears == 1:
            r, tilt, y, colour = [0.03, rng.uniform(0.045, 0.06), rng.uniform(0.035, 0.05)], 0.0, 0.0, skin
            x = 0.97 * hx
        elif ears == 2:
            r, tilt = [0.035, rng.uniform(0.07, 0.1), 0.02], rng.uniform(0.3, 0.6)
            x, y, colour = 0.6 * hx, 0.85 * hy, skin * rng.uniform(0.7, 1.0)
        else:
            r, tilt = [0.025, rng.uniform(0.09, 0.12), 0.025], rng.uniform(0.2, 0.5)
            x, y, colour = 0.5 * hx, 0.9 * hy, _colour(rng, HORN)
        dy = rng.uniform(-0.02, 0.03) if ears == 1 else 0.0
        for slot, s in (("ear_px", 1.0), ("ear_nx", -1.0)):
            put(slot, C + [s * x, y + dy, -0.01], r, colour, _rot_z(-s * tilt))

    nose = rng.choice(3, p=[0.5, 0.3, 0.2])  # small, snout, long
    if nose == 0:
        put("nose", C + [0.0, -0.15 * hy, 0.93 * hz], [0.022, 0.028, 0.035], skin * rng.uniform(0.8, 0.95))
    elif nose == 1:
        sr = np.array([rng.uniform(0.055, 0.075), rng.uniform(0.04, 0.055), rng.uniform(0.07, 0.09)])
        sc = C + [0.0, -0.4 * hy, 0.75 * hz]
        put("nose", sc, sr, skin * rng.uniform(0.85, 1.05))
        put("nose_tip", sc + [0.0, 0.6 * sr[1], 0.9 * sr[2]], [0.02] * 3, _colour(rng, NOSE_TIP))
    else:
        put("nose", C + [0.0, -0.1 * hy, 0.95 * hz], [0.018, 0.02, rng.uniform(0.06, 0.08)],
            skin * rng.uniform(0.8, 0.95), _rot_x(rng.uniform(0.1, 0.3)))

    alpha, beta = rng.uniform(0.3, 0.5), rng.uniform(0.0, 0.25)
    er = rng.uniform(0.025, 0.035)
    button = rng.random() < 0.3
    white, iris = _colour(rng, EYE_WHITE, 0.02), _colour(rng, IRIS)
    for s, eye, pupil in ((1.0, "eye_px", "pupil_px"), (-1.0, "eye_nx", "pupil_nx")):
        p = h * [s * math.sin(alpha) * math.cos(beta), math.sin(beta), math.cos(alpha) * math.cos(beta)]
        n = p / h ** 2
        n /= np.linalg.norm(n)
        gaze = n + [0.0, 0.0, 1.0]
        gaze /= np.linalg.norm(gaze)
        if button:
            pr = 0.75 * er
            put(pupil, C + p - 0.2 * pr * n, [pr] * 3, iris * 0.3)
        else:
            ec = C + p - 0.3 * er * n
            pr = er * rng.uniform(0.45, 0.65) if s > 0 else radii[_SLOT["pupil_px"], 0]
            put(eye, ec, [er] * 3, white)
            put(pupil, ec + gaze * (er - 0.5 * pr), [pr] * 3, iris)

    if rng.random() < 0.6:
        g = rng.uniform(0.35, 0.55)
        put("mouth", C + [0.0, -math.sin(g) * hy, math.cos(g) * hz], [rng.uniform(0.03, 0.06), 0.012, 0.03],
            _colour(rng, MOUTH))

    hair = rng.choice(3, p=[0.25, 0.45, 0.3])  # none, cap, hat
    if hair == 1:
        put("hair", C + [0.0, hy * rng.uniform(0.25, 0.35), -hz * rng.uniform(0.2, 0.3)],
            [hx * 1.06, hy * rng.uniform(0.85, 0.95), hz * 1.08], _colour(rng, HAIR),
            stripes=(rng.uniform(0.1, 0.3), rng.uniform(15.0, 30.0)))
    elif hair == 2:
        cloth = _colour(rng, CLOTH)
        put("hair", C + [0.0, 0.75 * hy, -0.01], [0.95 * hx, rng.uniform(0.07, 0.1), 0.95 * hz], cloth,
            stripes=(rng.uniform(0.0, 0.2), rng.uniform(20.0, 40.0)))
        b = rng.uniform(0.2, 0.24)
        put("brim", C + [0.0, 0.62 * hy, 0.0], [b, 0.012, b * rng.uniform(0.95, 1.0)], cloth * 0.85)

    if parts is not None:
        keep = np.zeros(K, dtype=bool)
        for group in parts:
            if group not in PART_GROUPS:
                raise DatasetError(f"unknown part {group!r} (one of {', '.join(PART_GROUPS)})")
            keep[[_SLOT[s] for s in PART_GROUPS[group]]] = True
        present &= keep

    lights = np.array([rng.uniform(0.2, 0.3), rng.uniform(0.55, 0.75), rng.uniform(0.2, 0.3), rng.uniform(0.1, 0.2)])
    specular = rng.uniform(0.1, 0.3) if rng.random() < 0.5 else 0.0
    top = _colour(rng, BACKGROUND, 0.05)
    bottom = top if rng.random() < 0.5 else _colour(rng, BACKGROUND, 0.05)
    return Objects(C[None], centers[None], radii[None], rot[None], albedo[None], present[None], amp[None],
                   freq[None], lights[None], np.array([specular]), np.stack([top, bottom])[None])


def sample_camera(rng: np.random.Generator) -> tuple[float, float]:
    """FFHQ-like absolute EG3D orbit angles (yaw, pitch)."""
    yaw = math.pi / 2 + float(np.clip(rng.normal(0.0, YAW_STD), -YAW_LIMIT, YAW_LIMIT))
    pitch = math.pi / 2 + float(np.clip(rng.normal(0.0, PITCH_STD), -PITCH_LIMIT, PITCH_LIMIT))
    return yaw, pitch


def camera_for(yaw: float, pitch: float) -> Camera:
    """The dataset camera at absolute orbit angles (radius 2.7, pivot (0, 0, 0.2), FOV 18.837)."""
    c2w = lookat_cam2world(yaw, pitch, PIVOT, RADIUS)
    return Camera(c2w, intrinsics_matrix(fov_to_focal(FOV_DEG))[None])


def sample_scene(seed: int, index: int, parts: Sequence[str] | None = None) -> tuple[Objects, Camera]:
    """Object and camera of image ``index`` of the dataset with ``seed`` (independent of everything else)."""
    rng = np.random.default_rng([int(seed), int(index)])
    yaw, pitch = sample_camera(rng)
    return sample_object(rng, parts), camera_for(yaw, pitch)


def sample_scenes(seed: int, indices: Sequence[int], parts: Sequence[str] | None = None) -> tuple[Objects, Camera]:
    scenes = [sample_scene(seed, i, parts) for i in indices]
    cams = [c for _, c in scenes]
    return Objects.stack([o for o, _ in scenes]), Camera(torch.cat([c.cam2world for c in cams]),
                                                          torch.cat([c.intrinsics for c in cams]))
