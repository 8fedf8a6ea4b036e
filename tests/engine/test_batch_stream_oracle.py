"""The batch stream and its sampler against a brute-force reference: every epoch, rank count, batch size and
resume position gives the batches that a plain re-implementation of the documented order gives."""

from __future__ import annotations

import itertools

import pytest
import torch

from instseg.engine.batch_stream import BatchStream, EpochSampler


def _reference_epoch(size: int, seed: int, epoch: int, rank: int, world: int) -> list[int]:
    """The documented order: a permutation seeded by seed + epoch, padded by repeating its start, strided by rank."""
    base = torch.randperm(size, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    order = list(base)
    while len(order) % world:
        order.append(base[(len(order) - size) % size])
    return order[rank::world]


def _reference_batches(size: int, batch: int, seed: int, rank: int, world: int, count: int) -> list[list[int]]:
    """``count`` batches of one rank, epoch after epoch, the last incomplete batch dropped (unless it is the only)."""
    out: list[list[int]] = []
    for epoch in itertools.count():
        indices = _reference_epoch(size, seed, epoch, rank, world)
        chunks = [indices[i : i + batch] for i in range(0, len(indices), batch)]
        full = [c for c in chunks if len(c) == batch]
        for chunk in full or chunks[:1]:
            out.append(chunk)
            if len(out) == count:
                return out
    raise AssertionError("unreachable")


def _ids(batch: list[int]) -> list[int]:
    return list(batch)


@pytest.mark.parametrize(("size", "world"), [(7, 1), (7, 2), (5, 3), (2, 4), (9, 2)])
def test_sampler_shards_cover_each_epoch_with_equal_counts(size: int, world: int) -> None:
    for epoch in range(3):
        shards = []
        for rank in range(world):
            sampler = EpochSampler(size, shuffle=True, seed=4, rank=rank, world_size=world)
            sampler.set_epoch(epoch)
            assert list(sampler) == _reference_epoch(size, 4, epoch, rank, world)
            assert len(sampler) == len(list(sampler)) == -(-size // world)
            shards.append(list(sampler))
        assert set().union(*map(set, shards)) == set(range(size))
        unpadded = [EpochSampler(size, True, 4, rank, world, pad=False) for rank in range(world)]
        for s in unpadded:
            s.set_epoch(epoch)
        flat = sorted(i for s in unpadded for i in s)
        assert flat == list(range(size))  # evaluation: every image exactly once over all ranks


@pytest.mark.parametrize(("size", "batch", "world"), [(7, 2, 1), (7, 2, 2), (10, 3, 2), (3, 4, 1), (5, 2, 3)])
def test_stream_matches_the_reference_and_resumes_at_every_position(size: int, batch: int, world: int) -> None:
    count = 9
    for rank in range(world):
        stream = BatchStream(list(range(size)), batch, _ids, seed=2, rank=rank, world_size=world)  # type: ignore[arg-type]
        per_rank = -(-size // world)
        assert stream.batches_per_epoch == (per_rank // batch if per_rank >= batch else 1)
        got = [next(stream) for _ in range(count)]
        assert got == _reference_batches(size, batch, 2, rank, world, count)
        for cut in range(count):
            head = BatchStream(list(range(size)), batch, _ids, seed=2, rank=rank, world_size=world)  # type: ignore[arg-type]
            first = [next(head) for _ in range(cut)]
            state = head.state_dict()
            assert state["batches_done"] <= head.batches_per_epoch
            tail = BatchStream(list(range(size)), batch, _ids, seed=2, rank=rank, world_size=world)  # type: ignore[arg-type]
            tail.load_state_dict(state)
            assert first + [next(tail) for _ in range(count - cut)] == got, (rank, cut)


def test_defaults_are_one_shuffled_rank() -> None:
    stream = BatchStream(list(range(6)), 2, _ids, seed=1)  # type: ignore[arg-type]
    epoch = [i for _ in range(3) for i in next(stream)]
    assert sorted(epoch) == list(range(6)) and epoch != list(range(6))
    assert stream.state_dict() == {"epoch": 0, "batches_done": 3}
    next(stream)
    assert stream.state_dict() == {"epoch": 1, "batches_done": 1}
    ordered = BatchStream(list(range(6)), 4, _ids, shuffle=False)  # type: ignore[arg-type]
    assert [next(ordered) for _ in range(2)] == [[0, 1, 2, 3], [0, 1, 2, 3]]  # the short batch [4, 5] is dropped
