"""MTCNN face detection with five landmarks, in torch (Zhang, Zhang, Li, Qiao, "Joint Face Detection and Alignment
using Multi-task Cascaded Convolutional Networks", IEEE Signal Processing Letters 2016, §II.A-B).

Three networks run as a cascade:

1. **P-Net** (fully convolutional, 12x12 receptive field, stride 2) over an image pyramid (scale factor 0.709, the
   first scale maps the minimum face size to 12 px): a face score and a box regression per cell; threshold 0.6,
   NMS (IoU 0.5) per scale, then NMS (IoU 0.7) across scales; regressed boxes made square.
2. **R-Net** on 24x24 crops of those boxes: threshold 0.7, NMS (IoU 0.7), box regression, squared again.
3. **O-Net** on 48x48 crops: threshold 0.7, box regression, five landmarks (left eye, right eye, nose tip, left
   mouth corner, right mouth corner, as fractions of the box), NMS (0.7, overlap measured over the smaller box).

Inputs are RGB scaled as (x - 127.5) / 128; crops outside the image are zero-padded and resized with area
averaging. The weights are the P/R/O-Net state dicts shipped inside the ``facenet-pytorch`` wheel
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``, MIT licence; install with ``pip install --no-deps``, see
requirements-nodeps.txt). The package is located with ``importlib`` and never imported (its ``__init__`` imports
torchvision). Those weights were converted from the original Caffe models, whose fully connected layers read the
feature map transposed (width before height): the dense layers here flatten in that order.

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
from torch import Tensor, nn

__all__ = ["Face", "MTCNN", "DetectorWeightsError", "weights_dir", "nms", "MIN_FACE", "PYRAMID_FACTOR",
           "THRESHOLDS"]

MIN_FACE = 20                        # px: the smallest face the pyramid looks for (the paper's setting)
PYRAMID_FACTOR = 0.709               # scale step between pyramid levels
THRESHOLDS = (0.6, 0.7, 0.7)         # P-, R-, O-Net face-score thresholds
WEIGHTS_PACKAGE = "facenet_pytorch"


class DetectorWeightsError(ValueError):
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


def _crops(img: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Zero-padded crops of integer boxes, area-resized -> [N, 3, size, size] (img [3, H, W], normalised)."""
    _, h, w = img.shape
    out = []
    for x1, y1, x2, y2 in boxes.trunc().long().tolist():
        side_w, side_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        patch = img.new_zeros(3, side_h, side_w)
        sx1, sy1, sx2, sy2 = max(x1 - 1, 0), max(y1 - 1, 0), min(x2, w), min(y2, h)   # source, 0-based exclusive
        if sx2 > sx1 and sy2 > sy1:
            patch[:, sy1 - (y1 - 1):sy2 - (y1 - 1), sx1 - (x1 - 1):sx2 - (x1 - 1)] = img[:, sy1:sy2, sx1:sx2]
        out.append(F.interpolate(patch[None], size=(size, size), mode="area"))
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------------------


class MTCNN:
    """The three-stage cascade. ``detect`` returns every face above the thresholds, largest (width + height) first."""

    def __init__(self, weights: str | Path | None = None, min_face: float = MIN_FACE,
                 factor: float = PYRAMID_FACTOR, thresholds: tuple[float, float, float] = THRESHOLDS) -> None:
        folder = Path(weights) if weights is not None else weights_dir()
        self.pnet, self.rnet, self.onet = _PNet(), _RNet(), _ONet()
        for net, name in ((self.pnet, "pnet.pt"), (self.rnet, "rnet.pt"), (self.onet, "onet.pt")):
            try:
                net.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
            except (OSError, RuntimeError) as e:
                raise DetectorWeightsError(f"cannot load face detector weights {folder / name}: "
                                           f"{str(e).splitlines()[0]}") from None
            net.eval()
        if min_face < 12 or not 0 < factor < 1:
            raise ValueError("min_face must be >= 12 px and factor in (0, 1)")
        self.min_face, self.factor, self.thresholds = float(min_face), float(factor), tuple(thresholds)

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
        x = (torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float() - 127.5) * 0.0078125
        h, w = a.shape[:2]
        boxes = self._stage1(x, h, w, min_face)
        if len(boxes):
            boxes = self._stage2(x, boxes)
        if not len(boxes):
            return []
        boxes, scores, points = self._stage3(x, boxes)
        faces = [Face(tuple(float(v) - 1.0 for v in b), float(s), p.numpy().astype(np.float64) - 1.0)
                 for b, s, p in zip(boxes, scores, points)]
        return sorted(faces, key=lambda f: -f.size)

    def _stage1(self, x: Tensor, h: int, w: int, min_face: float | None) -> Tensor:
        found = []
        for scale in self.scales(h, w, min_face):
            level = F.interpolate(x[None], size=(math.ceil(h * scale), math.ceil(w * scale)), mode="area")
            score, reg = self.pnet(level)
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

    def _stage2(self, x: Tensor, boxes: Tensor) -> Tensor:
        score, reg = self.rnet(_crops(x, boxes, 24))
        ok = score > self.thresholds[1]
        boxes, score, reg = boxes[ok], score[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    def _stage3(self, x: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
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
