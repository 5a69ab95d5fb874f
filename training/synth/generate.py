"""The synthetic multi-view dataset: procedural head-like objects, ray-traced from FFHQ-like cameras.

* Objects and cameras: :mod:`training.synth.objects` (unions of ellipsoids centred at the camera pivot
  (0, 0, 0.2), inside [-0.5, 0.5]^3; EG3D look-at cameras at radius 2.7, FOV 18.837, yaw/pitch spread like FFHQ).
* Rendering: :mod:`training.synth.render` (analytic ray-ellipsoid intersections on :func:`core.rendering.make_rays`
  rays, Lambert + ambient + headlight + rim + specular, gamma 2, ssaa antialiasing).
* Here: writing a dataset in the EG3D format (:func:`training.dataset_tool.write_dataset`), with optional ground-truth
  depth (float32 ``.npy`` [H, W] per image: Euclidean distance along the pixel-centre ray, the quantity the
  generator's depth image estimates; 0 where the ray misses) and each image's object centre in dataset.json
  ``centers``; and :func:`benchmark`.

The bytes of a dataset depend only on :class:`SynthConfig` (and the PNG compression level): image ``i`` is drawn
from ``numpy.random.default_rng([seed, i])`` and rendered with batch-independent arithmetic, so batch size and
worker count do not matter.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from core.cameras import fov_to_focal

from core.files.dataset import DatasetError
from ..dataset_tool import Item, encode_png, write_dataset
from .objects import (FOV_DEG, PITCH_LIMIT, PITCH_STD, PIVOT, RADIUS, YAW_LIMIT, YAW_STD, Objects, sample_scene,
                      sample_scenes)
from .render import render

__all__ = ["SynthConfig", "Objects", "benchmark", "generate_dataset", "iter_items", "render", "render_items",
           "sample_scene", "sample_scenes"]

SYNTH_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    """What determines the bytes of a synthetic dataset."""

    count: int
    resolution: int = 64
    seed: int = 0
    ssaa: int = 2
    white_back: bool = False
    depth: bool = False
    parts: tuple[str, ...] | None = None

    def meta(self) -> dict:
        return {"synth": {
            "version": SYNTH_VERSION, "count": self.count, "resolution": self.resolution, "seed": self.seed,
            "ssaa": self.ssaa, "white_back": self.white_back, "parts": list(self.parts) if self.parts else None,
            "camera": {"pivot": list(PIVOT), "radius": RADIUS, "fov_deg": FOV_DEG, "focal": fov_to_focal(FOV_DEG),
                       "yaw_std": YAW_STD, "yaw_limit_deg": round(math.degrees(YAW_LIMIT), 6), "pitch_std": PITCH_STD,
                       "pitch_limit_deg": round(math.degrees(PITCH_LIMIT), 6)},
            "depth_format": "float32 .npy [H, W]: Euclidean distance along the pixel-centre ray, 0 = background",
        }}


def render_items(cfg: SynthConfig, indices: Sequence[int], compress_level: int = 0) -> list[Item]:
    """Images ``indices`` of the dataset as encoded :class:`Item` s (PNG bytes, label, depth, centre)."""
    objects, camera = sample_scenes(cfg.seed, indices, cfg.parts)
    out = render(objects, camera, cfg.resolution, cfg.ssaa, cfg.white_back, cfg.depth)
    labels = camera.to_label().numpy()
    items = []
    for j in range(len(indices)):
        items.append(Item(label=labels[j], raw=encode_png(out["image"][j], compress_level),
                          depth=out["depth"][j] if cfg.depth else None, center=objects.center[j].astype(np.float32)))
    return items


def _worker_init() -> None:
    torch.set_num_threads(1)


def _render_chunk(job: tuple[SynthConfig, list[int], int]) -> list[Item]:
    cfg, indices, level = job
    return render_items(cfg, indices, level)


def iter_items(cfg: SynthConfig, batch: int = 32, workers: int = 0, compress_level: int = 0) -> Iterator[Item]:
    """All items in index order, rendered ``batch`` at a time in this process or in ``workers`` processes."""
    chunks = [list(range(i, min(i + batch, cfg.count))) for i in range(0, cfg.count, batch)]
    jobs = [(cfg, c, compress_level) for c in chunks]
    if workers <= 0:
        for job in jobs:
            yield from _render_chunk(job)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        for items in pool.imap(_render_chunk, jobs):
            yield from items


def generate_dataset(dest: str | os.PathLike, cfg: SynthConfig, *, batch: int = 32, workers: int = 0,
                     compress_level: int = 0, overwrite: bool = False, progress: bool = False) -> int:
    """Write the synthetic dataset ``cfg`` to ``dest`` (zip or folder; see :func:`training.dataset_tool.write_dataset`).
    The bytes depend only on ``cfg`` (and ``compress_level``), not on ``batch`` or ``workers``."""
    if cfg.count < 1:
        raise DatasetError(f"count must be positive, got {cfg.count}")
    if cfg.resolution < 4 or cfg.resolution & (cfg.resolution - 1):
        raise DatasetError(f"resolution must be a power of two >= 4, got {cfg.resolution}")
    if cfg.ssaa < 1 or cfg.ssaa > 8:
        raise DatasetError(f"ssaa must be in 1..8, got {cfg.ssaa}")
    if batch < 1:
        raise DatasetError(f"batch must be positive, got {batch}")
    if cfg.seed < 0:
        raise DatasetError(f"seed must be >= 0, got {cfg.seed}")
    return write_dataset(dest, iter_items(cfg, batch, workers, compress_level), total=cfg.count, overwrite=overwrite,
                         meta=cfg.meta(), compress_level=compress_level, progress=progress, desc="synth")


def benchmark(resolution: int = 64, count: int = 512, threads: int = 2, workers: int = 0, batch: int = 32,
              ssaa: int = 2, depth: bool = False, repeats: int = 3) -> dict:
    """Images per second of (a) rendering alone and (b) the whole pipeline into a zip (render + PNG + write),
    best of ``repeats``, with ``threads`` torch threads in this process (``workers`` > 0: that many processes,
    one thread each, for the pipeline)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cfg = SynthConfig(count=count, resolution=resolution, seed=0, ssaa=ssaa, depth=depth)
        render_items(cfg, list(range(min(batch, count))))  # warm-up
        render_s, total_s = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, count, batch):
                objects, camera = sample_scenes(0, range(i, min(i + batch, count)))
                render(objects, camera, resolution, ssaa, False, depth)
            render_s.append(time.perf_counter() - t0)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                generate_dataset(Path(tmp) / "bench.zip", cfg, batch=batch, workers=workers)
                total_s.append(time.perf_counter() - t0)
        return {"resolution": resolution, "count": count, "threads": threads, "workers": workers, "batch": batch,
                "ssaa": ssaa, "depth": depth, "render_images_per_s": count / min(render_s),
                "pipeline_images_per_s": count / min(total_s)}
    finally:
        torch.set_num_threads(old)
