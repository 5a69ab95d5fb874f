"""What the UI asks a renderer for and what it gets back (the stylegan3 ``args -> render -> result`` boundary).

Requests are frozen and hashable: they are cache keys and change detectors. Results hold numpy arrays only, so
the UI side never touches torch. A :class:`Backend` is anything that renders a request for one branch; the real
one (:mod:`app.model_backend`) wraps ``core.model.Model``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.conventions import DEFAULT_FOV_DEG

if TYPE_CHECKING:
    from core.tools.edit.apply import Edit

BRANCH_LABELS = {
    "sr2d": "sr2d - EG3D tri-plane + 2D SR",
    "direct3d": "direct3d - Mimic3D direct 3D",
    "student": "student - distilled 2D CNN",
}


def branch_label(branch: str) -> str:
    return BRANCH_LABELS.get(branch, branch)


@dataclass(frozen=True)
class LatentSpec:
    """How to build ws: seed (+ interpolation towards a second seed) (+ style mixing), or a stored latent; then the
    edits (directions with strengths, non-zero ones only)."""

    seed: int = 0
    psi: float = 0.7
    cutoff: int = 14
    interp_seed: int = 1
    interp_t: float = 0.0                    # 0 = seed, 1 = interp_seed (lerp in w space)
    mix_seed: int | None = None              # style mixing: ws[:, lo:hi] from this seed
    mix_range: tuple[int, int] = (7, 14)
    cond_yaw: float = 0.0                    # conditioning camera of the mapping network (radians, from frontal)
    cond_pitch: float = 0.0
    stored: int | None = None                # id in a LatentBank (e.g. an inversion result); overrides the seeds
    edits: tuple["Edit", ...] = ()           # applied last, to whatever the latent is (core.tools.edit.apply)


@dataclass(frozen=True)
class CameraSpec:
    """Orbit camera: offsets from the frontal view (radians), distance from the world origin, EG3D FOV."""

    yaw: float = 0.0
    pitch: float = 0.0
    radius: float | None = None              # None: the model's average camera radius
    fov_deg: float = DEFAULT_FOV_DEG


@dataclass(frozen=True)
class RenderRequest:
    latent: LatentSpec = LatentSpec()
    camera: CameraSpec = CameraSpec()
    resolution: int | None = None            # neural rendering resolution; None: the model's
    depth_samples: int | None = None         # coarse samples per ray; None: the model's
    importance_samples: int | None = None
    deterministic: bool = True
    branches: tuple[str, ...] = ("sr2d",)
    precision: str = "fp32"                  # requested number type: fp32, bf16 or auto (core.precision)


@dataclass
class BranchResult:
    """One branch's render of one request. ``error`` set means the images are None."""

    branch: str
    request: RenderRequest
    image: np.ndarray | None = None          # [H, W, 3] uint8
    raw: np.ndarray | None = None            # [h, w, 3] uint8, the low-resolution neural rendering
    depth: np.ndarray | None = None          # [h, w] float32, distance along each ray
    depth_range: tuple[float, float] = (0.0, 1.0)
    focal: float = 4.2634                    # normalised focal length of the render camera (normals from depth)
    render_ms: float = 0.0
    precision: str = "fp32"                  # the number type it was computed in (``auto`` resolved)
    error: str | None = None
    generation: int = 0                      # which loaded model produced it (set by the AsyncRenderer)
    stamp: int = 0                           # which submitted request (set by the AsyncRenderer)


@dataclass(frozen=True)
class ModelInfo:
    """What the UI needs to know about a loaded model."""

    name: str
    branches: tuple[str, ...]
    num_ws: int
    img_resolution: int
    neural_resolution: int
    depth_samples: int
    importance_samples: int
    radius: float
    pivot: tuple[float, float, float]
    device: str
    has_density: bool = True                 # mesh extraction possible
    camera_range: tuple[float, float] = (0.6109, 0.2618)  # training views: +- yaw, +- pitch from frontal (radians)
    camera_range_source: str = "EG3D FFHQ range"          # where ``camera_range`` comes from (shown in the UI)
    auto_precision: str = "fp32"                          # what precision ``auto`` means on this device ...
    auto_precision_reason: str = "fp32"                   # ... and why (core.precision.resolve's line)


class Backend(Protocol):
    """Renders requests; called from the render thread only."""

    info: ModelInfo
    precision: str     # the number type the last render was computed in (fp32, bf16; ``auto`` resolved)

    def render(self, request: RenderRequest, branch: str) -> BranchResult: ...

    def memory(self) -> str: ...


@dataclass
class LatentBank:
    """Latents that did not come from a seed (inversion results), shared between UI and render thread."""

    _items: dict[int, np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 1

    def add(self, ws: np.ndarray) -> int:
        """Store ws [num_ws, w_dim] (or [1, num_ws, w_dim]); returns its id."""
        with self._lock:
            key = self._next
            self._next += 1
            self._items[key] = np.asarray(ws, np.float32).reshape(-1, ws.shape[-1])
            return key

    def get(self, key: int) -> np.ndarray:
        with self._lock:
            if key not in self._items:
                raise KeyError(f"no stored latent {key}")
            return self._items[key]


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """Robust near/far for the colour map: 1st and 99th percentiles (the background sits at the far end)."""
    lo, hi = np.percentile(depth, [1.0, 99.0])
    return float(lo), float(max(hi, lo + 1e-6))
