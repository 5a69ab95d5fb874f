"""MTCNN face detection with five landmarks, in torch (Zhang, Zhang, Li, Qiao, "Joint Face Detection and Alignment
using Multi-task Cascaded Convolutional Networks", IEEE Signal Processing Letters 2016, §II.A-B).

Three networks run as a cascade:

1. **P-Net** (fully convolutional, 12x12 receptive field, stride 2) over an image pyramid (scale factor 0.709, the
   first scale maps the minimum face size to 12 px): a face score and a box regression per cell; threshold 0.6,
   NMS (IoU 0.5) per scale, then NMS (IoU 0.7) across scales; regressed boxes made square.
2. **R-Net** on 24x24 crops of those boxes: threshold 0.7, NMS (IoU 0.7), box regression, squared again.
3. **O-Net** on 48x48 crops: threshold 0.7, box regression, five landmarks (left eye, right eye, nose tip, left
   mouth corner, right mouth corner, as fractions of the box), NMS (0.7, overlap measured over the smaller box).

Inputs are RGB scaled as (x - 127.5) / 128; pyramid levels and crops are resized with area averaging, crops
reaching outside the image are padded with black. The weights are the P/R/O-Net state dicts shipped inside the
``facenet-pytorch`` wheel (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, MIT licence; install with
``pip install --no-deps``, see requirements-nodeps.txt). The package is located with ``importlib`` and never
imported (its ``__init__`` imports torchvision). Those weights were converted from the original Caffe models, whose
fully connected layers read the feature map transposed (width before height): the dense layers here flatten in
that order.

Example::

    faces = MTCNN().detect(img)          # img uint8 [H, W, 3] RGB -> list[Face], largest first
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from ...errors import TridentError, first_line

__all__ = ["Face", "MTCNN", "DetectorWeightsError", "weights_dir", "nms", "MIN_FACE", "PYRAMID_FACTOR",
           "THRESHOLDS"]

MIN_FACE = 20                        # px: the smallest face the pyramid looks for (the paper's setting)
PYRAMID_FACTOR = 0.709               # scale step between pyramid levels
THRESHOLDS = (0.6, 0.7, 0.7)         # P-, R-, O-Net face-score thresholds
WEIGHTS_PACKAGE = "facenet_pytorch"


class DetectorWeightsError(TridentError):
    """The MTCNN weight files are not installed; the message says how to install them."""


def weights_dir() -> Path:
    """The folder holding pnet.pt / rnet.pt / onet.pt, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    hint = "install them with: pip install --no-deps -r requirements-nodeps.txt (facenet-pytorch)"
    if spec is None or not spec.submodule_search_locations:
        raise DetectorWeightsError(f"face detector weights not found (package {WEIGHTS_PACKAGE} is missing); {hint}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    missing = [n for n in ("pnet.pt", "rnet.pt", "onet.pt") if not (folder / n).is_file()]
    if missing:
        raise DetectorWeightsError(f"face detector weights missing in {folder}: {', '.join(missing)}; {hint}")
    return folder


@dataclass(frozen=True)
class Face:
    """One detection in image pixels (0-based, x right, y down): box (x1, y1, x2, y2), score, landmarks [5, 2]."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """EG3D's "largest face" measure: box width + height."""
        return self.width + self.height


# --------------------------------------------------------------------------------------------------------------
# networks (parameter names match the shipped state dicts)


class _PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)       # score [B, h, w], reg [B, 4, h, w]


def _flatten_transposed(x: Tensor) -> Tensor:
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class _RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_transposed(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class _ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_transposed(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


# --------------------------------------------------------------------------------------------------------------
# box helpers (boxes are [N, 4] x1, y1, x2, y2 in 1-based inclusive pixel coordinates, as the original cascade)


def nms(boxes: Tensor, scores: Tensor, threshold: float, mode: str = "union") -> Tensor:
    """Greedy non-maximum suppression -> indices kept, best first. ``mode`` "union" compares intersection over
    union, "min" intersection over the smaller box."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = torch.argsort(scores, descending=True)
    keep = []
    while order.numel() > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        inter = w * h
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return torch.tensor(keep, dtype=torch.long)


def _regress(boxes: Tensor, reg: Tensor) -> Tensor:
    """Apply the networks' box offsets (fractions of the box size) -> [N, 4]."""
    wh = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    return boxes + reg * wh


def _square(boxes: Tensor) -> Tensor:
    """Grow each box to a square around its centre (side = the longer side) -> [N, 4]."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    x1y1 = boxes[:, 0:2] + wh * 0.5 - side * 0.5
    return torch.cat([x1y1, x1y1 + side], dim=1)


def _normalise(pixels: np.ndarray) -> Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] scaled as the networks were trained: (x - 127.5) / 128."""
    t = torch.from_numpy(np.array(pixels, dtype=np.float32, copy=True))
    return ((t - 127.5) * 0.0078125).movedim(-1, -3)


def _crops(img: Image.Image, boxes: Tensor, size: int) -> Tensor:
    """Crops of integer boxes (black outside the photo, as the original cascade pads), area-resized
    -> [N, 3, size, size]."""
    out = [np.asarray(img.crop((x1 - 1, y1 - 1, max(x2, x1), max(y2, y1))).resize((size, size), Image.BOX))
           for x1, y1, x2, y2 in boxes.trunc().long().tolist()]
    return _normalise(np.stack(out))


# --------------------------------------------------------------------------------------------------------------


class MTCNN:
    """The three-stage cascade. ``detect`` returns every face above the thresholds, largest (width + height) first.

    The networks are tiny (10-256 channels), so ``detect`` runs them on ``threads`` torch threads (default 1):
    measured on 2 shared CPU cores, P-Net on a 192 px level took 7 ms on one thread and 250 ms on two, the
    threads' synchronisation costing far more than the split work saves."""

    def __init__(self, weights: str | Path | None = None, min_face: float = MIN_FACE,
                 factor: float = PYRAMID_FACTOR, thresholds: tuple[float, float, float] = THRESHOLDS,
                 threads: int = 1) -> None:
        folder = Path(weights) if weights is not None else weights_dir()
        self.pnet, self.rnet, self.onet = _PNet(), _RNet(), _ONet()
        for net, name in ((self.pnet, "pnet.pt"), (self.rnet, "rnet.pt"), (self.onet, "onet.pt")):
            try:
                net.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
            except (OSError, RuntimeError) as e:
                raise DetectorWeightsError(f"cannot load face detector weights {folder / name}: "
                                           f"{first_line(e)}") from None
            net.eval()
        if min_face < 12 or not 0 < factor < 1:
            raise ValueError("min_face must be >= 12 px and factor in (0, 1)")
        self.min_face, self.factor, self.thresholds = float(min_face), float(factor), tuple(thresholds)
        self.threads = max(1, int(threads))

    def scales(self, h: int, w: int, min_face: float | None = None) -> list[float]:
        """Pyramid scales: the first maps ``min_face`` px to P-Net's 12 px window, then x ``factor`` while the
        shorter side still holds 12 px."""
        scale = 12.0 / (min_face or self.min_face)
        out = []
        while min(h, w) * scale >= 12:
            out.append(scale)
            scale *= self.factor
        return out

    @torch.no_grad()
    def detect(self, img: np.ndarray, min_face: float | None = None) -> list[Face]:
        """uint8 RGB [H, W, 3] -> faces, largest first. ``min_face`` (px) overrides the pyramid's smallest face."""
        a = np.asarray(img)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"detect expects a uint8 RGB image [H, W, 3], got {a.dtype} {a.shape}")
        x = Image.fromarray(np.ascontiguousarray(a))
        h, w = a.shape[:2]
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            boxes = self._stage1(x, h, w, min_face)
            if len(boxes):
                boxes = self._stage2(x, boxes)
            if not len(boxes):
                return []
            boxes, scores, points = self._stage3(x, boxes)
        finally:
            torch.set_num_threads(threads)
        faces = [Face(tuple(float(v) - 1.0 for v in b), float(s), p.numpy().astype(np.float64) - 1.0)
                 for b, s, p in zip(boxes, scores, points)]
        return sorted(faces, key=lambda f: -f.size)

    def _stage1(self, x: Image.Image, h: int, w: int, min_face: float | None) -> Tensor:
        found = []
        for scale in self.scales(h, w, min_face):
            level = x.resize((math.ceil(w * scale), math.ceil(h * scale)), Image.BOX)     # area averaging
            score, reg = self.pnet(_normalise(np.asarray(level))[None])
            ys, xs = torch.nonzero(score[0] >= self.thresholds[0], as_tuple=True)
            if ys.numel() == 0:
                continue
            cell = torch.stack([xs, ys], dim=1).float()
            boxes = torch.cat([((2 * cell + 1) / scale).floor(), ((2 * cell + 12) / scale).floor()], dim=1)
            s, r = score[0, ys, xs], reg[0, :, ys, xs].T
            keep = nms(boxes, s, 0.5)
            found.append(torch.cat([boxes[keep], s[keep, None], r[keep]], dim=1))
        if not found:
            return torch.zeros(0, 4)
        cand = torch.cat(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return _square(_regress(cand[:, :4], cand[:, 5:9]))

    def _stage2(self, x: Image.Image, boxes: Tensor) -> Tensor:
        score, reg = self.rnet(_crops(x, boxes, 24))
        ok = score > self.thresholds[1]
        boxes, score, reg = boxes[ok], score[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    def _stage3(self, x: Image.Image, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        boxes = boxes.trunc()
        score, reg, pts = self.onet(_crops(x, boxes, 48))
        ok = score > self.thresholds[2]
        boxes, score, reg, pts = boxes[ok], score[ok], reg[ok], pts[ok]
        wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
        points = torch.stack([boxes[:, 0:1] + wh[:, 0:1] * pts[:, 0:5],
                              boxes[:, 1:2] + wh[:, 1:2] * pts[:, 5:10]], dim=2)       # [N, 5, 2], 1-based
        boxes = _regress(boxes, reg)
        keep = nms(boxes, score, 0.7, mode="min")
        return boxes[keep], score[keep], points[keep]
