"""Differentiable discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data", Sec. 2 and Appendix B), groups 'b' (pixel blitting), 'g' (general geometric) and 'c' (colour).

Each transformation is applied to each image independently with probability ``p`` and is differentiable, so the
generator is trained through it. Geometric transforms are composed into one 3x3 matrix per image and applied with
one bilinear ``grid_sample`` (reflection padding, as the paper pads by reflection); colour transforms are composed
into one 4x4 matrix per image. EG3D augments the super-resolved image and the upsampled raw image with the *same*
parameters: pass them concatenated on the channel axis (:meth:`AugmentPipe.forward` handles any multiple of 3
channels, each RGB triple getting the same colour transform).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _rot2d(theta: Tensor) -> Tensor:  # [N] -> [N, 3, 3]
    c, s = torch.cos(theta), torch.sin(theta)
    m = torch.eye(3, device=theta.device).repeat(theta.shape[0], 1, 1)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = torch.eye(3, device=sx.device).repeat(sx.shape[0], 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = torch.eye(3, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


class AugmentPipe(torch.nn.Module):
    """StyleGAN2-ADA-style augmentation with probability ``p`` (a buffer, adjusted by the training loop)."""

    def __init__(self, groups: str = "bgc", p: float = 0.0):
        super().__init__()
        self.groups = groups
        self.register_buffer("p", torch.tensor(float(p)))

    def _gate(self, n: int, gen: torch.Generator | None, device) -> Tensor:
        return (torch.rand(n, generator=gen).to(device) < self.p.to(device)).float()

    def _rand(self, n: int, gen, device) -> Tensor:
        return torch.rand(n, generator=gen).to(device)

    def _randn(self, n: int, gen, device) -> Tensor:
        return torch.randn(n, generator=gen).to(device)

    def geometric_matrix(self, n: int, h: int, w: int, gen: torch.Generator | None, device) -> Tensor:
        """Inverse-free composition of the 'b' and 'g' transforms in normalised [-1, 1] coordinates.  # [N, 3, 3]"""
        m = torch.eye(3, device=device).repeat(n, 1, 1)
        if "b" in self.groups:
            flip = 1 - 2 * torch.floor(self._rand(n, gen, device) * 2) * self._gate(n, gen, device)
            m = m @ _scale2d(flip, torch.ones_like(flip))                                  # x-flip
            quarter = torch.floor(self._rand(n, gen, device) * 4) * self._gate(n, gen, device)
            m = m @ _rot2d(quarter * (math.pi / 2))                                         # rotate 90 degrees
            g = self._gate(n, gen, device)
            tx = torch.round((self._rand(n, gen, device) * 2 - 1) * 0.125 * w) * (2 / w) * g
            ty = torch.round((self._rand(n, gen, device) * 2 - 1) * 0.125 * h) * (2 / h) * g
            m = m @ _translate2d(tx, ty)                                                    # integer translation
        if "g" in self.groups:
            s = torch.exp2(self._randn(n, gen, device) * 0.2 * self._gate(n, gen, device))
            m = m @ _scale2d(s, s)                                                          # isotropic scaling
            p_rot = 1 - torch.sqrt(torch.clamp(1 - self.p.to(device), min=0))               # split over 2 rotations
            rot_gate = lambda: (self._rand(n, gen, device) < p_rot).float()                 # noqa: E731
            m = m @ _rot2d((self._rand(n, gen, device) * 2 - 1) * math.pi * rot_gate())    # pre-rotation
            a = torch.exp2(self._randn(n, gen, device) * 0.2 * self._gate(n, gen, device))
            m = m @ _scale2d(a, 1 / a)                                                      # anisotropic scaling
            m = m @ _rot2d((self._rand(n, gen, device) * 2 - 1) * math.pi * rot_gate())    # post-rotation
            g = self._gate(n, gen, device)
            m = m @ _translate2d(self._randn(n, gen, device) * 0.125 * 2 * g, self._randn(n, gen, device) * 0.125 * 2 * g)
        return m

    def colour_matrix(self, n: int, gen: torch.Generator | None, device) -> Tensor:
        """Brightness, contrast, luma flip, hue rotation, saturation as one affine map of RGB.  # [N, 4, 4]"""
        c = torch.eye(4, device=device).repeat(n, 1, 1)
        if "c" not in self.groups:
            return c
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # luma axis
        lum = torch.outer(v, v)
        b = self._randn(n, gen, device) * 0.2 * self._gate(n, gen, device)
        t = torch.eye(4, device=device).repeat(n, 1, 1)
        t[:, :3, 3] = b[:, None]
        c = t @ c                                                                           # brightness
        k = torch.exp2(self._randn(n, gen, device) * 0.5 * self._gate(n, gen, device))
        c = torch.diag_embed(torch.stack([k, k, k, torch.ones_like(k)], 1)) @ c            # contrast
        flip = torch.floor(self._rand(n, gen, device) * 2) * self._gate(n, gen, device)
        c = (torch.eye(4, device=device) - 2 * lum * flip[:, None, None]) @ c                # luma flip
        theta = (self._rand(n, gen, device) * 2 - 1) * math.pi * self._gate(n, gen, device)
        c = _rot3d_about(v[:3], theta, device) @ c                                          # hue rotation
        sat = torch.exp2(self._randn(n, gen, device) * 1.0 * self._gate(n, gen, device))
        c = (lum + (torch.eye(4, device=device) - lum) * sat[:, None, None]) @ c            # saturation
        return c

    def forward(self, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """x [N, 3k, H, W] in about [-1, 1] -> augmented, same shape; identity when p == 0."""
        if float(self.p) <= 0:
            return x
        n, ch, h, w = x.shape
        if ch % 3:
            raise ValueError(f"augmentation expects a multiple of 3 channels, got {ch}")
        dev = x.device
        if "b" in self.groups or "g" in self.groups:
            m = self.geometric_matrix(n, h, w, gen, dev)  # maps output coords to input coords
            grid = F.affine_grid(m[:, :2, :], [n, ch, h, w], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if "c" in self.groups:
            cm = self.colour_matrix(n, gen, dev)  # [N, 4, 4]
            xs = x.reshape(n, ch // 3, 3, h * w)
            x = (torch.einsum("nij,nkjp->nkip", cm[:, :3, :3], xs) + cm[:, None, :3, 3:]).reshape(n, ch, h, w)
        return x


def _rot3d_about(axis: Tensor, theta: Tensor, device) -> Tensor:
    """Rotation by theta [N] about a unit axis (Rodrigues), as 4x4 homogeneous matrices.  # [N, 4, 4]"""
    x, y, z = axis.tolist()
    k = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], device=device, dtype=torch.float32)
    eye = torch.eye(3, device=device)
    r = eye + torch.sin(theta)[:, None, None] * k + (1 - torch.cos(theta))[:, None, None] * (k @ k)
    out = torch.eye(4, device=device).repeat(theta.shape[0], 1, 1)
    out[:, :3, :3] = r
    return out
