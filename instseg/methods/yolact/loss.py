"""``YolactLoss``: softmax classification with OHEM, smooth-L1 boxes, box-cropped prototype masks, semantic and
(YOLACT++) mask-IoU auxiliary losses."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder

from instseg.methods.yolact.anchors import match_anchors
from instseg.ops.mask_downsampling import area_downsample_masks
from instseg.structures import Instances

# the paper's loss weights (class 1, box 1.5, mask 6.125, semantic 1); the mask-IoU weight is ours
DEFAULT_WEIGHTS = {"loss_class": 1.0, "loss_box": 1.5, "loss_mask": 6.125, "loss_semantic": 1.0, "loss_mask_iou": 5.0}


def box_coder() -> BoxCoder:
    """SSD's box encoding (centre / 0.1, log size / 0.2), which YOLACT keeps."""
    return BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))


def box_crop(boxes: Tensor, size: tuple[int, int], stride: float) -> Tensor:
    """Bool Tensor[N, H, W]: the pixels of a ``size`` grid of ``stride`` input pixels each that overlap each box.

    ``boxes`` Tensor[N, 4] xyxy in input pixels. Overlap rather than centre inclusion gives every non-empty box at
    least one pixel, which matters for objects a few grid cells wide.
    """
    b = boxes / stride
    ys = torch.arange(size[0], device=boxes.device, dtype=b.dtype)
    xs = torch.arange(size[1], device=boxes.device, dtype=b.dtype)
    in_y = (ys[None] + 1 > b[:, 1:2]) & (ys[None] < b[:, 3:4])  # [N, H]
    in_x = (xs[None] + 1 > b[:, 0:1]) & (xs[None] < b[:, 2:3])  # [N, W]
    return in_y[:, :, None] & in_x[:, None, :]


def cropped_mask_loss(logits: Tensor, targets: Tensor, crops: Tensor) -> Tensor:
    """Per-mask BCE summed inside the crop and divided by the crop's area (Tensor[N]), as YOLACT normalises it.

    ``logits``, ``targets`` (0..1) and ``crops`` (bool) are Tensor[N, H, W]: pixels outside the box do not count,
    so large objects do not outweigh small ones.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    crops = crops.to(bce.dtype)
    return (bce * crops).flatten(1).sum(1) / crops.flatten(1).sum(1).clamp(min=1.0)


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU (Tensor[N]) of paired boolean masks Tensor[N, H, W]; two empty masks give 0."""
    inter = (pred & target).flatten(1).sum(1).float()
    union = (pred | target).flatten(1).sum(1).float()
    return inter / union.clamp(min=1.0)


class YolactLoss(nn.Module):
    """Training losses of YOLACT from the raw outputs of ``Yolact.forward`` and the targets (resized image coords).

    Per image, anchors are matched to the ground-truth boxes (IoU >= ``pos_iou`` positive, < ``neg_iou``
    background, each box also takes its best anchor). Then:
      - ``loss_class``: softmax cross-entropy over K + 1 classes on the positives and the hardest background
        anchors (online hard example mining, ``neg_pos_ratio`` negatives per positive and at least
        ``min_negatives`` per image, so images without objects still teach the background), over the positives;
      - ``loss_box``: smooth L1 on SSD-encoded box offsets of the positives, over the positives;
      - ``loss_mask``: BCE between ``sigmoid(prototypes @ coefficients)`` and the ground-truth mask, both at the
        prototype resolution, summed inside the ground-truth box and divided by its area, averaged over (at most
        ``max_masks_per_image`` random) positives;
      - ``loss_semantic``: per-class sigmoid BCE of ``semantic_logits`` against the union of each class's masks;
      - ``loss_mask_iou`` (YOLACT++, with a ``mask_iou_net``): smooth L1 between the predicted IoU of each cropped
        predicted mask and its IoU with the ground truth (the net sees the mask detached, as a separate branch).
    Weights (``DEFAULT_WEIGHTS``, overridable by ``weights``) are applied here. Every head output takes part in
    every loss, with a zero factor when a batch has no object, so that all parameters always get a gradient.
    """

    def __init__(
        self,
        num_classes: int,
        proto_stride: int = 4,
        pos_iou: float = 0.5,
        neg_iou: float = 0.4,
        neg_pos_ratio: int = 3,
        min_negatives: int = 16,
        max_masks_per_image: int = 100,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"methods/yolact/loss.py: unknown loss weights {sorted(unknown)}")
        self.num_classes = num_classes
        self.proto_stride = proto_stride
        self.pos_iou, self.neg_iou = pos_iou, neg_iou
        self.neg_pos_ratio, self.min_negatives = neg_pos_ratio, min_negatives
        self.max_masks_per_image = max_masks_per_image
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.box_coder = box_coder()

    def _hard_negatives(self, logits: Tensor, state: Tensor, num_pos: int) -> Tensor:
        """Indices of the background anchors with the highest background loss (Tensor[n] int64)."""
        with torch.no_grad():
            bg_loss = torch.logsumexp(logits, dim=1) - logits[:, 0]  # -log p(background), [A]
            bg_loss = torch.where(state == 0, bg_loss, torch.full_like(bg_loss, -1.0))
            available = int((state == 0).sum())
            count = min(max(self.neg_pos_ratio * num_pos, self.min_negatives), available)
            return bg_loss.topk(count).indices

    def forward(
        self, outputs: dict[str, Tensor], targets: list[Instances], mask_iou_net: nn.Module | None = None
    ) -> dict[str, Tensor]:
        cls_logits, deltas, coeffs = outputs["class_logits"], outputs["box_deltas"], outputs["mask_coeffs"]
        protos, anchors = outputs["prototypes"], outputs["anchors"]  # [B, k, Hp, Wp], [A, 4]
        if len(targets) != cls_logits.shape[0]:
            raise ValueError(f"methods/yolact/loss.py: {len(targets)} targets for a batch of {cls_logits.shape[0]}")
        device = cls_logits.device
        hp, wp = protos.shape[-2:]
        padded = (hp * self.proto_stride, wp * self.proto_stride)
        zero = cls_logits.new_zeros(())
        loss_cls, loss_box, loss_mask, loss_sem, loss_iou = zero, zero, zero, zero, zero
        num_pos_total, num_masks, iou_preds, iou_targets = 0, 0, [], []
        for i, target in enumerate(targets):
            if target.masks is None:
                raise ValueError(f"methods/yolact/loss.py: target of batch image {i} has no masks; YOLACT needs them")
            target = target.to(device)
            # objects whose mask vanished (cropped away by augmentation) have empty boxes: no signal, dropped
            keep = (target.boxes[:, 2] > target.boxes[:, 0]) & (target.boxes[:, 3] > target.boxes[:, 1])
            boxes, labels, masks = target.boxes[keep], target.labels[keep], target.masks[keep]  # type: ignore[index]
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(
                    f"methods/yolact/loss.py: target of batch image {i} has labels outside 0..{self.num_classes - 1}"
                )
            matched, state = match_anchors(anchors, boxes, self.pos_iou, self.neg_iou)
            pos = torch.nonzero(state == 1).squeeze(1)
            num_pos = int(pos.numel())
            num_pos_total += num_pos
            cls_target = torch.where(state == 1, labels[matched] + 1 if len(labels) else state, 0)
            chosen = torch.cat([pos, self._hard_negatives(cls_logits[i], state, num_pos)])
            loss_cls = loss_cls + F.cross_entropy(cls_logits[i, chosen], cls_target[chosen], reduction="sum")
            if num_pos:
                box_t = self.box_coder.encode_single(boxes[matched[pos]], anchors[pos])
                loss_box = loss_box + F.smooth_l1_loss(deltas[i, pos], box_t, beta=1.0, reduction="sum")
            gt_proto = area_downsample_masks(masks, padded, (hp, wp))  # [N, Hp, Wp] in 0..1
            if "semantic_logits" in outputs:
                loss_sem = loss_sem + self._semantic(
                    outputs["semantic_logits"][i], masks, labels, padded, target.image_size
                )
            if not num_pos:
                continue
            if num_pos > self.max_masks_per_image:
                pos = pos[torch.randperm(num_pos, device=device)[: self.max_masks_per_image]]
            gt_idx = matched[pos]
            logits = torch.einsum("khw,nk->nhw", protos[i], coeffs[i, pos])  # [n, Hp, Wp]
            crops = box_crop(boxes[gt_idx], (hp, wp), self.proto_stride)
            loss_mask = loss_mask + cropped_mask_loss(logits, gt_proto[gt_idx], crops).sum()
            num_masks += int(pos.numel())
            if mask_iou_net is not None:
                with torch.no_grad():
                    probs = torch.sigmoid(logits) * crops
                    iou_targets.append(mask_iou(probs > 0.5, gt_proto[gt_idx] > 0.5))
                pred = mask_iou_net(probs[:, None])  # [n, K]
                iou_preds.append(pred.gather(1, labels[gt_idx][:, None]).squeeze(1))
        # zero-factor terms: every output takes part even when no image of the batch has an object
        loss_box = (loss_box + 0.0 * deltas.sum()) / max(num_pos_total, 1)
        loss_mask = (loss_mask + 0.0 * (coeffs.sum() + protos.sum())) / max(num_masks, 1)
        losses = {"loss_class": loss_cls / max(num_pos_total, 1), "loss_box": loss_box, "loss_mask": loss_mask}
        if "semantic_logits" in outputs:
            losses["loss_semantic"] = loss_sem / len(targets)
        if mask_iou_net is not None:
            if iou_preds:
                loss_iou = F.smooth_l1_loss(torch.cat(iou_preds), torch.cat(iou_targets), reduction="mean")
            losses["loss_mask_iou"] = loss_iou + 0.0 * sum(p.sum() for p in mask_iou_net.parameters())
        return {k: v * self.weights[k] for k, v in losses.items()}

    def _semantic(
        self, logits: Tensor, masks: Tensor, labels: Tensor, padded: tuple[int, int], image_size: tuple[int, int]
    ) -> Tensor:
        """Mean per-class BCE of one image's ``logits`` Tensor[K, Hs, Ws] over its unpadded area."""
        hs, ws = logits.shape[-2:]
        small = area_downsample_masks(masks, padded, (hs, ws))  # [N, Hs, Ws]
        target = logits.new_zeros((self.num_classes, hs, ws))
        if len(labels):
            target = target.scatter_reduce(0, labels[:, None, None].expand_as(small), small, "amax")
        h, w = image_size
        stride_y, stride_x = padded[0] / hs, padded[1] / ws
        vh, vw = max(1, round(h / stride_y)), max(1, round(w / stride_x))
        return F.binary_cross_entropy_with_logits(logits[:, :vh, :vw], target[:, :vh, :vw])
