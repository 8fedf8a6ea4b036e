"""Crop-first sampling: windows cut before decoding give the same objects as cutting full-size masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from instseg.data.coco import CocoDataset
from instseg.data.crop_sampling import RandomCropDataset

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample"


@pytest.fixture(scope="module")
def sample_set() -> CocoDataset:
    return CocoDataset(SAMPLE / "annotations" / "instances_sample.json")


def test_crops_at_scale_one_equal_cropped_full_masks(sample_set: CocoDataset) -> None:
    torch.manual_seed(0)
    crops = RandomCropDataset(sample_set, size=96)
    for index in range(len(sample_set)):
        full_image, full_target, meta = sample_set[index]
        state = torch.get_rng_state()
        image, target, crop_meta = crops[index]
        torch.set_rng_state(state)  # replay the window choice: scale draw, then top, then left
        torch.rand(())
        h, w = full_target.image_size
        win_h, win_w = min(96, h), min(96, w)
        top = int(torch.randint(h - win_h + 1, (1,)))
        left = int(torch.randint(w - win_w + 1, (1,)))
        expected = full_target.masks[:, top : top + win_h, left : left + win_w]  # type: ignore[index]
        expected = expected[expected.flatten(1).any(1)]
        assert image.shape == (3, 96, 96) and image.dtype == torch.uint8
        assert torch.equal(image[:, :win_h, :win_w], full_image[:, top : top + win_h, left : left + win_w])
        assert crop_meta["image_id"] == meta["image_id"]
        ours = {m[:win_h, :win_w].numpy().tobytes() for m in target.masks}  # type: ignore[union-attr]
        theirs = {m.numpy().tobytes() for m in expected}
        assert ours == theirs


def test_scaled_crops_keep_masks_aligned_and_boxes_tight(sample_set: CocoDataset) -> None:
    torch.manual_seed(1)
    crops = RandomCropDataset(sample_set, size=64, scale_range=(0.5, 2.0))
    for index in range(len(sample_set)):
        image, target, _ = crops[index]
        assert image.shape == (3, 64, 64)
        assert target.masks is not None and target.masks.shape[1:] == (64, 64)
        assert bool(target.masks.flatten(1).any(1).all()), "objects cut away must be dropped"
        assert torch.all(target.boxes[:, 2:] <= 64) and torch.all(target.labels == 0)


def test_bad_arguments_are_refused(sample_set: CocoDataset) -> None:
    with pytest.raises(ValueError, match="crop size"):
        RandomCropDataset(sample_set, size=0)
    with pytest.raises(ValueError, match="scale_range"):
        RandomCropDataset(sample_set, size=32, scale_range=(2.0, 1.0))
