"""The cascade of RoI box heads: labelling at each stage's IoU, refinement, the averaged scores, the losses."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from instseg.heads.cascade import CascadeRoIHeads, build_cascade_stages

NUM_CLASSES = 2


def _heads(**kwargs: float) -> CascadeRoIHeads:
    torch.manual_seed(0)
    return CascadeRoIHeads(
        MultiScaleRoIAlign(["p2"], 4, 2),
        build_cascade_stages(8, 4, 16, NUM_CLASSES),
        MultiScaleRoIAlign(["p2"], 4, 2),
        MaskRCNNHeads(8, [8], 1),
        MaskRCNNPredictor(8, 8, NUM_CLASSES + 1),
        batch_size_per_image=64,
        **kwargs,  # type: ignore[arg-type]
    )


def _features() -> OrderedDict[str, torch.Tensor]:
    return OrderedDict(p2=torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(1)))


def _target() -> dict[str, torch.Tensor]:
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 10:30, 10:30] = 1
    return {"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]), "labels": torch.tensor([2]), "masks": masks}


def test_each_stage_labels_regions_at_its_own_iou() -> None:
    heads = _heads()
    # IoU with the object [10, 10, 30, 30]: 0.81, 0.64 and 0.0
    proposals = [torch.tensor([[10.0, 10.0, 30.0, 26.2], [10.0, 10.0, 30.0, 22.8], [40.0, 40.0, 60.0, 60.0]])]
    expected = {0.5: [2, 2, 0], 0.6: [2, 2, 0], 0.7: [2, 0, 0]}
    for stage in heads.stages:
        rois, labels, matched = heads.sample(stage, proposals, [_target()])  # type: ignore[arg-type]
        by_box = {tuple(r.tolist()): int(lab) for r, lab in zip(rois[0], labels[0], strict=True)}
        got = [by_box[tuple(p.tolist())] for p in proposals[0]]
        assert got == expected[stage.iou_thresh], stage.iou_thresh
        assert by_box[(10.0, 10.0, 30.0, 30.0)] == 2  # the ground truth is always a positive region
        assert (matched[0] == 0).all()


def test_an_image_without_objects_gives_only_background_regions() -> None:
    heads = _heads()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 64, 64)}
    _, labels, _ = heads.sample(heads.stages[0], [torch.tensor([[0.0, 0.0, 8.0, 8.0]])], [empty])  # type: ignore[arg-type]
    assert labels[0].tolist() == [0]


def test_refine_moves_regions_by_the_deltas_and_clips_them() -> None:
    heads = _heads()
    stage = heads.stages[0]
    rois = [torch.tensor([[10.0, 10.0, 20.0, 20.0], [50.0, 50.0, 62.0, 62.0]])]
    same = heads.refine(stage, torch.zeros(2, 4), rois, [(64, 64)])  # type: ignore[arg-type]
    torch.testing.assert_close(same[0], rois[0])
    dx = torch.tensor([[1.0, 0.0, 0.0, 0.0], [10.0, 10.0, 0.0, 0.0]])  # weight 10: 0.1 box widths, then 1 width
    moved = heads.refine(stage, dx, rois, [(64, 64)])[0]  # type: ignore[arg-type]
    torch.testing.assert_close(moved[0], torch.tensor([11.0, 10.0, 21.0, 20.0]))
    assert moved[1].max() <= 64.0  # pushed out of the image, then clipped


def test_scores_are_the_mean_of_the_stages_probabilities() -> None:
    heads = _heads(score_thresh=0.0)
    heads.eval()
    features = _features()
    proposals = [torch.tensor([[8.0, 8.0, 40.0, 40.0]])]
    detections, losses = heads(features, proposals, [(64, 64)])
    assert losses == {}
    rois, expected = proposals, torch.zeros(NUM_CLASSES + 1)
    for stage in heads.stages:
        logits, deltas = stage(heads.box_roi_pool(features, rois, [(64, 64)]))
        expected += logits.softmax(-1)[0] / len(heads.stages)
        rois = heads.refine(stage, deltas, rois, [(64, 64)])  # type: ignore[arg-type]
    det = detections[0]
    assert sorted(det["labels"].tolist()) == [1, 2]  # one region, both classes above a zero threshold
    for label, score, box in zip(det["labels"], det["scores"], det["boxes"], strict=True):
        torch.testing.assert_close(score, expected[label])
        torch.testing.assert_close(box, rois[0][0])  # the last stage's box, shared by the classes
    assert det["masks"].shape == (2, 1, 8, 8)


def test_losses_of_every_stage_weighted_by_the_stage() -> None:
    heads = _heads()
    heads.train()
    proposals = [torch.tensor([[9.0, 9.0, 31.0, 31.0], [40.0, 40.0, 60.0, 60.0]])]
    _, losses = heads(_features(), proposals, [(64, 64)], [_target()])
    assert set(losses) == {f"loss_{k}_{t}" for k in ("classifier", "box_reg") for t in range(3)} | {"loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    torch.manual_seed(0)
    _, again = heads(_features(), proposals, [(64, 64)], [_target()])
    heads.stages[2].loss_weight = 0.0  # type: ignore[assignment]
    torch.manual_seed(0)
    _, unweighted = heads(_features(), proposals, [(64, 64)], [_target()])
    assert unweighted["loss_classifier_2"] == 0 and again["loss_classifier_2"] > 0
    torch.testing.assert_close(unweighted["loss_classifier_0"], again["loss_classifier_0"])


def test_a_cascade_needs_a_stage() -> None:
    with pytest.raises(ValueError, match="at least one stage"):
        CascadeRoIHeads(nn.Identity(), [], nn.Identity(), nn.Identity(), nn.Identity())
