"""``YolactPostprocessor``: decode boxes, per-class top-k, Fast NMS, assemble and crop masks at the original size."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from instseg.methods.yolact.loss import box_coder, box_crop
from instseg.ops.boxes import clip_boxes, scale_boxes
from instseg.ops.masks import threshold_upsampled_masks
from instseg.ops.nms import fast_nms
from instseg.structures import ImageBatch, Instances


class YolactPostprocessor:
    """Turn the raw outputs of ``Yolact.forward`` into ``Instances`` at ``images.original_sizes``.

    Per image:
      1. class probabilities by softmax (background dropped), boxes decoded from the anchors and clipped;
      2. per class, the ``top_k`` anchors scoring above ``score_threshold``; at most ``max_candidates`` overall;
      3. Fast NMS (``instseg.ops.nms.fast_nms``, per class, IoU ``nms_iou``), then the best ``max_detections``;
      4. masks ``sigmoid(prototypes @ coefficients)``; with a mask-IoU net (YOLACT++) each score is multiplied by
         the predicted IoU of its box-cropped mask;
      5. masks upsampled to the original size, cropped by the predicted box, thresholded at ``mask_threshold``;
         boxes are re-derived from the final masks and empty masks dropped.
    """

    def __init__(
        self,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        top_k: int = 200,
        max_candidates: int = 1000,
        max_detections: int = 100,
        mask_threshold: float = 0.5,
        proto_stride: int = 4,
    ) -> None:
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.top_k, self.max_candidates, self.max_detections = top_k, max_candidates, max_detections
        self.mask_threshold = mask_threshold
        self.proto_stride = proto_stride
        self.box_coder = box_coder()

    def select(
        self, class_logits: Tensor, deltas: Tensor, anchors: Tensor, image_size: tuple[int, int]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Anchor indices, boxes (input pixels), scores and labels of one image's detections after Fast NMS.

        ``class_logits`` Tensor[A, K+1], ``deltas`` Tensor[A, 4], ``anchors`` Tensor[A, 4]; returns Tensor[D]
        int64, Tensor[D, 4], Tensor[D], Tensor[D] int64, highest score first.
        """
        probs = class_logits.float().softmax(dim=1)[:, 1:]  # [A, K]
        num_classes = probs.shape[1]
        k = min(self.top_k, probs.shape[0])
        top_scores, top_idx = probs.T.topk(k, dim=1)  # [K, k] per class
        labels = torch.arange(num_classes, device=probs.device)[:, None].expand(-1, k)
        ok = top_scores > self.score_threshold
        scores, idx, labels = top_scores[ok], top_idx[ok], labels[ok]
        if scores.numel() > self.max_candidates:
            best = scores.topk(self.max_candidates).indices
            scores, idx, labels = scores[best], idx[best], labels[best]
        boxes = self.box_coder.decode_single(deltas[idx].float(), anchors[idx])
        boxes = clip_boxes(boxes, image_size)
        keep = fast_nms(boxes, labels, scores, self.nms_iou)[: self.max_detections]
        return idx[keep], boxes[keep], scores[keep], labels[keep]

    def __call__(
        self, outputs: dict[str, Tensor], images: ImageBatch, mask_iou_net: nn.Module | None = None
    ) -> list[Instances]:
        results = []
        protos = outputs["prototypes"]  # [B, k, Hp, Wp]
        hp, wp = protos.shape[-2:]
        for i, ((h, w), (oh, ow)) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            idx, boxes, scores, labels = self.select(
                outputs["class_logits"][i], outputs["box_deltas"][i], outputs["anchors"], (h, w)
            )
            probs = torch.sigmoid(
                torch.einsum("khw,nk->nhw", protos[i].float(), outputs["mask_coeffs"][i, idx].float())
            )
            if mask_iou_net is not None and len(idx):
                cropped = probs * box_crop(boxes, (hp, wp), self.proto_stride)
                predicted_iou = mask_iou_net(cropped[:, None]).gather(1, labels[:, None]).squeeze(1)
                scores = scores * predicted_iou.clamp(0.0, 1.0)
            boxes = scale_boxes(boxes, (ow / w, oh / h))
            masks, mask_boxes = self.paste(probs, boxes, (h, w), (oh, ow))
            keep = mask_boxes[:, 2] > mask_boxes[:, 0]
            masks, mask_boxes, scores, labels = masks[keep], mask_boxes[keep], scores[keep], labels[keep]
            results.append(Instances((oh, ow), boxes=mask_boxes, labels=labels, masks=masks, scores=scores))
        return results

    def paste(
        self, probs: Tensor, boxes: Tensor, size: tuple[int, int], original: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """Boolean masks Tensor[N, oh, ow] and their tight boxes Tensor[N, 4] from prototype-resolution
        probabilities Tensor[N, Hp, Wp] of an image of ``size`` (in the padded input) shown at ``original``,
        cropped by ``boxes`` (original pixels): one bilinear step from the prototype grid to the original pixels,
        computed only inside each box (``instseg.ops.masks``)."""
        return threshold_upsampled_masks(probs, self.proto_stride, size, original, self.mask_threshold, boxes)
