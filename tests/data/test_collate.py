"""collate_batch: padded raw-pixel ImageBatch, sizes, and pass-through targets/metas."""

from __future__ import annotations

import pytest
import torch

from instseg.data.collate import collate_batch
from instseg.structures import Instances


def item(h: int, w: int, image_id: int, original: tuple[int, int] | None = None):
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    meta = {"image_id": image_id, "file_name": f"{image_id}.png", "original_size": original or (h, w)}
    return image, Instances.empty((h, w)), meta


def test_pads_to_multiple_of_32_with_raw_float_pixels():
    batch = [item(40, 50, 1, original=(80, 100)), item(33, 70, 2)]
    images, targets, metas = collate_batch(batch)
    assert images.tensor.shape == (2, 3, 64, 96)
    assert images.tensor.dtype == torch.float32
    assert images.image_sizes == [(40, 50), (33, 70)]
    assert images.original_sizes == [(80, 100), (33, 70)]
    assert torch.equal(images.tensor[0, :, :40, :50], batch[0][0].float())
    assert float(images.tensor[0, :, 40:].abs().sum()) == 0.0 and float(images.tensor[1, :, :, 70:].abs().sum()) == 0.0
    assert float(images.tensor.max()) > 1.0  # 0..255 scale, not 0..1
    assert targets == [batch[0][1], batch[1][1]]
    assert [m["image_id"] for m in metas] == [1, 2]


def test_size_divisibility_one_and_exact_multiples():
    images, _, _ = collate_batch([item(32, 64, 1)])
    assert images.tensor.shape == (1, 3, 32, 64)
    images, _, _ = collate_batch([item(5, 7, 1)], size_divisibility=1)
    assert images.tensor.shape == (1, 3, 5, 7)


def test_bad_batches_are_refused():
    with pytest.raises(ValueError, match="empty batch"):
        collate_batch([])
    image, _, meta = item(10, 10, 7)
    with pytest.raises(ValueError, match="image 7: target size"):
        collate_batch([(image, Instances.empty((9, 10)), meta)])
    with pytest.raises(TypeError, match="batch item 0"):
        collate_batch([(image, meta)])  # type: ignore[list-item]
