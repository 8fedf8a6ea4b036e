"""The (image, Instances) <-> tv_tensors bridge: masks, boxes and labels move together through any step."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms import v2

from instseg.ops.boxes import masks_to_boxes
from instseg.structures import Instances
from instseg.transforms import (
    JointPipeline,
    JointStep,
    build_train_transforms,
    drop_lost_objects,
    from_sample,
    to_sample,
)

# Examples per property test; raise it (e.g. INSTSEG_HYPOTHESIS_EXAMPLES=1000) for a thorough local run.
EXAMPLES = int(os.environ.get("INSTSEG_HYPOTHESIS_EXAMPLES", "60"))


def coded_pair(label_map: torch.Tensor) -> tuple[torch.Tensor, Instances]:
    """An image whose red channel is ``20 * (label + 1)`` inside each object (0 outside), and its Instances.

    ``label_map`` is [H, W] int with 0 for background and ``k`` for object ``k - 1``; object ``i`` has label ``i``.
    """
    n = int(label_map.max())
    masks = label_map[None] == torch.arange(1, n + 1)[:, None, None]
    keep = masks.flatten(1).any(1)
    masks = masks[keep]
    labels = torch.arange(n)[keep]
    image = torch.zeros((3, *label_map.shape), dtype=torch.uint8)
    image[0] = (label_map * 20).to(torch.uint8)
    image[1] = 77
    return image, Instances(tuple(label_map.shape), masks=masks, labels=labels)


@st.composite
def label_maps(draw: st.DrawFn) -> torch.Tensor:
    """Small label maps with up to 5 rectangles painted in order (later ones occlude earlier ones)."""
    h = draw(st.integers(4, 24))
    w = draw(st.integers(4, 24))
    label_map = torch.zeros((h, w), dtype=torch.int64)
    for k in range(1, draw(st.integers(0, 5)) + 1):
        y0 = draw(st.integers(0, h - 1))
        x0 = draw(st.integers(0, w - 1))
        y1 = draw(st.integers(y0 + 1, h))
        x1 = draw(st.integers(x0 + 1, w))
        label_map[y0:y1, x0:x1] = k
    return label_map


def check_consistent(image: torch.Tensor, target: Instances, original: Instances) -> None:
    """Invariants every pipeline output must satisfy."""
    assert image.dtype == torch.uint8 and image.dim() == 3 and image.shape[0] == 3
    assert target.image_size == tuple(image.shape[-2:])
    assert target.masks is not None and target.masks.dtype == torch.bool
    assert len(target.masks) == len(target.boxes) == len(target.labels)
    assert bool(target.masks.flatten(1).any(1).all()), "an empty mask survived"
    assert torch.equal(target.boxes, masks_to_boxes(target.masks))
    # Objects may disappear but never reorder or duplicate: labels are an ordered subsequence.
    remaining = iter(original.labels.tolist())
    assert all(label in remaining for label in target.labels.tolist())


@settings(max_examples=EXAMPLES, deadline=None)
@given(label_map=label_maps(), seed=st.integers(0, 2**16), vflip=st.booleans(), rot90=st.booleans())
def test_exact_steps_keep_pixels_and_objects_aligned(label_map, seed, vflip, rot90):
    # Flips and 90-degree rotations move pixels without resampling: each object's mask must cover exactly the
    # pixels that carry its code in the transformed image, and no object is lost.
    image, target = coded_pair(label_map)
    torch.manual_seed(seed)
    out_image, out = build_train_transforms(hflip=True, vflip=vflip, rot90=rot90)(image, target)
    check_consistent(out_image, out, target)
    assert len(out) == len(target)
    for mask, label in zip(out.masks, out.labels, strict=True):
        assert bool((out_image[0][mask] == 20 * (label + 1)).all())
    assert int((out_image[0] > 0).sum()) == int(out.masks.sum())


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    label_map=label_maps(),
    seed=st.integers(0, 2**16),
    min_size=st.sampled_from([None, 5, 9, (6, 12)]),
    lsj=st.sampled_from([None, 8, 16]),
    rot90=st.booleans(),
)
def test_resampling_steps_keep_boxes_tight_and_labels_aligned(label_map, seed, min_size, lsj, rot90):
    image, target = coded_pair(label_map)
    pipeline = build_train_transforms(
        min_size=min_size, max_size=20, vflip=True, rot90=rot90, lsj=lsj, color_jitter=0.2
    )
    torch.manual_seed(seed)
    out_image, out = pipeline(image, target)
    check_consistent(out_image, out, target)
    if lsj is not None:
        assert out.image_size == (lsj, lsj)
    # The random draws do not depend on the objects, so the same seed applies the same geometry to each object
    # alone: whatever else is dropped, object j's output mask (found by its label) must be that one.
    for j in range(len(target)):
        torch.manual_seed(seed)
        _, alone = pipeline(image, target[j])
        label = int(target.labels[j])
        found = out.labels == label
        assert int(found.sum()) == len(alone)
        if len(alone):
            assert torch.equal(out.masks[found], alone.masks)
            assert torch.equal(out.boxes[found], alone.boxes)


def test_horizontal_flip_moves_mask_and_box_together():
    masks = torch.zeros((2, 6, 10), dtype=torch.bool)
    masks[0, 1:3, 0:4] = True
    masks[1, 2:6, 7:10] = True
    target = Instances((6, 10), masks=masks, labels=torch.tensor([3, 1]))
    image = torch.randint(0, 256, (3, 6, 10), dtype=torch.uint8)
    out_image, out = JointPipeline([v2.RandomHorizontalFlip(p=1.0)])(image, target)
    assert torch.equal(out_image, image.flip(-1))
    assert torch.equal(out.masks, masks.flip(-1))
    assert torch.equal(out.boxes, masks_to_boxes(masks.flip(-1)))
    assert out.boxes.tolist() == [[6.0, 1.0, 10.0, 3.0], [0.0, 2.0, 3.0, 6.0]]
    assert out.labels.tolist() == [3, 1]


def test_box_only_targets_flip_with_exclusive_edges():
    target = Instances((6, 10), boxes=torch.tensor([[1.0, 2.0, 4.0, 5.0]]), labels=torch.tensor([2]))
    image = torch.zeros((3, 6, 10), dtype=torch.uint8)
    _, out = JointPipeline([v2.RandomHorizontalFlip(p=1.0)])(image, target)
    assert out.masks is None
    assert out.boxes.tolist() == [[6.0, 2.0, 9.0, 5.0]]


def test_crop_drops_objects_outside_and_keeps_labels_aligned():
    masks = torch.zeros((3, 20, 20), dtype=torch.bool)
    masks[0, 0:3, 0:3] = True  # top-left corner: cropped away
    masks[1, 8:12, 8:12] = True  # centre: kept whole
    masks[2, 12:19, 12:19] = True  # bottom-right: partly kept
    target = Instances((20, 20), masks=masks, labels=torch.tensor([0, 1, 2]))
    image = torch.zeros((3, 20, 20), dtype=torch.uint8)
    out_image, out = JointPipeline([v2.CenterCrop(10)])(image, target)  # keeps rows/cols 5..14
    assert out_image.shape == (3, 10, 10)
    assert out.labels.tolist() == [1, 2]
    assert out.boxes.tolist() == [[3.0, 3.0, 7.0, 7.0], [7.0, 7.0, 10.0, 10.0]]
    assert torch.equal(out.boxes, masks_to_boxes(out.masks))


def test_box_only_crop_clips_and_drops():
    boxes = torch.tensor([[0.0, 0.0, 3.0, 3.0], [8.0, 8.0, 18.0, 18.0]])
    target = Instances((20, 20), boxes=boxes, labels=torch.tensor([0, 1]))
    _, out = JointPipeline([v2.CenterCrop(10)])(torch.zeros((3, 20, 20), dtype=torch.uint8), target)
    assert out.labels.tolist() == [1]
    assert out.boxes.tolist() == [[3.0, 3.0, 10.0, 10.0]]


def test_unchecked_step_keeps_objects_and_scores_follow():
    masks = torch.zeros((2, 5, 5), dtype=torch.bool)
    masks[0, :2] = True
    target = Instances((5, 5), masks=masks, labels=torch.tensor([0, 1]), scores=torch.tensor([0.9, 0.4]))
    image = torch.zeros((3, 5, 5), dtype=torch.uint8)
    # An empty mask stays through a step that is not rechecked (colour) but goes at the next rechecked one.
    _, out = JointPipeline([JointStep(v2.ColorJitter(brightness=0.5), recheck=False)])(image, target)
    assert len(out) == 2
    _, out = JointPipeline([v2.RandomHorizontalFlip(p=1.0)])(image, target)
    assert out.labels.tolist() == [0] and out.scores.tolist() == pytest.approx([0.9])


def test_sample_round_trip_and_input_checks():
    masks = torch.zeros((1, 4, 6), dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    target = Instances((4, 6), masks=masks, labels=torch.tensor([4]))
    image = torch.randint(0, 256, (3, 4, 6), dtype=torch.uint8)
    back_image, back = from_sample(drop_lost_objects(to_sample(image, target)))
    assert torch.equal(back_image, image) and torch.equal(back.masks, masks)
    assert torch.equal(back.boxes, target.boxes) and back.labels.tolist() == [4]
    with pytest.raises(TypeError, match="uint8"):
        to_sample(image.float(), target)
    with pytest.raises(ValueError, match="differs from the image size"):
        to_sample(torch.zeros((3, 5, 6), dtype=torch.uint8), target)


def test_empty_pipeline_is_identity_and_empty_targets_pass():
    image = torch.zeros((3, 7, 9), dtype=torch.uint8)
    target = Instances.empty((7, 9))
    assert JointPipeline([])(image, target) == (image, target)
    torch.manual_seed(0)
    out_image, out = build_train_transforms(min_size=5, vflip=True, rot90=True, lsj=None, color_jitter=0.3)(
        image, target
    )
    assert len(out) == 0 and out.masks is not None and out.masks.shape[1:] == out_image.shape[1:]
