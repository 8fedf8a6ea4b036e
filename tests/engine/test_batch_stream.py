"""The resumable batch stream: order is a function of (seed, epoch, rank); a saved position resumes exactly."""

from __future__ import annotations

import pytest
import torch

from instseg.engine.batch_stream import BatchStream, EpochSampler


def _ids(batch: list[int]) -> list[int]:
    return list(batch)


def test_epoch_sampler_is_seeded_per_epoch_and_shards_with_padding() -> None:
    a, b = EpochSampler(10, shuffle=True, seed=5), EpochSampler(10, shuffle=True, seed=5)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    a.set_epoch(1)
    assert list(a) != list(b)
    shards = [EpochSampler(5, shuffle=False, rank=r, world_size=2) for r in range(2)]
    assert [list(s) for s in shards] == [[0, 2, 4], [1, 3, 0]]  # padded by repeating the start
    unpadded = [EpochSampler(5, shuffle=False, rank=r, world_size=2, pad=False) for r in range(2)]
    assert [list(s) for s in unpadded] == [[0, 2, 4], [1, 3]]
    a.set_epoch(1, skip=4)
    assert list(a) == a.rank_indices()[4:] and len(a) == 6
    with pytest.raises(ValueError, match="empty"):
        EpochSampler(0, shuffle=True)


def test_stream_resumes_mid_epoch_and_at_epoch_ends() -> None:
    data = list(range(7))
    full = BatchStream(data, batch_size=2, collate_fn=_ids, seed=3)  # type: ignore[arg-type]
    assert full.batches_per_epoch == 3  # 7 images -> 3 full batches, the last one dropped
    reference = [next(full) for _ in range(8)]
    assert reference[:3] != reference[3:6]  # epoch 1 is reshuffled
    for consumed in (2, 3, 5):
        first = BatchStream(data, batch_size=2, collate_fn=_ids, seed=3)  # type: ignore[arg-type]
        head = [next(first) for _ in range(consumed)]
        second = BatchStream(data, batch_size=2, collate_fn=_ids, seed=3)  # type: ignore[arg-type]
        second.load_state_dict(first.state_dict())
        tail = [next(second) for _ in range(8 - consumed)]
        assert head + tail == reference


def test_stream_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    stream = BatchStream(list(range(4)), batch_size=2, collate_fn=_ids, seed=1)  # type: ignore[arg-type]
    for _ in range(5):
        next(stream)
    assert torch.equal(torch.rand(1), expected)


def test_small_data_set_gives_one_short_batch_per_epoch() -> None:
    stream = BatchStream([10], batch_size=4, collate_fn=_ids)  # type: ignore[arg-type]
    assert [next(stream) for _ in range(2)] == [[10], [10]]


def test_without_repeats_the_order_is_the_seeded_permutation() -> None:
    sampler = EpochSampler(9, shuffle=True, seed=4)
    sampler.set_epoch(2)
    assert list(sampler) == torch.randperm(9, generator=torch.Generator().manual_seed(6)).tolist()


def test_repeats_put_each_image_that_many_times_into_every_epoch() -> None:
    repeats = [1, 3, 1, 2]
    sampler = EpochSampler(4, shuffle=True, seed=2, repeats=repeats)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    for order in (first, second):
        assert sorted(order) == [0, 1, 1, 1, 2, 3, 3]
    assert first != second  # reshuffled per epoch
    shards = [EpochSampler(4, shuffle=True, seed=2, rank=r, world_size=2, repeats=repeats) for r in range(2)]
    assert sorted(shards[0].rank_indices() + shards[1].rank_indices()) == sorted([*first, first[0]])  # padded to 8
    for bad in ([1, 2, 3], [1, 0, 1, 1], [1, 1.5, 1, 1]):
        with pytest.raises(ValueError, match="whole count >= 1 for each of the 4 images"):
            EpochSampler(4, shuffle=True, repeats=bad)  # type: ignore[arg-type]


def test_stream_with_repeats_counts_repeated_batches_and_resumes_exactly() -> None:
    data = list(range(5))
    repeats = [1, 1, 1, 1, 4]  # 8 draws per epoch
    full = BatchStream(data, batch_size=2, collate_fn=_ids, seed=7, repeats=repeats)  # type: ignore[arg-type]
    assert full.batches_per_epoch == 4
    reference = [next(full) for _ in range(10)]
    assert sum(batch.count(4) for batch in reference[:4]) == 4
    first = BatchStream(data, batch_size=2, collate_fn=_ids, seed=7, repeats=repeats)  # type: ignore[arg-type]
    head = [next(first) for _ in range(5)]
    second = BatchStream(data, batch_size=2, collate_fn=_ids, seed=7, repeats=repeats)  # type: ignore[arg-type]
    second.load_state_dict(first.state_dict())
    assert head + [next(second) for _ in range(5)] == reference
