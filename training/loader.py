"""Batches for training: an endless, shuffled, sharded loader over an EG3D dataset
(:class:`core.files.dataset.ImageDataset`), images converted to the generator's range on the device."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from core.files.dataset import DatasetError


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless shuffled indices for one rank (the idea of EG3D's ``InfiniteSampler``).

    Epoch ``e`` is the permutation drawn from ``numpy.random.default_rng([seed, e])``, truncated to a multiple of
    ``world_size``; rank ``r`` takes every ``world_size``-th index starting at ``r``, so ranks see disjoint shards
    of the same order and stay in step. The stream depends only on (size, seed, rank, world_size).
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if world_size < 1 or not 0 <= rank < world_size:
            raise DatasetError(f"bad rank {rank} for world size {world_size}")
        if seed < 0:
            raise DatasetError(f"loader seed must be >= 0, got {seed}")
        if size < world_size:
            raise DatasetError(f"{size} items cannot be shared by {world_size} ranks")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size

    def __iter__(self) -> Iterator[int]:
        usable = self.size - self.size % self.world_size
        epoch = 0
        while True:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            for i in perm[self.rank:usable:self.world_size]:
                yield int(i)
            epoch += 1


class _Failure:
    """A worker's one-line error, carried to the main process instead of a multi-line traceback."""

    def __init__(self, message: str):
        self.message = message


class _Guarded(Dataset):
    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        try:
            return self.dataset[idx]
        except DatasetError as e:
            return _Failure(str(e))


def _collate(items: list) -> Any:
    for it in items:
        if isinstance(it, _Failure):
            return it
    return torch.utils.data.default_collate(items)


class Loader:
    """Endless batches ``(float images [B, 3, H, W] in [-1, 1], labels [B, 25])``.

    The uint8 images travel from the workers and are converted on ``device`` (``x / 127.5 - 1``, EG3D's
    training loop). Iterating again restarts the stream from its beginning.
    """

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device):
        self.loader = loader
        self.device = device

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in self.loader:
            if isinstance(batch, _Failure):
                raise DatasetError(batch.message)
            images, labels = batch  # [B, 3, H, W] uint8, [B, 25]
            images = images.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
            yield images, labels.to(self.device, non_blocking=True)


def make_loader(dataset: Dataset, batch_size: int, workers: int = 0, seed: int = 0, rank: int = 0,
                world_size: int = 1, device: str | torch.device = "cpu", prefetch: int = 2) -> Loader:
    """An endless, shuffled, sharded loader over ``dataset`` (full batches only).

    ``workers`` DataLoader processes decode images (a zip is reopened in each); the batch stream is the same
    for any number of workers. Ranks ``0..world_size-1`` with the same seed get disjoint shards.
    """
    if batch_size < 1:
        raise DatasetError(f"batch size must be positive, got {batch_size}")
    device = torch.device(device)
    sampler = InfiniteSampler(len(dataset), seed, rank, world_size)
    batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last=True)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs = {"prefetch_factor": prefetch, "persistent_workers": False}
    dl = torch.utils.data.DataLoader(_Guarded(dataset), batch_sampler=batches, num_workers=workers,
                                     collate_fn=_collate, pin_memory=device.type == "cuda", **kwargs)
    return Loader(dl, device)
