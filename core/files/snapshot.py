"""The in-memory form of a model file: configs and state dicts as plain data (no modules, no code)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import DiscriminatorConfig, GeneratorConfig


@dataclass
class Snapshot:
    """Everything in a model file, as plain data."""

    generator: GeneratorConfig
    G_ema: dict[str, torch.Tensor]
    G: dict[str, torch.Tensor] | None = None
    discriminator: DiscriminatorConfig | None = None
    D: dict[str, torch.Tensor] | None = None
    patch_discriminator: DiscriminatorConfig | None = None  # Mimic3D's unconditional patch discriminator
    D_patch: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other branches, training state, metadata
