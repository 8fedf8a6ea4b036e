"""Hybrid Task Cascade: the semantic target from instance masks, the mask information flow, every stage's losses."""

from __future__ import annotations

import pytest
import torch

import instseg
from instseg import ImageBatch, Instances
from instseg.methods.htc.head import FlowMaskHead, SemanticBranch
from instseg.methods.htc.roi_heads import semantic_loss


def test_semantic_target_paints_the_instances_at_the_grid_centres() -> None:
    masks = torch.zeros(2, 32, 32, dtype=torch.uint8)
    masks[0, 0:8, 0:16] = 1
    masks[1, 16:32, 16:32] = 1
    targets = [
        {"masks": masks, "labels": torch.tensor([1, 2])},
        {"masks": torch.zeros(0, 24, 24, dtype=torch.uint8), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    expected = torch.zeros(2, 4, 4, dtype=torch.int64)  # stride 8 over a 32 x 32 padded batch
    expected[0, 0, 0:2] = 1
    expected[0, 2:, 2:] = 2
    # logits that say exactly ``expected`` give a near-zero loss; any other map a large one
    perfect = torch.nn.functional.one_hot(expected, 3).permute(0, 3, 1, 2).float() * 50
    assert semantic_loss(perfect, targets, stride=8) < 1e-6
    wrong = torch.nn.functional.one_hot(torch.zeros_like(expected), 3).permute(0, 3, 1, 2).float() * 50
    assert semantic_loss(wrong, targets, stride=8) > 1.0


def test_semantic_branch_works_at_the_fused_levels_stride() -> None:
    branch = SemanticBranch(in_channels=4, num_levels=3, num_classes=2, channels=8, num_convs=1, fuse_level=1)
    levels = [torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    logits, features = branch(levels)
    assert logits.shape == (1, 3, 8, 8) and features.shape == (1, 4, 8, 8)


def test_mask_head_flow_reads_the_previous_stage() -> None:
    torch.manual_seed(0)
    head = FlowMaskHead(in_channels=4, num_classes=1, channels=6, num_convs=2, with_flow=True)
    x, previous = torch.randn(2, 4, 5, 5), torch.randn(2, 6, 5, 5)
    logits, features = head(x, previous)
    assert logits.shape == (2, 2, 10, 10) and features.shape == (2, 6, 5, 5)
    assert not torch.allclose(logits, head(x, torch.zeros_like(previous))[0])
    with pytest.raises(ValueError, match="previous stage"):
        head(x)


def test_every_stage_has_its_box_and_mask_losses() -> None:
    torch.manual_seed(0)
    model = instseg.create_model(
        "htc_resnet18_fpn",
        num_classes=1,
        min_size=96,
        max_size=96,
        fpn_channels=32,
        box_head_dim=32,
        mask_head_channels=16,
        semantic_channels=16,
    )
    masks = torch.zeros(1, 96, 96, dtype=torch.bool)
    masks[0, 20:60, 30:70] = True
    images = ImageBatch.from_tensors([torch.rand(3, 96, 96) * 255], 32, 0.0)
    model.train()
    losses = model.loss(model(images, [Instances((96, 96), labels=torch.tensor([0]), masks=masks)]), [])
    stages = {f"loss_{k}_{t}" for k in ("classifier", "box_reg", "mask") for t in range(3)}
    assert set(losses) == stages | {"loss_semantic", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    # the semantic branch learns, and the later mask heads' flow convs get a gradient through the interleaving
    assert model.roi_heads.semantic_branch.logits.weight.grad.abs().sum() > 0
    assert model.roi_heads.mask_head[2].flow.weight.grad.abs().sum() > 0
