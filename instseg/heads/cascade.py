"""A cascade of RoI box heads (Cai & Vasconcelos, "Cascade R-CNN", 2018): each stage is trained on the boxes the
previous stage regressed, at a higher IoU threshold, so that the last stage sees and makes tighter boxes.

Shared by Cascade Mask R-CNN and the Hybrid Task Cascade. Built on torchvision's detection pieces: its
``Matcher``, ``BalancedPositiveNegativeSampler`` and ``BoxCoder`` live in the private module
``torchvision.models.detection._utils``, the only home of these helpers that torchvision's own public RoI heads use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import fastrcnn_loss, maskrcnn_inference, maskrcnn_loss
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes

# the paper's stages: IoU thresholds 0.5 / 0.6 / 0.7, regression targets scaled up as boxes get tighter, and the
# later stages' losses weighted down
STAGE_IOUS = (0.5, 0.6, 0.7)
STAGE_BOX_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))
STAGE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)


class CascadeStage(nn.Module):
    """One stage: ``forward(x: Tensor[R, ...pooled]) -> (logits Tensor[R, K + 1], deltas Tensor[R, 4])``, a box head
    (pooled region -> Tensor[R, head_dim]) with a classifier and a class-agnostic box regressor, the IoU threshold
    its training regions are labelled at, and the box coding of its regression targets."""

    def __init__(
        self,
        box_head: nn.Module,
        head_dim: int,
        num_classes: int,
        iou_thresh: float,
        box_weights: tuple[float, float, float, float],
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.box_head = box_head
        self.cls_score = nn.Linear(head_dim, num_classes + 1)  # index 0: background
        self.bbox_pred = nn.Linear(head_dim, 4)
        self.iou_thresh = iou_thresh
        self.loss_weight = loss_weight
        self.box_coder = det_utils.BoxCoder(box_weights)
        self.matcher = det_utils.Matcher(iou_thresh, iou_thresh, allow_low_quality_matches=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits and box deltas of each region."""
        features = self.box_head(x)
        return self.cls_score(features), self.bbox_pred(features)


def build_cascade_stages(
    in_channels: int,
    roi_size: int,
    head_dim: int,
    num_classes: int,
    ious: Sequence[float] = STAGE_IOUS,
    box_weights: Sequence[Sequence[float]] = STAGE_BOX_WEIGHTS,
    loss_weights: Sequence[float] = STAGE_LOSS_WEIGHTS,
) -> list[CascadeStage]:
    """One ``CascadeStage`` per entry of ``ious`` (with its ``box_weights`` and ``loss_weights``), each with its own
    two fully-connected layers of ``head_dim`` on ``in_channels x roi_size x roi_size`` pooled regions
    (torchvision's ``TwoMLPHead``, Mask R-CNN's box head)."""
    if not len(ious) == len(box_weights) == len(loss_weights) > 0:
        raise ValueError("stage IoUs, box weights and loss weights need one entry per stage")
    return [
        CascadeStage(
            TwoMLPHead(in_channels * roi_size**2, head_dim),
            head_dim,
            num_classes,
            iou_thresh=float(iou),
            box_weights=tuple(float(w) for w in weights),  # type: ignore[arg-type]
            loss_weight=float(weight),
        )
        for iou, weights, weight in zip(ious, box_weights, loss_weights, strict=True)
    ]


class CascadeRoIHeads(nn.Module):
    """``forward(features, proposals, image_shapes, targets=None) -> (detections, losses)`` with the call and the
    outputs of torchvision's ``RoIHeads``.

    Training: each stage labels its regions (the proposals plus the ground-truth boxes; later stages the previous
    stage's regressed boxes) at its IoU threshold, samples ``batch_size_per_image`` of them, and gives
    ``loss_classifier_{t}``/``loss_box_reg_{t}`` (torchvision's Fast R-CNN losses, times the stage's weight); the
    mask head learns on the last stage's positive regions (``loss_mask``).
    Eval: the stages run in turn on the regressed boxes; a region's class probabilities are the mean over the
    stages, its box the last stage's; then score threshold, per-class NMS and the top ``detections_per_img``, and
    the mask head on the kept boxes. ``detections``: one dict per image with ``boxes`` Tensor[D, 4], ``scores``,
    ``labels`` (1..K) and ``masks`` Tensor[D, 1, M, M] (probabilities of the predicted class).
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        stages: Sequence[CascadeStage],
        mask_roi_pool: nn.Module,
        mask_head: nn.Module,
        mask_predictor: nn.Module,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ) -> None:
        super().__init__()
        if not stages:
            raise ValueError("a cascade needs at least one stage")
        self.box_roi_pool = box_roi_pool
        self.stages = nn.ModuleList(stages)
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor
        self.sampler = det_utils.BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img

    @property
    def stage_list(self) -> list[CascadeStage]:
        """``stages`` typed (iterating a ``ModuleList`` yields ``Module``)."""
        return cast(list[CascadeStage], list(self.stages))

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections (eval) or losses (training); see the class docstring."""
        if self.training:
            if targets is None:
                raise ValueError("CascadeRoIHeads needs targets in training mode")
            return [], self.losses(features, proposals, image_shapes, targets)
        return self.detect(features, proposals, image_shapes), {}

    # -- training -----------------------------------------------------------------------------------
    def sample(
        self, stage: CascadeStage, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per image: the sampled regions Tensor[S_i, 4] (proposals + ground-truth boxes), their labels (0:
        background) and the index of the ground truth each positive region matched."""
        rois, labels, matched = [], [], []
        for boxes, target in zip(proposals, targets, strict=True):
            gt_boxes, gt_labels = target["boxes"], target["labels"]
            candidates = torch.cat([boxes.detach(), gt_boxes])
            if len(gt_boxes):
                index = stage.matcher(box_iou(gt_boxes, candidates))  # [N] gt index, -1 below the threshold
                label = gt_labels[index.clamp(min=0)]
                label[index < 0] = 0
            else:
                index = torch.zeros(len(candidates), dtype=torch.int64, device=candidates.device)
                label = torch.zeros_like(index)
            rois.append(candidates)
            labels.append(label)
            matched.append(index.clamp(min=0))
        positive, negative = self.sampler(labels)
        keep = [torch.where(p | n)[0] for p, n in zip(positive, negative, strict=True)]
        return (
            [r[k] for r, k in zip(rois, keep, strict=True)],
            [lab[k] for lab, k in zip(labels, keep, strict=True)],
            [m[k] for m, k in zip(matched, keep, strict=True)],
        )

    def box_losses(
        self,
        stage: CascadeStage,
        logits: Tensor,
        deltas: Tensor,
        rois: list[Tensor],
        labels: list[Tensor],
        matched: list[Tensor],
        targets: list[dict[str, Tensor]],
    ) -> tuple[Tensor, Tensor]:
        """The stage's weighted classification and box-regression losses."""
        references = [t["boxes"][m] if len(t["boxes"]) else r for t, m, r in zip(targets, matched, rois, strict=True)]
        regression_targets = list(stage.box_coder.encode(references, rois))
        # fastrcnn_loss reads class-specific deltas: the class-agnostic ones are repeated for every class
        cls_loss, box_loss = fastrcnn_loss(logits, deltas.repeat(1, logits.shape[1]), labels, regression_targets)
        return stage.loss_weight * cls_loss, stage.loss_weight * box_loss

    def refine(
        self, stage: CascadeStage, deltas: Tensor, rois: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[Tensor]:
        """The regions moved by the stage's deltas and clipped to their images: the next stage's regions."""
        boxes = stage.box_coder.decode(deltas.detach(), rois).reshape(-1, 4)  # [R, 4]
        return [clip_boxes_to_image(b, shape) for b, shape in zip(split_like(boxes, rois), image_shapes, strict=True)]

    def losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        """Every stage's box losses and the last stage's mask loss."""
        losses: dict[str, Tensor] = {}
        rois = proposals
        for t, stage in enumerate(self.stage_list):
            rois, labels, matched = self.sample(stage, rois, targets)
            logits, deltas = stage(self.box_roi_pool(features, rois, image_shapes))
            cls_loss, box_loss = self.box_losses(stage, logits, deltas, rois, labels, matched, targets)
            losses[f"loss_classifier_{t}"], losses[f"loss_box_reg_{t}"] = cls_loss, box_loss
            if t < len(self.stages) - 1:
                rois = self.refine(stage, deltas, rois, image_shapes)
        positive = [torch.where(lab > 0)[0] for lab in labels]
        mask_rois = [r[p] for r, p in zip(rois, positive, strict=True)]
        mask_logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, mask_rois, image_shapes)))
        losses["loss_mask"] = maskrcnn_loss(
            mask_logits,
            mask_rois,
            [t["masks"] for t in targets],
            [t["labels"] for t in targets],
            [m[p] for m, p in zip(matched, positive, strict=True)],
        )
        return losses

    # -- inference ----------------------------------------------------------------------------------
    def detect(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        """Per-image detections with masks, the stages' class probabilities averaged."""
        rois = proposals
        probs = torch.zeros(())
        for stage in self.stage_list:
            logits, deltas = stage(self.box_roi_pool(features, rois, image_shapes))
            probs = probs + F.softmax(logits, -1)
            rois = self.refine(stage, deltas, rois, image_shapes)
        detections = self.select(probs / len(self.stages), rois)
        boxes = [d["boxes"] for d in detections]
        mask_logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes, image_shapes)))
        masks = maskrcnn_inference(mask_logits, [d["labels"] for d in detections])
        for detection, mask in zip(detections, masks, strict=True):
            detection["masks"] = mask
        return detections

    def select(self, probs: Tensor, boxes: list[Tensor]) -> list[dict[str, Tensor]]:
        """Per image: every (region, class) pair above ``score_thresh`` with the region's box, per-class NMS, the
        ``detections_per_img`` best (torchvision's ``postprocess_detections`` on class-agnostic boxes)."""
        out = []
        num_classes = probs.shape[1] - 1
        for p, b in zip(split_like(probs, boxes), boxes, strict=True):
            scores = p[:, 1:].reshape(-1)  # [R * K], region-major
            labels = torch.arange(1, num_classes + 1, device=p.device).view(1, -1).expand_as(p[:, 1:]).reshape(-1)
            regions = b[:, None].expand(-1, num_classes, 4).reshape(-1, 4)
            keep = torch.where(scores > self.score_thresh)[0]
            regions, scores, labels = regions[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(regions, min_size=1e-2)
            regions, scores, labels = regions[keep], scores[keep], labels[keep]
            keep = batched_nms(regions, scores, labels, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": regions[keep], "scores": scores[keep], "labels": labels[keep]})
        return out


def split_like(x: Tensor, like: list[Tensor]) -> list[Tensor]:
    """``x`` cut into the lengths of ``like``; kept whole for one image, so that an export trace keeps the region
    count dynamic instead of freezing it as a split size."""
    return [x] if len(like) == 1 else list(x.split([len(r) for r in like]))
