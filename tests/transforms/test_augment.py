"""Augmentation pipelines: resize rule, multi-scale, large-scale jitter, rotations, colour, reproducibility."""

from __future__ import annotations

import pytest
import torch

from instseg.ops.boxes import masks_to_boxes
from instseg.ops.resize import resized_shape
from instseg.structures import Instances
from instseg.transforms import (
    JointPipeline,
    LargeScaleJitter,
    RandomRot90,
    ResizeShortSide,
    build_eval_transforms,
    build_train_transforms,
    short_side_shape,
)


def make_pair(h: int = 30, w: int = 40) -> tuple[torch.Tensor, Instances]:
    masks = torch.zeros((3, h, w), dtype=torch.bool)
    masks[0, 2:10, 3:15] = True
    masks[1, 12:28, 20:38] = True
    masks[2, 0:4, 36:40] = True
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return image, Instances((h, w), masks=masks, labels=torch.tensor([2, 0, 1]))


@pytest.mark.parametrize("hw", [(30, 40), (40, 30), (1, 1000), (480, 640), (333, 517), (100, 100)])
@pytest.mark.parametrize("sizes", [(None, None), (32, None), (None, 50), (800, 1333), (64, 70)])
def test_resize_rule_matches_the_model_rule(hw, sizes):
    assert short_side_shape(*hw, *sizes) == resized_shape(*hw, *sizes)


def test_eval_resize_follows_rule_and_is_deterministic():
    image, target = make_pair()
    out_image, out = build_eval_transforms(min_size=24, max_size=30)(image, target)
    assert tuple(out_image.shape[-2:]) == short_side_shape(30, 40, 24, 30) == (22, 30)
    assert out.image_size == (22, 30)
    again_image, again = build_eval_transforms(min_size=24, max_size=30)(image, target)
    assert torch.equal(out_image, again_image) and torch.equal(out.masks, again.masks)
    assert torch.equal(out.boxes, masks_to_boxes(out.masks))
    assert build_eval_transforms()(image, target) == (image, target)
    with pytest.raises(ValueError, match="one integer"):
        build_eval_transforms(min_size=(20, 30))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "block", "min_size", "max_size"),
    [
        ((30, 40), (3, 17, 4, 19), 7, None),
        ((30, 40), (3, 17, 4, 19), 13, None),
        ((30, 40), (12, 27, 22, 37), 29, None),
        ((30, 40), (12, 27, 22, 37), 31, None),
        ((30, 40), (3, 17, 4, 19), 45, None),
        ((30, 40), (12, 27, 22, 37), 64, None),
        ((4, 21), (0, 2, 18, 20), None, 20),  # a thin object near the edge, scale 0.95
    ],
)
def test_resized_masks_stay_on_their_pixels(shape, block, min_size, max_size):
    # One block coded 200 in the image; after resizing (antialiased bilinear image, centred-nearest masks) a
    # mask pixel's centre lies in the object, so at least ~half of its image value is the object's, and a
    # pixel whose value is purely the object's has its centre in the object, so it is in the mask.
    y0, y1, x0, x1 = block
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    image = (mask * 200).to(torch.uint8).expand(3, -1, -1).contiguous()
    pipeline = build_eval_transforms(min_size=min_size, max_size=max_size)
    out_image, out = pipeline(image, Instances(shape, masks=mask[None]))
    values = out_image[0].int()
    assert len(out) == 1
    assert int(values[out.masks[0]].min()) > 60, "a mask pixel where the image shows mostly background"
    assert not bool((~out.masks[0] & (values >= 190)).any()), "a pure object pixel outside the mask"


def test_multi_scale_draws_every_size():
    image, target = make_pair()
    pipeline = build_train_transforms(min_size=(10, 20, 30), max_size=1000, hflip=False)
    torch.manual_seed(0)
    shorts = {min(pipeline(image, target)[0].shape[-2:]) for _ in range(40)}
    assert shorts == {10, 20, 30}


def test_large_scale_jitter_gives_fixed_square_and_pads_masks_with_zero():
    image, target = make_pair()
    torch.manual_seed(1)
    sizes = set()
    for _ in range(30):
        out_image, out = JointPipeline([LargeScaleJitter(32, (0.1, 2.0), pad_value=114)])(image, target)
        assert out_image.shape == (3, 32, 32)
        assert out.masks is not None and out.masks.shape[1:] == (32, 32)
        assert torch.equal(out.boxes, masks_to_boxes(out.masks))
        sizes.add(len(out))
    assert len(sizes) > 1  # some scales/crops lose objects, others keep them all


def test_large_scale_jitter_at_scale_one_is_resize_plus_bottom_right_pad():
    image, target = make_pair()
    out_image, out = JointPipeline([LargeScaleJitter(20, (1.0, 1.0), pad_value=7)])(image, target)
    # long side 40 -> 20: image 15 x 20 at the top-left, padding below.
    assert bool((out_image[:, 15:, :] == 7).all())
    assert not bool(out.masks[:, 15:, :].any())
    expected = short_side_shape(30, 40, None, 20)
    assert expected == (15, 20)
    assert out.labels.tolist() == [2, 0, 1]


def test_large_scale_jitter_never_makes_empty_images():
    image = torch.zeros((3, 3, 50), dtype=torch.uint8)
    out_image, out = JointPipeline([LargeScaleJitter(8, (0.1, 0.1))])(image, Instances.empty((3, 50)))
    assert out_image.shape == (3, 8, 8) and len(out) == 0


def test_rot90_covers_all_angles_and_matches_torch_rot90():
    image, target = make_pair()
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out_image, out = JointPipeline([RandomRot90()])(image, target)
        k = next(k for k in range(4) if torch.equal(torch.rot90(image, k, dims=(-2, -1)), out_image))
        assert torch.equal(out.masks, torch.rot90(target.masks, k, dims=(-2, -1)))
        assert torch.equal(out.boxes, masks_to_boxes(out.masks))
        seen.add(k)
    assert seen == {0, 1, 2, 3}


def test_rot90_rotates_box_only_targets():
    target = Instances((6, 10), boxes=torch.tensor([[1.0, 2.0, 4.0, 5.0]]), labels=torch.tensor([0]))
    masks = torch.zeros((1, 6, 10), dtype=torch.bool)
    masks[0, 2:5, 1:4] = True
    with_masks = Instances((6, 10), masks=masks, labels=torch.tensor([0]))
    image = torch.zeros((3, 6, 10), dtype=torch.uint8)
    for seed in range(8):
        torch.manual_seed(seed)
        _, boxed = JointPipeline([RandomRot90()])(image, target)
        torch.manual_seed(seed)
        _, masked = JointPipeline([RandomRot90()])(image, with_masks)
        assert boxed.image_size == masked.image_size
        assert torch.allclose(boxed.boxes, masked.boxes)


def test_color_jitter_changes_pixels_not_geometry():
    image, target = make_pair()
    torch.manual_seed(0)
    out_image, out = build_train_transforms(hflip=False, color_jitter=0.5)(image, target)
    assert out_image.dtype == torch.uint8 and out_image.shape == image.shape
    assert not torch.equal(out_image, image)
    assert torch.equal(out.masks, target.masks) and torch.equal(out.labels, target.labels)


def test_same_seed_same_augmentation():
    image, target = make_pair()
    pipeline = build_train_transforms(min_size=(16, 24), max_size=40, vflip=True, rot90=True, color_jitter=0.3)
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        outputs.append([pipeline(image, target) for _ in range(5)])
    for (ia, ta), (ib, tb) in zip(*outputs, strict=True):
        assert torch.equal(ia, ib) and torch.equal(ta.masks, tb.masks) and torch.equal(ta.labels, tb.labels)


def test_pipeline_composition_and_bad_arguments():
    pipeline = build_train_transforms(min_size=16, max_size=32, vflip=True, rot90=True, color_jitter=0.2)
    assert len(pipeline) == 5
    assert "ResizeShortSide" in repr(pipeline) and "(no recheck)" in repr(pipeline)
    assert len(build_train_transforms(lsj=64, min_size=16)) == 2  # lsj replaces the resize
    assert len(build_train_transforms(hflip=False)) == 0
    with pytest.raises(ValueError, match="min_size"):
        ResizeShortSide(0)
    with pytest.raises(ValueError, match="min_size"):
        ResizeShortSide([])
    with pytest.raises(ValueError, match="max_size"):
        ResizeShortSide(10, -1)
    with pytest.raises(ValueError, match="scale_range"):
        LargeScaleJitter(64, (2.0, 1.0))
    with pytest.raises(ValueError, match="lsj size"):
        LargeScaleJitter(0)
    with pytest.raises(ValueError, match="color_jitter"):
        build_train_transforms(color_jitter=-0.1)
