"""``Instances``: construction checks, indexing, concatenation, resizing and COCO export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.structures.instances import Instances
from instseg.structures.masks import rle_to_mask


def _three() -> Instances:
    masks = torch.zeros((3, 6, 8), dtype=torch.bool)
    masks[0, 1:3, 2:5] = True  # 6 px, box [2, 1, 5, 3]
    masks[1, 0:6, 0:1] = True  # 6 px column
    masks[2, 4, 7] = True  # 1 px at the bottom-right corner
    return Instances((6, 8), labels=torch.tensor([0, 2, 1]), masks=masks, scores=torch.tensor([0.5, 0.9, 0.1]))


def test_boxes_derived_from_masks_with_exclusive_edge() -> None:
    inst = _three()
    assert inst.boxes.dtype == torch.float32
    assert inst.boxes.tolist() == [[2, 1, 5, 3], [0, 0, 1, 6], [7, 4, 8, 5]]
    assert len(inst) == 3 and inst.image_size == (6, 8)


def test_defaults_and_shape_checks() -> None:
    inst = Instances((4, 4), boxes=torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    assert inst.labels.tolist() == [0] and inst.masks is None and inst.scores is None
    with pytest.raises(ValueError, match="masks must be"):
        Instances((4, 4), masks=torch.zeros((1, 4, 5), dtype=torch.bool))
    with pytest.raises(ValueError, match="labels has 2"):
        Instances((4, 4), boxes=torch.zeros((1, 4)), labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="scores has 2"):
        Instances((4, 4), boxes=torch.zeros((1, 4)), scores=torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="masks has 1"):
        Instances((4, 4), boxes=torch.zeros((2, 4)), masks=torch.zeros((1, 4, 4), dtype=torch.bool))


def test_indexing_by_int_slice_bool_and_list() -> None:
    inst = _three()
    assert inst[1].labels.tolist() == [2] and len(inst[1]) == 1
    assert inst[-1].labels.tolist() == [1]
    assert inst[0:2].labels.tolist() == [0, 2]
    assert inst[torch.tensor([True, False, True])].labels.tolist() == [0, 1]
    assert inst[[2, 0]].labels.tolist() == [1, 0]
    picked = inst[torch.tensor([1])]
    assert (
        picked.masks is not None and picked.masks.shape == (1, 6, 8) and picked.scores.tolist() == [pytest.approx(0.9)]
    )
    with pytest.raises(IndexError):
        inst[3]


def test_empty_cat_and_sort() -> None:
    empty = Instances.empty((6, 8))
    assert len(empty) == 0 and empty.masks is not None and empty.masks.shape == (0, 6, 8)
    assert Instances.empty((6, 8), with_masks=False).masks is None
    both = Instances.cat([_three(), _three()[0:1]])
    assert len(both) == 4 and both.labels.tolist() == [0, 2, 1, 0]
    assert both.sort_by_score().scores.tolist() == pytest.approx([0.9, 0.5, 0.5, 0.1])
    with pytest.raises(ValueError, match="image sizes differ"):
        Instances.cat([_three(), Instances.empty((5, 5), with_scores=True)])
    with pytest.raises(ValueError, match="must have"):
        Instances.cat([_three(), Instances.empty((6, 8))])  # no scores
    with pytest.raises(ValueError, match="at least one"):
        Instances.cat([])


def test_to_and_repr() -> None:
    inst = _three().to("cpu")
    assert inst.device.type == "cpu"
    assert "n=3" in repr(inst) and "masks" in repr(inst)


def test_resized_scales_masks_and_boxes() -> None:
    inst = _three()
    assert inst.resized((6, 8)) is inst
    big = inst.resized((12, 16))
    assert big.image_size == (12, 16) and big.masks is not None
    assert big.boxes.tolist()[0] == [4, 2, 10, 6]
    assert int(big.masks[0].sum()) == 24
    boxes_only = Instances((10, 10), boxes=torch.tensor([[1.0, 2.0, 3.0, 4.0]])).resized((20, 5))
    assert boxes_only.boxes.tolist() == [[0.5, 4.0, 1.5, 8.0]]
    assert len(Instances.empty((4, 4)).resized((8, 8))) == 0


def test_to_coco_round_trips_masks_and_categories() -> None:
    inst = _three()
    results = inst.to_coco(image_id=12, category_ids=[1, 5, 9])
    assert [r["category_id"] for r in results] == [1, 9, 5]
    assert results[0]["bbox"] == [2.0, 1.0, 3.0, 2.0] and results[0]["area"] == 6
    assert results[1]["score"] == pytest.approx(0.9) and results[0]["image_id"] == 12
    for r, m in zip(results, inst.masks.numpy(), strict=True):  # type: ignore[union-attr]
        assert np.array_equal(rle_to_mask(r["segmentation"]), m)
    assert inst.to_coco(1)[1]["category_id"] == 3  # label + 1 without a mapping
    with pytest.raises(ValueError, match="no category id"):
        inst.to_coco(1, category_ids=[1])
    assert Instances.empty((3, 3)).to_coco(1) == []
