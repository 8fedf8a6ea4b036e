"""FCOS's dense head (Tian et al. 2019): class, box-side distance and centre-ness per pyramid point, its losses and
its detection step; the top part shared by the one-stage mask methods (PolarMask, CondInst, BlendMask)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss

from instseg.backbones import norm_layer
from instseg.backbones.norm import check_shared_head_norm
from instseg.ops.boxes import clip_boxes
from instseg.ops.fcos import FCOS_SIZE_RANGES, assign_points, box_centerness, decode_ltrb, ltrb_targets
from instseg.structures import Instances

DEFAULT_WEIGHTS = {"loss_class": 1.0, "loss_box": 1.0, "loss_centerness": 1.0}


def _tower(in_channels: int, channels: int, num_convs: int, norm: str | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers.append(nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=norm is None))
        if norm is not None:
            layers.append(norm_layer(norm)(channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _flatten(x: Tensor) -> Tensor:
    """Tensor[B, C, H, W] -> Tensor[B, H * W, C] (row-major, as ``level_points`` orders points)."""
    return x.flatten(2).transpose(1, 2)


class FCOSHead(nn.Module):
    """The head shared by every pyramid level: a classification tower and a box tower of ``num_convs`` 3x3 convs
    (+ norm: GroupNorm by default, never BatchNorm, which would mix the levels' statistics), then
    ``K`` sigmoid class logits from the first and 4 side distances, a centre-ness logit (on the box tower, as
    FCOS's later versions) and ``extra_outputs`` raw per-point values for the mask method from the second. Side
    distances are ``relu(scale_l * x) * stride_l`` with one learned scale per level (FCOS's normalised targets).

    ``forward(levels: list of Tensor[B, C, H_l, W_l]) -> dict``: ``class_logits`` Tensor[B, P, K],
    ``box_ltrb`` Tensor[B, P, 4] (input pixels), ``centerness_logits`` Tensor[B, P] and, with
    ``extra_outputs = E > 0``, ``extra`` Tensor[B, P, E]; ``P = sum_l H_l W_l`` in ``level_points`` order.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        strides: Sequence[int],
        channels: int = 256,
        num_convs: int = 4,
        norm: str | None = "gn",
        extra_outputs: int = 0,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        check_shared_head_norm(norm, "heads/fcos.py: FCOSHead")
        self.strides = [int(s) for s in strides]
        self.extra_outputs = extra_outputs
        self.cls_tower = _tower(in_channels, channels, num_convs, norm)
        self.box_tower = _tower(in_channels, channels, num_convs, norm)
        width = channels if num_convs else in_channels
        self.cls = nn.Conv2d(width, num_classes, 3, padding=1)
        self.box = nn.Conv2d(width, 4, 3, padding=1)
        self.centerness = nn.Conv2d(width, 1, 3, padding=1)
        self.extra = nn.Conv2d(width, extra_outputs, 3, padding=1) if extra_outputs else None
        self.scales = nn.Parameter(torch.ones(len(self.strides)))
        for conv in (self.cls, self.box, self.centerness, self.extra):
            if conv is not None:
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        nn.init.constant_(self.cls.bias, -math.log((1 - prior_prob) / prior_prob))  # type: ignore[arg-type]

    def forward(self, levels: Sequence[Tensor]) -> dict[str, Tensor]:
        if len(levels) != len(self.strides):
            raise ValueError(f"heads/fcos.py: {len(levels)} levels for {len(self.strides)} strides")
        cls, box, ctr, extra = [], [], [], []
        for i, x in enumerate(levels):
            c, b = self.cls_tower(x), self.box_tower(x)
            cls.append(_flatten(self.cls(c)))
            box.append(_flatten(F.relu(self.box(b) * self.scales[i]) * self.strides[i]))
            ctr.append(_flatten(self.centerness(b)))
            if self.extra is not None:
                extra.append(_flatten(self.extra(b)))
        out = {
            "class_logits": torch.cat(cls, 1),
            "box_ltrb": torch.cat(box, 1),
            "centerness_logits": torch.cat(ctr, 1)[..., 0],
        }
        if extra:
            out["extra"] = torch.cat(extra, 1)
        return out


def valid_objects(target: Instances) -> Tensor:
    """Indices Tensor[n] of the objects of ``target`` with a non-empty box (augmentation may crop one away)."""
    b = target.boxes
    return torch.nonzero((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).squeeze(1)


class FCOSLoss(nn.Module):
    """FCOS's losses from ``FCOSHead`` outputs and targets (resized-image coordinates):
      - ``loss_class``: sigmoid focal loss (alpha 0.25, gamma 2) over every point and class, over the positives;
      - ``loss_box``: GIoU loss of the positives' decoded boxes, weighted by their target centre-ness and divided
        by its sum (centre points count most);
      - ``loss_centerness``: BCE of the positives' centre-ness logits against the target centre-ness, over them.
    ``assign`` gives each image's matched object per point (``instseg.ops.fcos.assign_points``, box centres);
    the mask methods use the same assignment for their mask losses. Weights (``DEFAULT_WEIGHTS``) applied here;
    every output takes part with a zero factor when a batch has no object.
    """

    def __init__(
        self,
        num_classes: int,
        size_ranges: Sequence[tuple[float, float]] = FCOS_SIZE_RANGES,
        radius: float = 1.5,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"heads/fcos.py: unknown loss weights {sorted(unknown)}")
        self.num_classes, self.size_ranges, self.radius = num_classes, list(size_ranges), radius
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}

    def assign(
        self,
        points: Tensor,
        levels: Tensor,
        strides: Sequence[int],
        targets: Sequence[Instances],
        centres: Sequence[Tensor] | None = None,
        inside: Sequence[Tensor | None] | None = None,
    ) -> list[Tensor]:
        """Per image, Tensor[P] int64: index into that target's objects, -1 background; box centres unless
        ``centres`` (per image Tensor[N, 2]) and extra ``inside`` conditions (per image bool Tensor[P, N])."""
        out = []
        for i, target in enumerate(targets):
            keep = valid_objects(target).to(points.device)
            boxes = target.boxes.to(points.device)[keep]
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2 if centres is None else centres[i].to(points.device)[keep]
            extra = None if inside is None or inside[i] is None else inside[i][:, keep]  # type: ignore[index]
            ranges = self.size_ranges[: int(levels.max()) + 1]
            local = assign_points(points, levels, strides, ranges, boxes, centre, self.radius, extra)
            out.append(torch.where(local >= 0, keep[local.clamp(min=0)], local) if keep.numel() else local)
        return out

    def forward(
        self, outputs: Mapping[str, Tensor], points: Tensor, matched: Sequence[Tensor], targets: Sequence[Instances]
    ) -> dict[str, Tensor]:
        cls_logits, ltrb, ctr_logits = outputs["class_logits"], outputs["box_ltrb"], outputs["centerness_logits"]
        class_targets = torch.zeros_like(cls_logits)
        pred_boxes, gt_boxes, ctr_pred, pos_points = [], [], [], []
        for i, (m, target) in enumerate(zip(matched, targets, strict=True)):
            pos = torch.nonzero(m >= 0).squeeze(1)
            if pos.numel() == 0:
                continue
            labels = target.labels.to(cls_logits.device)
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise ValueError(f"heads/fcos.py: target {i} has labels outside 0..{self.num_classes - 1}")
            class_targets[i, pos, labels[m[pos]]] = 1.0
            pos_points.append(points[pos])
            pred_boxes.append(decode_ltrb(points[pos], ltrb[i, pos]))
            gt_boxes.append(target.boxes.to(cls_logits.device)[m[pos]])
            ctr_pred.append(ctr_logits[i, pos])
        num_pos = sum(len(p) for p in pred_boxes)
        loss_cls = sigmoid_focal_loss(cls_logits, class_targets, reduction="sum") / max(num_pos, 1)
        zero = 0.0 * (ltrb.sum() + ctr_logits.sum())
        if num_pos:
            pred, gt = torch.cat(pred_boxes), torch.cat(gt_boxes)
            ctr_target = box_centerness(ltrb_targets(torch.cat(pos_points), gt))
            giou = generalized_box_iou_loss(pred, gt, reduction="none")
            loss_box = (giou * ctr_target).sum() / ctr_target.sum().clamp(min=1e-6) + zero
            loss_ctr = F.binary_cross_entropy_with_logits(torch.cat(ctr_pred), ctr_target, reduction="mean") + zero
        else:
            loss_box, loss_ctr = zero, zero
        losses = {"loss_class": loss_cls, "loss_box": loss_box, "loss_centerness": loss_ctr}
        return {k: v * self.weights[k] for k, v in losses.items()}


class FCOSSelector:
    """One image's detections from ``FCOSHead`` outputs: points whose class probability exceeds
    ``score_threshold`` (the best ``pre_nms_top_k`` point-class pairs), score ``sqrt(class * centre-ness)``,
    decoded and clipped boxes, class-wise NMS at ``nms_iou`` (torchvision's), the best ``max_detections``."""

    def __init__(
        self, score_threshold: float = 0.05, pre_nms_top_k: int = 1000, nms_iou: float = 0.6, max_detections: int = 100
    ) -> None:
        self.score_threshold, self.pre_nms_top_k = score_threshold, pre_nms_top_k
        self.nms_iou, self.max_detections = nms_iou, max_detections

    def __call__(
        self,
        class_logits: Tensor,
        box_ltrb: Tensor,
        centerness_logits: Tensor,
        points: Tensor,
        image_size: tuple[int, int],
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``class_logits`` Tensor[P, K], ``box_ltrb`` Tensor[P, 4], ``centerness_logits`` Tensor[P], ``points``
        Tensor[P, 2] -> point indices Tensor[D] int64, boxes Tensor[D, 4], scores Tensor[D], labels Tensor[D]
        int64, best first."""
        probs = class_logits.float().sigmoid()  # [P, K]
        num_classes = probs.shape[1]
        flat = probs.flatten()
        candidates = torch.nonzero(flat > self.score_threshold).squeeze(1)
        if candidates.numel() > self.pre_nms_top_k:
            candidates = candidates[flat[candidates].topk(self.pre_nms_top_k).indices]
        idx, labels = candidates // num_classes, candidates % num_classes
        scores = (flat[candidates] * centerness_logits.float()[idx].sigmoid()).sqrt()
        boxes = clip_boxes(decode_ltrb(points[idx], box_ltrb[idx].float()), image_size)
        keep = batched_nms(boxes, scores, labels, self.nms_iou)[: self.max_detections]
        return idx[keep], boxes[keep], scores[keep], labels[keep]
