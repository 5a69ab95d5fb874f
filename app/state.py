"""All UI state in one place (immediate mode: widgets read and mutate it); ``request()`` turns it into a render request.

Angles are radians internally (the widgets show degrees). Zero for resolution/sample counts means "the model's own".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.conventions import DEFAULT_FOV_DEG, DEFAULT_RADIUS
from core.defaults import DETERMINISTIC, PRECISION, TRUNCATION_CUTOFF, TRUNCATION_PSI

from .orbit import reduced_resolution
from .requests import CameraSpec, LatentSpec, ModelInfo, RenderRequest

VIEWS = ("rgb", "depth", "raw", "normals")
VIEW_LABELS = {"rgb": "RGB", "depth": "Depth", "raw": "Raw (neural)", "normals": "Normals"}
MOVE_SETTLE_S = 0.3  # the camera counts as moving for this long after its last change


@dataclass
class LatentState:
    seed: int = 0
    psi: float = TRUNCATION_PSI
    cutoff: int = TRUNCATION_CUTOFF
    interp_seed: int = 1
    interp_t: float = 0.0
    interp_animate: bool = False
    interp_speed: float = 0.1        # loops per second
    interp_phase: float = 0.0
    mix_enabled: bool = False
    mix_seed: int = 1000
    mix_lo: int = 7
    mix_hi: int = 14
    cond_yaw: float = 0.0
    cond_pitch: float = 0.0
    stored: int | None = None        # LatentBank id of an inversion result
    use_stored: bool = False
    edits: tuple = ()                # core.tools.edit.apply.Edit, in the order they were first moved (Edit panel)

    def spec(self) -> LatentSpec:
        return LatentSpec(
            seed=self.seed, psi=round(self.psi, 4), cutoff=self.cutoff, interp_seed=self.interp_seed,
            interp_t=round(self.interp_t, 4), mix_seed=self.mix_seed if self.mix_enabled else None,
            mix_range=(self.mix_lo, self.mix_hi), cond_yaw=round(self.cond_yaw, 5),
            cond_pitch=round(self.cond_pitch, 5),
            stored=self.stored if self.use_stored else None,
            edits=tuple(e for e in self.edits if e.strength != 0))


@dataclass
class CameraState:
    yaw: float = 0.0
    pitch: float = 0.0
    radius: float = DEFAULT_RADIUS
    fov_deg: float = DEFAULT_FOV_DEG
    auto_orbit: bool = False         # swing the yaw inside the training camera range
    orbit_speed: float = 0.5         # radians per second (the swing's fastest turn)
    orbit_phase: float = 0.0

    def spec(self) -> CameraSpec:
        return CameraSpec(yaw=round(self.yaw, 5), pitch=round(self.pitch, 5), radius=round(self.radius, 5),
                          fov_deg=round(self.fov_deg, 4))

    def reset(self, radius: float) -> None:
        self.yaw = self.pitch = 0.0
        self.radius = radius
        self.fov_deg = DEFAULT_FOV_DEG


VIEWER_PRECISIONS = ("fp32", "bf16", "auto")  # core.precision's, less fp16 (EG3D's half blocks; CUDA, samples only)


@dataclass
class RenderState:
    resolution: int = 0              # neural rendering resolution; 0 = the model's
    depth_samples: int = 0
    importance_samples: int = 0
    deterministic: bool = DETERMINISTIC
    view: str = "rgb"
    adaptive: bool = True            # lower resolution while the camera moves
    lockstep: bool = False           # panes show a request only once every branch has rendered it
    precision: str = PRECISION       # fp32 (exact), bf16 or auto (core.precision; app.model_backend)


@dataclass
class ViewerState:
    latent: LatentState = field(default_factory=LatentState)
    camera: CameraState = field(default_factory=CameraState)
    render: RenderState = field(default_factory=RenderState)
    moving_until: float = 0.0        # time (s) until which the view counts as moving

    def mark_moving(self, now: float) -> None:
        self.moving_until = now + MOVE_SETTLE_S

    def moving(self, now: float) -> bool:
        return now < self.moving_until or self.camera.auto_orbit or self.latent.interp_animate

    def request(self, info: ModelInfo, now: float) -> RenderRequest:
        r = self.render
        full = r.resolution or info.neural_resolution
        res = reduced_resolution(full) if r.adaptive and self.moving(now) else full
        return RenderRequest(
            latent=self.latent.spec(), camera=self.camera.spec(),
            resolution=None if res == info.neural_resolution else res,
            depth_samples=r.depth_samples or None, importance_samples=r.importance_samples or None,
            deterministic=r.deterministic, branches=info.branches, precision=r.precision)
