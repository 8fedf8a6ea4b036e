"""Data loaders with reproducible shuffling and augmentation, single-process or distributed.

Randomness depends only on ``(seed, rank, epoch, worker)``: the sampler reshuffles from ``seed + epoch``
(the trainer calls ``loader.sampler.set_epoch(epoch)`` before each epoch), and every worker reseeds torch,
numpy and ``random`` from the same four numbers when it starts, so a run resumed at epoch ``e`` sees the
same images in the same order with the same augmentations. With ``num_workers=0`` the transforms draw
from the main process's torch RNG instead, which the trainer seeds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from instseg.data.collate import collate_batch


class ShardSampler(Sampler[int]):
    """This rank's share of ``range(size)``: every ``num_replicas``-th index of an order reshuffled per epoch
    from ``seed + epoch`` (or kept in order), *without* padding.

    torch's ``DistributedSampler`` pads shards with repeated items so that every rank takes the same number
    of steps, which training needs but evaluation must not have (a repeated image would be scored twice);
    this sampler serves evaluation and single-process loading.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = False, seed: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        self.size = int(size)
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        return iter(order[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.num_replicas))


class WorkerSeeder:
    """``worker_init_fn`` that seeds torch, numpy and ``random`` in a worker from (seed, rank, epoch, worker id).

    A class rather than a closure so that it pickles when workers are spawned; it reads the epoch from the
    sampler, which the loader copies into each worker when an epoch's iteration starts.
    """

    def __init__(self, seed: int, rank: int, sampler: Sampler[int]) -> None:
        self.seed = int(seed)
        self.rank = int(rank)
        self.sampler = sampler

    def __call__(self, worker_id: int) -> None:
        epoch = int(getattr(self.sampler, "epoch", 0))
        state = np.random.SeedSequence([self.seed, self.rank, epoch, worker_id]).generate_state(2)
        worker_seed = int(state[0]) << 32 | int(state[1])
        torch.manual_seed(worker_seed)
        np.random.seed(int(state[0]))
        random.seed(worker_seed)


def _dist_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("build_loader(distributed=True) needs torch.distributed to be initialised first")
    return dist.get_rank(), dist.get_world_size()


def build_loader(
    dataset: Dataset[Any],
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    distributed: bool = False,
    drop_last: bool | None = None,
    collate_fn: Callable[[list[Any]], Any] = collate_batch,
) -> DataLoader[Any]:
    """A DataLoader over ``dataset`` giving ``collate_batch`` batches ``(ImageBatch, targets, metas)``.

    ``drop_last`` defaults to ``shuffle`` (training drops the last short batch; evaluation keeps every image).
    Distributed training (``distributed`` and ``drop_last``) uses torch's ``DistributedSampler`` (equal steps
    per rank); distributed evaluation uses an unpadded ``ShardSampler``. Either way the sampler is
    ``loader.sampler``, with ``set_epoch``. Memory is pinned only when CUDA is available.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if not isinstance(dataset, Sized):
        raise TypeError(f"build_loader needs a map-style data set with a length, got {type(dataset).__name__}")
    if drop_last is None:
        drop_last = shuffle
    rank, world = _dist_rank_world() if distributed else (0, 1)
    sampler: Sampler[int]
    if distributed and drop_last:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    else:
        sampler = ShardSampler(len(dataset), world, rank, shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed + rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=WorkerSeeder(seed, rank, sampler) if num_workers > 0 else None,
        generator=generator,
        persistent_workers=False,  # workers restart each epoch so they reseed from the new epoch
    )
