"""A resumable, endless stream of training batches whose order depends only on (seed, epoch, rank).

Exact resume needs the data order to be reproducible and the position inside an epoch to be saved. torch's
``RandomSampler`` draws its order from a generator whose state is not part of any checkpoint, and
``DistributedSampler`` cannot start mid-epoch, so this module keeps a small sampler whose state is
``(epoch, batches_done)``: on resume the already-consumed batches are skipped by index, without loading them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from instseg.data.loader import WorkerSeeder


class EpochSampler(Sampler[int]):
    """Indices of one epoch for one rank: a permutation seeded by ``seed + epoch`` (or ``0..n-1``), sharded by rank.

    With ``pad=True`` (training) the order is padded by repeating its start so that every rank gets the same
    number of indices, as ``DistributedSampler`` does; with ``pad=False`` (evaluation) every image appears once
    over all ranks. ``set_epoch(epoch, skip)`` selects the epoch and drops its first ``skip`` indices.
    ``repeats`` (one whole count >= 1 per image) makes image ``i`` appear ``repeats[i]`` times in every epoch,
    shuffled among the rest: oversampling of rare images that keeps the order a function of (seed, epoch, rank).
    """

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        repeats: Sequence[int] | None = None,
    ) -> None:
        if size <= 0:
            raise ValueError("the data set is empty")
        if repeats is not None and (len(repeats) != size or any(int(r) != r or r < 1 for r in repeats)):
            raise ValueError(f"repeats must hold one whole count >= 1 for each of the {size} images")
        self.items = list(range(size)) if repeats is None else [i for i, r in enumerate(repeats) for _ in range(int(r))]
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch whose order to produce and how many of this rank's first indices to leave out."""
        self.epoch = epoch
        self.skip = skip

    def rank_indices(self) -> list[int]:
        """This rank's indices of the current epoch, before skipping."""
        order = list(self.items)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = [order[j] for j in torch.randperm(len(order), generator=generator).tolist()]
        if self.pad and len(order) % self.world_size:
            extra = self.world_size - len(order) % self.world_size
            order += (order * (extra // len(order) + 1))[:extra]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.rank_indices()[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.rank_indices()) - self.skip)


class BatchStream:
    """Endless iterator over training batches, epoch after epoch, with ``state_dict``/``load_state_dict``.

    Each epoch gets a fresh ``DataLoader``; workers are seeded from ``(seed, rank, epoch, worker)`` by the data
    package's ``WorkerSeeder``. With ``num_workers=0`` augmentation draws from the global RNGs, which the
    checkpoint saves, so a resumed run continues bit for bit; with workers, a run resumed mid-epoch re-seeds the
    workers (same data order, different augmentation draws for the rest of that epoch).
    Batches keep one size: an epoch drops the last incomplete batch unless a rank has fewer images than that.
    ``repeats`` is ``EpochSampler``'s (an epoch then holds ``sum(repeats)`` images).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        collate_fn: Callable,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        repeats: Sequence[int] | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.num_workers = num_workers
        self.seed = seed
        self.rank = rank
        size = len(dataset)  # type: ignore[arg-type]
        self.sampler = EpochSampler(size, shuffle, seed, rank, world_size, pad=True, repeats=repeats)
        per_rank = len(self.sampler.rank_indices())
        self.drop_last = per_rank >= batch_size
        self.batches_per_epoch = per_rank // batch_size if self.drop_last else 1
        self.epoch = 0
        self.batches_done = 0
        self._iterator: Iterator[Any] | None = None

    def state_dict(self) -> dict[str, int]:
        """Position: the epoch and how many of its batches were consumed."""
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved position (the next batch is the first one not yet consumed)."""
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])
        self._iterator = None

    def _start_epoch(self) -> None:
        if self.batches_done >= self.batches_per_epoch:
            self.epoch += 1
            self.batches_done = 0
        self.sampler.set_epoch(self.epoch, skip=self.batches_done * self.batch_size)
        # A private generator keeps DataLoader from drawing its base seed from the global RNG (exact resume).
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            drop_last=self.drop_last,
            generator=generator,
            pin_memory=torch.cuda.is_available(),
            worker_init_fn=WorkerSeeder(self.seed, self.rank, self.sampler) if self.num_workers > 0 else None,
        )
        self._iterator = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None or self.batches_done >= self.batches_per_epoch:
            self._start_epoch()
        assert self._iterator is not None
        batch = next(self._iterator)
        self.batches_done += 1
        return batch
