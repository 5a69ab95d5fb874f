"""EG3D tri-plane generator (Chan et al. 2022, "Efficient Geometry-aware 3D GANs", Sec. 4, Fig. 2).

Notation: z latent [B, z_dim]; c camera label [B, 25] (16 cam2world + 9 normalised intrinsics, used only at
the network boundary); w / ws intermediate latents [B, num_ws, w_dim]; planes [B, 3, C, H, W].

Pipeline: mapping(z, c) -> ws -> StyleGAN2 backbone -> tri-planes -> volume rendering at the neural rendering
resolution -> 32-channel feature image (first 3 = raw RGB) -> 2D super-resolution (``sr2d`` branch).
Unlike EG3D, the generator keeps no mutable render state: resolution, samples and sampling mode are per-call
:class:`RenderOptions`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import rendering
from .config import GeneratorConfig
from .layers import FullyConnectedLayer, MappingNetwork, SynthesisNetwork, set_compute_dtype, set_half_dtype
from .superres import SuperResolution


@dataclass(frozen=True)
class RenderOptions:
    """Per-call rendering choices; ``None`` means the model's own default."""

    resolution: int | None = None                 # neural rendering resolution (rays per side)
    depth_resolution: int | None = None           # coarse samples per ray
    depth_resolution_importance: int | None = None
    deterministic: bool = True                    # linspace coarse depths + linspace inverse-CDF (no flicker)
    noise_mode: str = "const"                     # backbone noise: "const", "random" or "none"
    chunk: int | None = 8192                      # rays per render call over the whole batch; None: all at once
    plain: bool = False                           # use the literal reference operators (tests, benchmark)
    triplanes: str = "both"                       # direct3d only: "coarse", "detail" or "both" (features summed)


PER_SAMPLE_MIN_RESOLUTION = 128  # 64 px models (synth-tiny, the bundled model) run their batch at once


def _per_sample(ws: Tensor, img_resolution: int) -> bool:
    """On CPU without autograd, convolution stacks run one sample at a time: activations of one 512 px image
    already exceed the caches, and batching only adds memory traffic (measured ~25% slower per image at B=4).
    Small models are the other way round: the generator pass of synth-tiny's Dmain phase (B=4, 1 thread) is
    6-25% faster batched (per-call overhead dominates their small convolutions)."""
    return (ws.shape[0] > 1 and ws.device.type == "cpu" and not torch.is_grad_enabled()
            and img_resolution >= PER_SAMPLE_MIN_RESOLUTION)


class OSGDecoder(nn.Module):
    """Tri-plane feature decoder: mean over planes -> FC 32->64 -> softplus -> FC 64->1+F (EG3D Sec. 4.1)."""

    def __init__(self, n_features: int = 32, hidden: int = 64, output_dim: int = 32, lr_mul: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, hidden, lr_multiplier=lr_mul),
            nn.Softplus(),
            FullyConnectedLayer(hidden, 1 + output_dim, lr_multiplier=lr_mul),
        )
        self.compute_dtype: torch.dtype | None = None  # inference precision of the MLP (core.precision)

    def forward(self, plane_features: Tensor) -> tuple[Tensor, Tensor]:
        """[B, 3, N, C] -> rgb/features in (-0.001, 1.001) [B, N, F], raw density [B, N, 1] (always float32: the
        volume-rendering weights and the compositing are computed from them in float32)."""
        x = rendering.mean_over_planes(plane_features)
        b, n, c = x.shape
        if self.compute_dtype is not None:
            x = x.to(self.compute_dtype)
        x = self.net(x.reshape(b * n, c)).reshape(b, n, -1).float()
        rgb = torch.sigmoid(x[..., 1:])
        if torch.is_grad_enabled():
            rgb = rgb * (1 + 2 * 0.001) - 0.001  # Mip-NeRF's widened sigmoid
        else:
            rgb.mul_(1 + 2 * 0.001).sub_(0.001)  # same, in place
        return rgb, x[..., 0:1]


class Backbone(nn.Module):
    """StyleGAN2 mapping + synthesis whose 'image' is the stack of tri-planes (3 x C channels)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        kw = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=cfg.num_fp16_res,
                  conv_clamp=cfg.conv_clamp, const_batch_dim=cfg.const_batch_dim)
        if cfg.aware3d_res:  # Mimic3D: main blocks + the 3D-aware b3d{R} chain; forward returns tri-planes
            from .aware3d import Aware3DSynthesisNetwork

            self.synthesis = Aware3DSynthesisNetwork(cfg.w_dim, cfg.triplane_resolution, cfg.triplane_channels,
                                                     cfg.aware3d_res, cfg.detail_blocks, gain=cfg.aware3d_gain, **kw)
        else:
            self.synthesis = SynthesisNetwork(cfg.w_dim, cfg.triplane_resolution, 3 * cfg.triplane_channels, **kw)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws=self.num_ws,
                                      num_layers=cfg.mapping_layers)


class TriPlaneGenerator(nn.Module):
    """EG3D generator with the ``sr2d`` output branch."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.has_direct3d = False    # the direct3d branch (Mimic3D's detail tri-planes): core.mimic3d
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.backbone = Backbone(cfg)
        self.num_ws = self.backbone.num_ws
        self.superresolution = None
        if cfg.sr_kind is not None:
            self.superresolution = SuperResolution(cfg.sr_kind, in_channels=cfg.decoder_output_dim, w_dim=cfg.w_dim,
                                                   use_fp16=cfg.sr_num_fp16_res > 0,
                                                   antialias=cfg.rendering.sr_antialias, img_channels=cfg.img_channels)
            if self.superresolution.plan.output_resolution != cfg.img_resolution:
                raise ValueError(f"super-resolution {cfg.sr_kind} outputs {self.superresolution.plan.output_resolution}"
                                 f" px but img_resolution is {cfg.img_resolution}")
        self.decoder = OSGDecoder(cfg.triplane_channels, cfg.decoder_hidden, cfg.decoder_output_dim,
                                  cfg.rendering.decoder_lr_mul)
        self.register_buffer("dataset_label_std", torch.zeros([cfg.c_dim]))

    # -- precision ------------------------------------------------------------------------------------------
    def set_precision(self, precision: str) -> None:
        """Inference precision (``core.precision``): 'fp32' everywhere; 'fp16' in the blocks that EG3D runs in
        half precision; 'bf16' in every convolution stack and the decoder MLP."""
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be one of bf16, fp16, fp32, got {precision!r}")
        set_half_dtype(self, torch.float16 if precision == "fp16" else None)
        set_compute_dtype(self, torch.bfloat16 if precision == "bf16" else None)

    # -- latents --------------------------------------------------------------------------------------------
    def mapping(self, z: Tensor, c: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> Tensor:
        """z [B, z_dim], camera label c [B, 25] -> ws [B, num_ws, w_dim]."""
        r = self.cfg.rendering
        if r.c_gen_conditioning_zero:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * r.c_scale, truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def triplanes(self, ws: Tensor, noise_mode: str = "const", plain: bool = False) -> list[Tensor]:
        """ws -> [tri-planes [B, 3, C, H, W]] (a list: Mimic3D's generator adds its detail tri-planes)."""
        return [self.planes(ws, noise_mode=noise_mode, plain=plain)]

    def planes(self, ws: Tensor, noise_mode: str = "const", plain: bool = False) -> Tensor:
        """ws -> tri-planes [B, 3, C, H, W] (the 96-channel backbone image viewed as three planes)."""
        if _per_sample(ws, self.img_resolution):
            return torch.cat([self.planes(ws[i:i + 1], noise_mode, plain) for i in range(ws.shape[0])])
        img = self.backbone.synthesis(ws, noise_mode=noise_mode, fused=plain, plain=plain)
        return img.reshape(img.shape[0], 3, self.cfg.triplane_channels, img.shape[-2], img.shape[-1])

    # -- rendering ------------------------------------------------------------------------------------------
    def ray_config(self, opts: RenderOptions) -> rendering.RayConfig:
        r = self.cfg.rendering
        return rendering.RayConfig(
            ray_start=r.ray_start, ray_end=r.ray_end,
            depth_resolution=opts.depth_resolution or r.depth_resolution,
            depth_resolution_importance=(r.depth_resolution_importance if opts.depth_resolution_importance is None
                                         else opts.depth_resolution_importance),
            box_warp=r.box_warp, white_back=r.white_back, disparity_space_sampling=r.disparity_space_sampling,
            density_noise=r.density_noise, plane_convention=r.plane_convention,
            camera_radius=float(r.avg_camera_radius))

    def render_planes(self, planes: Tensor | list[Tensor], c: Tensor, opts: RenderOptions = RenderOptions(),
                      generator: torch.Generator | None = None,
                      windows: rendering.PatchWindows | None = None) -> dict[str, Tensor]:
        """Volume-render tri-planes from cameras c [B, 25] -> feature_image [B, F, R, R], image_depth [B, 1, R, R].

        ``planes`` may be a list of tri-planes (Mimic3D coarse + detail: features summed). With ``windows`` only
        each sample's R x R window (R = ``windows.size``) of its ``windows.full``-pixel image is rendered.
        """
        res = windows.size if windows is not None else (opts.resolution or self.cfg.neural_rendering_resolution)
        cam2world = c[:, :16].reshape(-1, 4, 4)
        intrinsics = c[:, 16:25].reshape(-1, 3, 3)
        origins, dirs = rendering.make_rays(cam2world, intrinsics, res,
                                            None if windows is None else (windows.full, windows.top, windows.left))
        feats, depth, acc = rendering.render_rays(planes, self.decoder, origins, dirs, self.ray_config(opts),
                                                  deterministic=opts.deterministic, chunk=opts.chunk,
                                                  generator=generator)
        b = c.shape[0]
        return {
            "feature_image": feats.permute(0, 2, 1).reshape(b, feats.shape[-1], res, res).contiguous(),
            "image_depth": depth.permute(0, 2, 1).reshape(b, 1, res, res),
            "weight_total": acc.permute(0, 2, 1).reshape(b, 1, res, res),
        }

    def super_resolve(self, feature_image: Tensor, ws: Tensor, plain: bool = False) -> tuple[Tensor, Tensor]:
        """feature image [B, F, r, r] -> (image [B, 3, R, R], image_raw [B, 3, r, r])."""
        rgb = feature_image[:, :3]
        if self.superresolution is None:
            return rgb, rgb
        if _per_sample(ws, self.img_resolution):
            parts = [self.super_resolve(feature_image[i:i + 1], ws[i:i + 1], plain) for i in range(ws.shape[0])]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        image, aliased_raw = self.superresolution.forward_with_alias(
            rgb, feature_image, ws, noise_mode=self.cfg.rendering.superresolution_noise_mode, fused=plain, plain=plain)
        return image, (aliased_raw if self.cfg.eg3d_raw_alias else rgb)

    def synthesis(self, ws: Tensor, c: Tensor, opts: RenderOptions = RenderOptions(), planes: Tensor | None = None,
                  generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """ws [B, num_ws, w_dim] + render camera c [B, 25] -> {'image', 'image_raw', 'image_depth', 'planes'}."""
        if planes is None:
            planes = self.planes(ws, noise_mode=opts.noise_mode, plain=opts.plain)
        out = self.render_planes(planes, c, opts, generator=generator)
        feature_image = out["feature_image"]
        image, image_raw = self.super_resolve(feature_image, ws, plain=opts.plain)
        return {
            "image": image,
            "image_raw": image_raw,
            "image_depth": out["image_depth"],
            "feature_image": feature_image,
            "planes": planes,
        }

    def forward(self, z: Tensor, c: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                opts: RenderOptions = RenderOptions(), update_emas: bool = False) -> dict[str, Tensor]:
        """Mapping then synthesis with the same camera for conditioning and rendering (as EG3D's forward)."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, c, opts)

    # -- density queries (mesh extraction, density regularisation) ------------------------------------------
    def sample_planes(self, planes: Tensor | list[Tensor], coords: Tensor) -> dict[str, Tensor]:
        """Decoder outputs at points coords [B, N, 3]: {'sigma': raw density [B, N, 1], 'rgb': [B, N, F]}."""
        r = self.cfg.rendering
        feats = rendering.sample_triplanes(planes, coords, r.box_warp, r.plane_convention)
        rgb, sigma = self.decoder(feats)
        return {"sigma": sigma, "rgb": rgb}

    def sample_mixed(self, coords: Tensor, ws: Tensor, noise_mode: str = "const", chunk: int | None = None
                     ) -> dict[str, Tensor]:
        """Density and features at arbitrary points for latents ws, with bounded memory when ``chunk`` is set."""
        planes = self.planes(ws, noise_mode=noise_mode)
        return self.query_density(planes, coords, chunk)

    def query_density(self, planes: Tensor | list[Tensor], coords: Tensor, chunk: int | None = None
                      ) -> dict[str, Tensor]:
        n = coords.shape[1]
        step = n if not chunk else chunk
        parts = [self.sample_planes(planes, coords[:, i:i + step]) for i in range(0, n, step)]
        return {k: torch.cat([p[k] for p in parts], 1) for k in parts[0]}

