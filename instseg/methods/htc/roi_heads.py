"""``HybridTaskCascadeRoIHeads``: the cascade of box stages with a mask head per stage, interleaved with the box
stages, mask information flow between them, and semantic features fused into every region."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import maskrcnn_loss
from torchvision.ops import roi_align

from instseg.heads.cascade import CascadeRoIHeads, CascadeStage, split_like
from instseg.methods.htc.head import FlowMaskHead, SemanticBranch

# the paper weights the semantic segmentation loss by 0.2 against the cascade's box and mask losses
SEMANTIC_LOSS_WEIGHT = 0.2


class HybridTaskCascadeRoIHeads(CascadeRoIHeads):
    """HTC's RoI heads, with the call and outputs of ``CascadeRoIHeads`` (torchvision's ``RoIHeads`` call).

    Every region's pooled box and mask features get the ``SemanticBranch`` features RoIAligned at the same size
    added (``semantic_stride`` is the branch's output stride). Training, stage t: the box stage as in the cascade
    (``loss_classifier_{t}``, ``loss_box_reg_{t}``), then, interleaved, mask head t on the stage's positive
    regions *after* its regression (``loss_mask_{t}``, times the stage's weight), its input receiving the features
    of heads 1..t-1 run on the same regions (information flow). ``loss_semantic``: cross-entropy of the semantic
    logits against the union of the instance masks (label + 1 inside an object, 0 elsewhere), times
    ``semantic_loss_weight``. Eval: the cascade's boxes and averaged scores; the masks of all stages' heads (with
    the flow) on the kept boxes are averaged.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        stages: Sequence[CascadeStage],
        mask_roi_pool: nn.Module,
        mask_heads: Sequence[FlowMaskHead],
        semantic_branch: SemanticBranch,
        semantic_level_names: Sequence[str],
        semantic_stride: int,
        semantic_loss_weight: float = SEMANTIC_LOSS_WEIGHT,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ) -> None:
        if len(mask_heads) != len(stages):
            raise ValueError(f"one mask head per stage: {len(mask_heads)} heads for {len(stages)} stages")
        super().__init__(
            box_roi_pool,
            stages,
            mask_roi_pool,
            nn.ModuleList(mask_heads),
            nn.Identity(),
            batch_size_per_image=batch_size_per_image,
            positive_fraction=positive_fraction,
            score_thresh=score_thresh,
            nms_thresh=nms_thresh,
            detections_per_img=detections_per_img,
        )
        self.semantic_branch = semantic_branch
        self.semantic_level_names = list(semantic_level_names)
        self.semantic_stride = semantic_stride
        self.semantic_loss_weight = semantic_loss_weight

    def _with_semantic(self, pooled: Tensor, semantic: Tensor, rois: list[Tensor]) -> Tensor:
        """Region features Tensor[R, C, S, S] plus the semantic features RoIAligned at the same size."""
        size = pooled.shape[-2:]
        extra = roi_align(semantic, rois, size, spatial_scale=1.0 / self.semantic_stride, sampling_ratio=2)
        return pooled + extra

    def _mask_logits(
        self,
        features: dict[str, Tensor],
        semantic: Tensor,
        rois: list[Tensor],
        shapes: list[tuple[int, int]],
        stages: int,
    ) -> list[Tensor]:
        """Mask logits Tensor[R, K + 1, 2S, 2S] of heads 1..``stages`` on ``rois``, each fed its predecessor's
        features."""
        x = self._with_semantic(self.mask_roi_pool(features, rois, shapes), semantic, rois)
        previous: Tensor | None = None
        out = []
        for head in list(self.mask_head)[:stages]:  # type: ignore[call-overload]
            logits, previous = head(x, previous)
            out.append(logits)
        return out

    def _semantic(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.semantic_branch([features[name] for name in self.semantic_level_names])

    def losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        """Every stage's box and mask losses and the semantic loss."""
        semantic_logits, semantic = self._semantic(features)
        losses = {
            "loss_semantic": self.semantic_loss_weight * semantic_loss(semantic_logits, targets, self.semantic_stride)
        }
        rois = proposals
        for t, stage in enumerate(self.stage_list):
            rois, labels, matched = self.sample(stage, rois, targets)
            pooled = self._with_semantic(self.box_roi_pool(features, rois, image_shapes), semantic, rois)
            logits, deltas = stage(pooled)
            cls_loss, box_loss = self.box_losses(stage, logits, deltas, rois, labels, matched, targets)
            losses[f"loss_classifier_{t}"], losses[f"loss_box_reg_{t}"] = cls_loss, box_loss
            refined = self.refine(stage, deltas, rois, image_shapes)
            positive = [torch.where(lab > 0)[0] for lab in labels]
            mask_rois = [r[p] for r, p in zip(refined, positive, strict=True)]
            mask_logits = self._mask_logits(features, semantic, mask_rois, image_shapes, t + 1)[-1]
            losses[f"loss_mask_{t}"] = stage.loss_weight * maskrcnn_loss(
                mask_logits,
                mask_rois,
                [tg["masks"] for tg in targets],
                [tg["labels"] for tg in targets],
                [m[p] for m, p in zip(matched, positive, strict=True)],
            )
            rois = refined
        return losses

    def detect(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        """Per-image detections; masks averaged over the stages' heads."""
        _, semantic = self._semantic(features)
        rois = proposals
        probs = torch.zeros(())
        for stage in self.stage_list:
            pooled = self._with_semantic(self.box_roi_pool(features, rois, image_shapes), semantic, rois)
            logits, deltas = stage(pooled)
            probs = probs + F.softmax(logits, -1)
            rois = self.refine(stage, deltas, rois, image_shapes)
        detections = self.select(probs / len(self.stages), rois)
        boxes = [d["boxes"] for d in detections]
        labels = torch.cat([d["labels"] for d in detections])
        stage_logits = self._mask_logits(features, semantic, boxes, image_shapes, len(self.stages))
        size = stage_logits[0].shape[-1]
        index = labels[:, None, None, None].expand(-1, 1, size, size)
        mask = torch.stack([lg.gather(1, index).sigmoid() for lg in stage_logits]).mean(0)  # [D, 1, M, M]
        for detection, m in zip(detections, split_like(mask, boxes), strict=True):
            detection["masks"] = m
        return detections


def semantic_loss(logits: Tensor, targets: list[dict[str, Tensor]], stride: int) -> Tensor:
    """Cross-entropy of ``logits`` Tensor[B, K + 1, Hs, Ws] (``stride`` of the padded batch) against each image's
    instance masks painted as labels (torchvision's 1..K; 0 where no object and in the padding), sampled at the
    grid cells' centre pixels; where masks overlap, the larger label wins (it only matters with several classes)."""
    hs, ws = logits.shape[-2:]
    canvas = torch.zeros((logits.shape[0], hs, ws), dtype=torch.int64, device=logits.device)
    for i, target in enumerate(targets):
        masks, labels = target["masks"], target["labels"]  # [N, h, w], [N] (1..K)
        if not len(masks):
            continue
        centres = masks[:, stride // 2 :: stride, stride // 2 :: stride][:, :hs, :ws]  # [N, <=Hs, <=Ws]
        painted = (centres.to(torch.int64) * labels[:, None, None]).amax(0)
        canvas[i, : painted.shape[0], : painted.shape[1]] = painted
    return F.cross_entropy(logits, canvas)
