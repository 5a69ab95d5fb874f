"""LPIPS perceptual distance (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018, Sec. 3: "Deep features", version 0.1), without importing ``torchvision`` or ``lpips``.

d(x, y) = sum_l  mean_{h,w}  || w_l * (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|) ||^2

* ``f_l`` are five ReLU taps of an ImageNet-trained trunk (VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3;
  AlexNet: relu1..relu5), unit-normalised over channels (eps 1e-10);
* inputs in [-1, 1] are first shifted/scaled by LPIPS' constants (shift [-.030, -.088, -.188],
  scale [.458, .448, .450]);
* ``w_l`` are the learned 1x1 "linear heads" (no bias) shipped by the ``lpips`` package as
  ``lpips/weights/v0.1/{vgg,alex}.pth`` with keys ``lin{l}.model.1.weight`` [1, C_l, 1, 1].

Weights (nothing is downloaded at run time): the trunk is Trident's own layer stack whose
parameter names equal torchvision's (``features.0.weight`` ...), so the standard torch-hub files
``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` load into it. They are read from an explicit path or from
``$TORCH_HOME/hub/checkpoints/`` (torch's hub directory, default ``~/.cache/torch/hub/checkpoints/``); when absent,
:class:`LPIPSWeightsError` says which file to put where. There is never a silent substitute: a random trunk
(``random_trunk=True``, for tests) must be asked for explicitly. The head files are located through the installed
``lpips`` distribution (``pip install --no-deps lpips==0.1.4``) without importing it (its import pulls torchvision).

Example::

    dist = LPIPS("vgg")(img_a, img_b)      # img_* [B, 3, H, W] in [-1, 1]  ->  [B]
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from ..errors import TridentError, first_line

__all__ = ["LPIPS", "LPIPSWeightsError", "LPIPSTrunkMissingError", "TRUNK_FILES", "load_lpips",
           "trunk_weights_path", "heads_path"]

# Standard torch-hub file names of the ImageNet trunks (torchvision's model zoo).
TRUNK_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
TRUNK_URLS = {"vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
              "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"}

# Trunk layer stacks, in torchvision's ``features`` order: ints are 3x3 (VGG) conv widths followed by ReLU, "M" is
# a 2x2 max-pool. Taps are the ``features`` indices *after which* a feature map is read (the ReLU outputs).
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_VGG16_TAPS = (3, 8, 15, 22, 29)                       # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_ALEX_TAPS = (1, 4, 7, 9, 11)                          # relu1 .. relu5
CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class LPIPSWeightsError(TridentError):
    """Trunk or head weights are missing or do not fit; the message names the file and where to put it.
    (A ValueError so that commands report it as one ``error:`` line.)"""


class LPIPSTrunkMissingError(LPIPSWeightsError):
    """The ImageNet trunk file is not there (the one case the MSE-only mode or a random trunk can work around)."""


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU()]
            c_in = int(v)
    return nn.Sequential(*layers)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2))


class Trunk(nn.Module):
    """ImageNet feature extractor; ``state_dict`` keys are torchvision's (``features.<i>.weight|bias``)."""

    def __init__(self, net: str):
        super().__init__()
        self.features = _vgg16_features() if net == "vgg" else _alexnet_features()
        self.taps = _VGG16_TAPS if net == "vgg" else _ALEX_TAPS

    def forward(self, x: Tensor) -> list[Tensor]:
        out: list[Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
                if len(out) == len(self.taps):
                    break
        return out


class _Head(nn.Module):
    """1x1 conv without bias; the Dropout slot keeps the ``model.1.weight`` key of the lpips files."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(p=0.0), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's hub directory; default ``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def trunk_weights_path(net: str, path: str | os.PathLike | None = None) -> Path:
    """The trunk file to read: ``path`` if given, else the hub cache file. Raises if it does not exist."""
    _check_net(net)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise LPIPSTrunkMissingError(
                f"LPIPS trunk weights not found: {p} (expected torchvision's {TRUNK_FILES[net]})")
        return p
    p = hub_checkpoint_dir() / TRUNK_FILES[net]
    if not p.is_file():
        raise LPIPSTrunkMissingError(
            f"LPIPS needs ImageNet {'VGG16' if net == 'vgg' else 'AlexNet'} weights: put {TRUNK_FILES[net]} "
            f"(from {TRUNK_URLS[net]}) into {p.parent}/ or pass its path")
    return p


def heads_path(net: str, version: str = "v0.1") -> Path:
    """Locate ``lpips/weights/<version>/<net>.pth`` of the installed lpips package without importing it."""
    _check_net(net)
    rel = Path("weights") / version / f"{net}.pth"
    candidates: list[Path] = []
    spec = importlib.util.find_spec("lpips")          # top-level package: finds, does not execute, lpips/__init__
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / rel for loc in spec.submodule_search_locations]
    try:
        candidates.append(Path(importlib.metadata.distribution("lpips").locate_file(Path("lpips") / rel)))
    except importlib.metadata.PackageNotFoundError:
        pass
    for p in candidates:
        if p.is_file():
            return p
    raise LPIPSWeightsError(f"LPIPS head weights lpips/{rel.as_posix()} not found: install them with "
                            "`pip install --no-deps lpips==0.1.4` (requirements-nodeps.txt) or pass heads=PATH")


def _check_net(net: str) -> None:
    if net not in TRUNK_FILES:
        raise ValueError(f"unknown LPIPS network {net!r} (choose vgg or alex)")


def _load_state(path: Path) -> dict[str, Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or non-tensor file: one clear line
        raise LPIPSWeightsError(f"cannot read weights file {path}: {type(e).__name__}: {first_line(e)}") from None
    if not isinstance(sd, dict):
        raise LPIPSWeightsError(f"weights file {path} does not hold a state dict")
    return sd


class LPIPS(nn.Module):
    """LPIPS v0.1 distance between images in [-1, 1]; ``forward(x, y) -> [B]``. Frozen, but differentiable in x, y.

    Args:
        net: ``"vgg"`` (VGG16 trunk; the usual loss choice) or ``"alex"`` (AlexNet; the usual metric choice).
        trunk_weights: torchvision state-dict file of the trunk; default: the torch-hub cache file.
        heads: lpips head file; default: the one shipped in the installed ``lpips`` package.
        random_trunk: use a seeded random trunk instead of ImageNet weights (tests only; not a perceptual metric).
        seed: seed of the random trunk.
    """

    def __init__(self, net: str = "vgg", trunk_weights: str | os.PathLike | None = None,
                 heads: str | os.PathLike | None = None, random_trunk: bool = False, seed: int = 0):
        super().__init__()
        _check_net(net)
        self.net = net
        self.random_trunk = bool(random_trunk)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)                        # deterministic random trunk (and default init)
            self.trunk = Trunk(net)
        self.lins = nn.ModuleList(_Head(c) for c in CHANNELS[net])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

        if not random_trunk:
            self.load_trunk(trunk_weights_path(net, trunk_weights))
        self.load_heads(Path(heads) if heads is not None else heads_path(net))
        self.requires_grad_(False)
        self.eval()

    def load_trunk(self, path: Path) -> None:
        sd = _load_state(path)
        feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        try:
            self.trunk.features.load_state_dict(feats, strict=True)
        except RuntimeError as e:
            raise LPIPSWeightsError(f"{path} is not a torchvision {TRUNK_FILES[self.net]} file: "
                                    f"{first_line(e)}") from None

    def load_heads(self, path: Path) -> None:
        if not path.is_file():
            raise LPIPSWeightsError(f"LPIPS head weights not found: {path}")
        sd = _load_state(path)
        try:
            self.lins.load_state_dict({k[len("lin"):]: v for k, v in sd.items() if k.startswith("lin")}, strict=True)
        except RuntimeError as e:
            raise LPIPSWeightsError(f"{path} is not an lpips {self.net} head file: {first_line(e)}") from None

    def train(self, mode: bool = True) -> "LPIPS":
        return super().train(False)                        # always eval: heads' dropout is off, no batch stats

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x, y [B, 3, H, W] in [-1, 1] -> distances [B] (y may be [1, 3, H, W] and is broadcast)."""
        if x.ndim != 4 or x.shape[1] != 3 or y.ndim != 4 or y.shape[1:] != x.shape[1:]:
            raise ValueError(f"LPIPS expects two [B, 3, H, W] images of one size, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        y = y.expand(x.shape[0], -1, -1, -1) if y.shape[0] == 1 else y
        fx = self.trunk((x - self.shift) / self.scale)     # 5 x [B, C_l, H_l, W_l]
        fy = self.trunk((y - self.shift) / self.scale)
        total = x.new_zeros(x.shape[0])
        for lin, a, b in zip(self.lins, fx, fy):
            a = a / (a.square().sum(dim=1, keepdim=True).sqrt() + _EPS)
            b = b / (b.square().sum(dim=1, keepdim=True).sqrt() + _EPS)
            total = total + lin((a - b).square()).mean(dim=(1, 2, 3))   # [B]
        return total


def load_lpips(net: str = "vgg", device: str | torch.device = "cpu", allow_random: bool = False) -> LPIPS:
    """LPIPS with the hub-cache trunk on ``device``. Missing trunk weights raise :class:`LPIPSWeightsError`, unless
    ``allow_random`` asks for a seeded random trunk instead (with a warning: not a perceptual metric)."""
    try:
        return LPIPS(net).to(device)
    except LPIPSTrunkMissingError as e:
        if not allow_random:
            raise
        warnings.warn(f"{e}; using a random trunk (allow_random=True): distances are not perceptual", stacklevel=2)
        return LPIPS(net, random_trunk=True).to(device)
