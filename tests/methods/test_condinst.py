"""CondInst: output shapes, the loss on an image without objects, masks kept in their boxes, overfitting."""

from __future__ import annotations

import math

import torch
from torch import nn

from instseg import ImageBatch, Instances
from instseg.backbones import Backbone
from instseg.methods.condinst import (
    CondInst,
    CondInstPostprocessor,
    DynamicMaskHead,
    build_condinst,
    sizes_of_interest,
)


class _TinyBackbone(Backbone):
    """Four stride-2 conv + GroupNorm + ReLU stages after a stride-2 stem: maps c2..c5 at strides 4..32."""

    def __init__(self, width: int = 16) -> None:
        super().__init__(["c2", "c3", "c4", "c5"], [width] * 4, [4, 8, 16, 32])
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.GroupNorm(4, width), nn.ReLU())
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, 2, 1), nn.GroupNorm(4, width), nn.ReLU()) for _ in range(4)
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x, out = self.stem(x), {}
        for name, stage in zip(self.feature_names, self.stages, strict=True):
            x = stage(x)
            out[name] = x
        return out


def _tiny_model(**options: object) -> CondInst:
    return build_condinst(
        _TinyBackbone(),
        num_classes=2,
        min_size=None,
        max_size=None,
        fpn_channels=32,
        head_channels=32,
        head_convs=1,
        mask_branch_channels=32,
        mask_branch_convs=2,
        **options,  # type: ignore[arg-type]
    )


def _discs(size: int = 128) -> tuple[torch.Tensor, Instances]:
    """A grey image of three bright discs (radii 14, 18, 22) and their masks."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    discs = [(36, 34, 14), (40, 90, 18), (90, 64, 22)]
    masks = torch.stack([(ys - cy) ** 2 + (xs - cx) ** 2 <= r * r for cy, cx, r in discs])
    image = torch.full((3, size, size), 40.0)
    image[:, masks.any(0)] = 210.0
    return image, Instances((size, size), labels=torch.zeros(3, dtype=torch.long), masks=masks)


def test_sizes_of_interest() -> None:
    assert sizes_of_interest(((0, 64), (64, 128), (128, math.inf))) == [64.0, 128.0, 256.0]


def test_forward_shapes_and_loss_without_objects() -> None:
    torch.manual_seed(0)
    model = _tiny_model().train()
    batch = ImageBatch.from_tensors([torch.rand(3, 64, 96) * 255, torch.rand(3, 50, 40) * 255], 32)
    out = model(batch)
    points = 8 * 12 + 4 * 6 + 2 * 3 + 1 * 2  # P3..P6 of a 64 x 96 padded input
    assert model.mask_head.num_params == 169
    assert out["class_logits"].shape == (2, points, 2) and out["box_ltrb"].shape == (2, points, 4)
    assert out["centerness_logits"].shape == (2, points) and out["mask_params"].shape == (2, points, 169)
    assert out["mask_features"].shape == (2, 8, 8, 12)
    assert out["points"].shape == (points, 2) and out["point_scales"].shape == (points,)
    targets = [Instances.empty((64, 96)), Instances.empty((50, 40))]
    losses = model.loss(out, targets)
    assert set(losses) == {"loss_class", "loss_box", "loss_centerness", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _handmade_outputs(box_ltrb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of one 32 x 32 padded image, a single P3 level of 4 x 4 points: the point at (12, 12) detects class
    1 with side distances ``box_ltrb``; every dynamic mask is 'all foreground' (only the last bias, 5, is set)."""
    head = DynamicMaskHead(in_channels=8)
    p = 16
    logits = torch.full((1, p, 2), -10.0)
    logits[0, 5, 1] = 10.0  # row 1, column 1: the point (12, 12)
    params = torch.zeros(1, p, head.num_params)
    params[..., -1] = 5.0
    points = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="xy"), -1).reshape(-1, 2)
    return {
        "class_logits": logits,
        "box_ltrb": box_ltrb.expand(1, p, 4),
        "centerness_logits": torch.full((1, p), 10.0),
        "mask_params": params,
        "mask_features": torch.randn(1, 8, 4, 4),
        "points": points * 8 + 4,
        "point_levels": torch.zeros(p, dtype=torch.long),
        "point_scales": torch.full((p,), 64.0),
    }


def test_postprocess_keeps_masks_inside_their_boxes() -> None:
    outputs = _handmade_outputs(torch.tensor([6.0, 4.0, 8.0, 10.0]))  # box x 6..20, y 8..22 in the input
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 30)], [(64, 60)])
    (result,) = CondInstPostprocessor(score_threshold=0.3)(outputs, images, DynamicMaskHead(in_channels=8))
    assert len(result) == 1 and result.image_size == (64, 60) and result.labels.tolist() == [1]
    assert result.scores is not None and 0.0 < float(result.scores[0]) <= 1.0
    # the 'all foreground' mask fills exactly its box, scaled x2 to the original image
    assert torch.allclose(result.boxes[0], torch.tensor([12.0, 16.0, 40.0, 44.0]))
    assert result.masks is not None and int(result.masks[0].sum()) == 28 * 28
    # no detection above the threshold: an empty result of the right sizes
    outputs["class_logits"] = torch.full_like(outputs["class_logits"], -10.0)
    (none,) = CondInstPostprocessor(score_threshold=0.3)(outputs, images, DynamicMaskHead(in_channels=8))
    assert len(none) == 0 and none.masks is not None and none.masks.shape == (0, 64, 60)


def test_overfits_one_image_of_discs() -> None:
    torch.manual_seed(0)
    model = _tiny_model(score_threshold=0.2).train()
    image, target = _discs()
    batch = ImageBatch.from_tensors([image], 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(100):
        losses = model.loss(model(batch, [target]), [target])
        optimizer.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
    assert float(losses["loss_mask"].detach()) < 0.2, {k: float(v.detach()) for k, v in losses.items()}
    (pred,) = model.eval().postprocess(model.eval()(batch), batch)
    assert pred.masks is not None and len(pred) >= 3
    truth = target.masks
    assert truth is not None
    inter = (pred.masks[:, None] & truth[None]).flatten(2).sum(2).float()  # [D, 3]
    union = (pred.masks[:, None] | truth[None]).flatten(2).sum(2).float()
    best = (inter / union).amax(0)  # the best detection of each disc
    assert (best > 0.7).all(), best
