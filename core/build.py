"""Generators and discriminators from their configs, with weights copied in by name (strict: every tensor, right
shapes). The file formats that hold the configs and weights are in :mod:`core.files`."""
from __future__ import annotations

import torch

from .config import DiscriminatorConfig, GeneratorConfig
from .discriminator import DualDiscriminator
from .errors import CheckpointError
from .limits import check_discriminator_config, check_generator_config
from .mimic3d import Mimic3DGenerator
from .triplane import TriPlaneGenerator

__all__ = ["build_generator", "build_discriminator", "load_state_strict"]

# Buffers that the reference stores but Trident derives (deterministic FIR filters) or does not keep.
_DERIVED_SUFFIXES = ("resample_filter",)


def _is_derived(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in _DERIVED_SUFFIXES


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy tensors by name; every tensor the module needs must be present with the right shape."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and k != "dataset_label_std"]
    unexpected = [k for k in state if k not in own and not _is_derived(k)]
    if missing:
        raise CheckpointError(f"{what}: {len(missing)} tensor(s) missing from the file, e.g. {missing[0]}")
    if unexpected:
        raise CheckpointError(f"{what}: {len(unexpected)} unexpected tensor(s) in the file, e.g. {unexpected[0]}")
    for k, v in own.items():
        if k not in state:
            continue
        src = state[k]
        if not isinstance(src, torch.Tensor):
            raise CheckpointError(f"{what}: {k} is not a tensor")
        if src.shape != v.shape and src.numel() == v.numel() and src.squeeze().shape == v.squeeze().shape:
            src = src.reshape(v.shape)  # e.g. Mimic3D's [1, C, 4, 4] const vs EG3D's [C, 4, 4]
        if src.shape != v.shape:
            raise CheckpointError(f"{what}: {k} has shape {tuple(src.shape)} in the file, model expects {tuple(v.shape)}")
        if (src.is_floating_point() or src.is_complex()) and not bool(torch.isfinite(src).all()):
            raise CheckpointError(f"{what}: {k} holds NaN or infinite values (a damaged or diverged model)")
        with torch.no_grad():
            v.copy_(src.to(v.dtype))


def build_generator(cfg: GeneratorConfig, state: dict[str, torch.Tensor] | None = None,
                    device: str | torch.device = "cpu") -> TriPlaneGenerator:
    """The generator a config describes (:class:`Mimic3DGenerator` when ``cfg.aware3d_res`` is set), in eval mode
    without gradients, with ``state`` copied in by name (strict: every tensor, right shapes)."""
    check_generator_config(cfg)
    try:
        G = Mimic3DGenerator(cfg) if cfg.aware3d_res else TriPlaneGenerator(cfg)
    except (ValueError, AssertionError) as e:  # inconsistent settings, e.g. SR output vs img_resolution
        raise CheckpointError(f"unsupported generator settings: {e}") from None
    except MemoryError:
        raise CheckpointError("not enough memory to build the generator (see TRIDENT_MAX_MODEL_MB)") from None
    if state is not None:
        load_state_strict(G, state, "G")
    return G.eval().requires_grad_(False).to(device)


def build_discriminator(cfg: DiscriminatorConfig, state: dict[str, torch.Tensor] | None = None,
                        device: str | torch.device = "cpu") -> DualDiscriminator:
    check_discriminator_config(cfg)
    try:
        D = DualDiscriminator(cfg)
    except (ValueError, AssertionError) as e:
        raise CheckpointError(f"unsupported discriminator settings: {e}") from None
    except MemoryError:
        raise CheckpointError("not enough memory to build the discriminator (see TRIDENT_MAX_MODEL_MB)") from None
    if state is not None:
        load_state_strict(D, state, "D")
    return D.eval().requires_grad_(False).to(device)
