"""``ImageBatch``: padding to a common, divisible shape and the sizes needed to undo it."""

from __future__ import annotations

import pytest
import torch

from instseg.structures.image_batch import ImageBatch


def test_from_tensors_pads_bottom_right_to_divisible_shape() -> None:
    a, b = torch.ones(3, 20, 30), torch.full((3, 33, 10), 2.0)
    batch = ImageBatch.from_tensors([a, b], size_divisibility=32, pad_value=-1.0)
    assert batch.tensor.shape == (2, 3, 64, 32)
    assert batch.image_sizes == [(20, 30), (33, 10)] and batch.original_sizes == [(20, 30), (33, 10)]
    assert torch.equal(batch.unpadded(0), a) and torch.equal(batch.unpadded(1), b)
    assert float(batch.tensor[0, 0, 20, 0]) == -1.0 and float(batch.tensor[1, 0, 0, 10]) == -1.0
    assert len(batch) == 2 and batch.device.type == "cpu"


def test_original_sizes_kept_and_no_divisibility() -> None:
    batch = ImageBatch.from_tensors([torch.zeros(1, 5, 7)], size_divisibility=1, original_sizes=[(50, 70)])
    assert batch.tensor.shape == (1, 1, 5, 7) and batch.original_sizes == [(50, 70)]
    assert batch.to("cpu").image_sizes == [(5, 7)]


def test_from_tensors_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ImageBatch.from_tensors([])
    with pytest.raises(ValueError, match="same number of channels"):
        ImageBatch.from_tensors([torch.zeros(3, 4, 4), torch.zeros(1, 4, 4)])


def test_pad_to() -> None:
    out = ImageBatch.pad_to(torch.ones(2, 3, 4), 5, 6, value=7.0)
    assert out.shape == (2, 5, 6) and float(out[0, 4, 5]) == 7.0 and float(out[0, 2, 3]) == 1.0
