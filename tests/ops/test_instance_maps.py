"""Label map <-> Instances helpers, per-object normalised distance, batch targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.ops.boxes import masks_to_boxes
from instseg.ops.instance_maps import (
    batch_class_maps,
    batch_distance_maps,
    batch_label_maps,
    instances_to_label_map,
    label_map_boxes,
    label_map_to_instances,
    label_map_to_masks,
    label_means,
    normalized_distance_map,
    scored_instances,
)
from instseg.structures import Instances


def _label_map() -> torch.Tensor:
    lm = torch.zeros(20, 30, dtype=torch.int64)
    lm[2:6, 3:9] = 4
    lm[10:18, 20:29] = 7
    lm[0, 0] = 2
    return lm


def test_label_map_to_masks_ids_and_masks() -> None:
    lm = _label_map()
    ids, masks = label_map_to_masks(lm)
    assert ids.tolist() == [2, 4, 7]
    assert masks.shape == (3, 20, 30) and masks.dtype == torch.bool
    for k, i in enumerate(ids.tolist()):
        assert torch.equal(masks[k], lm == i)


def test_label_map_boxes_match_masks_to_boxes() -> None:
    lm = _label_map()
    ids, boxes = label_map_boxes(lm)
    _, masks = label_map_to_masks(lm)
    assert ids.tolist() == [2, 4, 7]
    assert torch.equal(boxes, masks_to_boxes(masks))
    assert boxes[1].tolist() == [3.0, 2.0, 9.0, 6.0]  # exclusive right/bottom edge


def test_label_map_to_instances_and_back_round_trip() -> None:
    lm = _label_map()
    inst = label_map_to_instances(lm, scores=torch.tensor([0.1, 0.2, 0.3]))
    assert len(inst) == 3 and inst.image_size == (20, 30)
    assert inst.scores is not None and inst.scores.tolist() == pytest.approx([0.1, 0.2, 0.3])
    back = instances_to_label_map(inst)
    assert torch.equal(back > 0, lm > 0)
    assert torch.equal(label_map_to_masks(back)[1], inst.masks)


def test_empty_label_map() -> None:
    lm = torch.zeros(5, 6, dtype=torch.int32)
    ids, masks = label_map_to_masks(lm)
    assert ids.numel() == 0 and masks.shape == (0, 5, 6)
    inst = label_map_to_instances(lm)
    assert len(inst) == 0 and inst.boxes.shape == (0, 4)
    assert instances_to_label_map(Instances.empty((5, 6))).shape == (5, 6)


def test_bad_label_maps_raise() -> None:
    with pytest.raises(ValueError, match=r"label map must be \[H, W\]"):
        label_map_to_masks(torch.zeros(2, 3, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="integers"):
        label_map_to_masks(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="negative"):
        label_map_to_masks(torch.full((3, 4), -1))
    with pytest.raises(ValueError, match="masks"):
        instances_to_label_map(Instances((4, 4), boxes=torch.zeros(1, 4)))


def test_overlaps_go_to_the_smallest_object() -> None:
    masks = torch.zeros(3, 10, 10, dtype=torch.bool)
    masks[0] = True  # large, underneath
    masks[1, 2:5, 2:5] = True  # small, on top of it
    masks[2, 1:8, 1:8] = True  # medium, also covering the small one
    lm = instances_to_label_map(masks)
    assert (lm[2:5, 2:5] == 2).all()
    assert lm[1, 1] == 3 and lm[0, 0] == 1 and lm[9, 9] == 1


def test_label_means_per_object() -> None:
    lm = _label_map()
    values = torch.zeros(20, 30)
    values[lm == 4] = 0.5
    values[lm == 7] = 1.0
    means = label_means(lm, values)
    assert means.shape == (8,)
    assert means[4] == pytest.approx(0.5) and means[7] == pytest.approx(1.0) and means[3] == 0
    multi = label_means(lm, torch.stack([values, 1 - values]))
    assert multi.shape == (8, 2) and multi[7].tolist() == pytest.approx([1.0, 0.0])


def test_scored_instances_scores_and_classes() -> None:
    lm = _label_map()
    score = (lm == 7).float() * 0.9 + (lm == 4).float() * 0.6
    class_prob = torch.stack([(lm != 7).float(), (lm == 7).float()])  # object 7 is class 1
    inst = scored_instances(lm, score, class_prob)
    assert inst.scores is not None
    assert inst.scores.tolist() == pytest.approx([0.0, 0.6, 0.9])
    assert inst.labels.tolist() == [0, 0, 1]


def test_normalized_distance_peaks_at_one_in_every_object() -> None:
    yy, xx = np.mgrid[:60, :80]
    lm = np.zeros((60, 80), np.int64)
    lm[(yy - 30) ** 2 + (xx - 20) ** 2 < 15**2] = 1  # big disc
    lm[(yy - 30) ** 2 + (xx - 60) ** 2 < 4**2] = 3  # small disc (id 2 unused)
    dist = normalized_distance_map(lm)
    assert dist.dtype == np.float32 and dist.shape == lm.shape
    assert dist[lm == 0].max() == 0
    for i in (1, 3):
        assert dist[lm == i].max() == pytest.approx(1.0)
        assert dist[lm == i].min() > 0
    assert dist[30, 20] == pytest.approx(1.0) and dist[30, 60] == pytest.approx(1.0)


def test_normalized_distance_separates_touching_objects() -> None:
    lm = np.zeros((20, 40), np.int64)
    lm[5:15, 5:20] = 1
    lm[5:15, 20:35] = 2  # touching along column 19/20
    dist = normalized_distance_map(lm)
    assert dist[10, 19] < 0.3 and dist[10, 20] < 0.3  # a valley where they meet
    assert dist[10, 12] == pytest.approx(1.0)


def test_batch_targets_on_a_padded_batch() -> None:
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 1:4, 1:4] = True
    masks[1, 5:9, 6:11] = True
    targets = [
        Instances((10, 12), masks=masks, labels=torch.tensor([2, 1])),
        Instances.empty((8, 8)),
    ]
    maps, valid = batch_label_maps(targets, (16, 16))
    assert maps.shape == valid.shape == (2, 16, 16)
    assert valid[0, :10, :12].all() and not valid[0, 10:].any() and not valid[1, 8:].any()
    assert maps[0, 2, 2] == 1 and maps[0, 6, 7] == 2 and maps[1].max() == 0
    classes = batch_class_maps(maps, valid, targets)
    assert classes[0, 2, 2] == 2 and classes[0, 6, 7] == 1 and classes[0, 0, 0] == -100 and (classes[1] == -100).all()
    dist = batch_distance_maps(maps)
    assert dist.shape == (2, 16, 16) and dist[0].max() == pytest.approx(1.0) and dist[1].max() == 0
    with pytest.raises(ValueError, match="larger"):
        batch_label_maps(targets, (8, 8))


def test_compact_instances_of_a_label_map_equal_the_full_ones() -> None:
    rng = np.random.default_rng(3)
    label_map = torch.from_numpy(rng.integers(0, 6, size=(19, 27)))
    label_map[label_map == 4] = 0  # an id with no pixels
    scores = torch.rand(19, 27)
    full = scored_instances(label_map, scores)
    compact = scored_instances(label_map, scores, compact=True)
    assert compact.is_compact and not full.is_compact
    assert torch.equal(compact.boxes, full.boxes) and torch.equal(compact.scores, full.scores)  # type: ignore[arg-type]
    assert torch.equal(compact.masks, full.masks)  # type: ignore[arg-type]
    assert compact.to_coco(1) == full.to_coco(1)
