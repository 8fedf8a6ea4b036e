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
