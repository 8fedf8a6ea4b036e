"""YOLACT / YOLACT++ in one graph: network, score threshold, per-class top-k, Fast NMS, mask assembly in boxes."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.export.detection_steps import fast_nms_keep, final_masks, per_image_product
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import grouped_top, image_index, size_tensor
from instseg.methods.yolact import Yolact
from instseg.methods.yolact.loss import box_crop


class YolactGraph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks, batch_index)``: the steps of
    ``YolactPostprocessor`` for every image of the batch at once.

    The network runs as ``Yolact.forward`` does, except that the anchors are built from the traced level sizes:
    ``forward`` reads them as Python ints, which a trace would freeze into one image size.
    """

    family = "detector"

    def __init__(self, model: Yolact) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: Yolact = self.model  # type: ignore[assignment]
        post = m.postprocessor
        levels = list(m.neck(m.backbone(self.normalized(image))).values())
        levels += m.extra_levels(levels[-1])
        class_logits, box_deltas, mask_coeffs = m.head(levels)
        protos = m.protonet(levels[0]).float()  # [B, k, Hp, Wp]
        shapes = [(size_tensor(x, 2), size_tensor(x, 3)) for x in levels]
        anchors = m.anchors(shapes, m.strides, image.device)  # type: ignore[arg-type]  # [A, 4]
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        oh, ow = original_size[0], original_size[1]

        probs = class_logits.float().softmax(dim=2)[:, :, 1:]  # [B, A, K]
        k = torch.clamp(size_tensor(probs, 1), max=post.top_k)
        top_scores, top_idx = probs.transpose(1, 2).topk(k, dim=2)  # type: ignore[call-overload]  # [B, K, k]
        labels = torch.arange(probs.shape[2])[None, :, None].expand_as(top_idx)
        images = image_index(probs, top_idx)
        ok = top_scores > post.score_threshold
        scores, idx, labels, images = top_scores[ok], top_idx[ok], labels[ok], images[ok]
        best = grouped_top(scores, images, size_tensor(probs, 0), post.max_candidates)
        scores, idx, labels, images = scores[best], idx[best], labels[best], images[best]
        boxes = post.box_coder.decode_single(box_deltas[images, idx].float(), anchors[idx])
        limits = torch.stack([w, h, w, h]).float()
        boxes = torch.minimum(boxes.clamp(min=0.0), limits)
        keep = fast_nms_keep(boxes, labels, scores, images, post.nms_iou)
        keep = keep[grouped_top(scores[keep], images[keep], size_tensor(probs, 0), post.max_detections)]
        idx, boxes, scores, labels, images = idx[keep], boxes[keep], scores[keep], labels[keep], images[keep]

        coefficients = mask_coeffs[images, idx].float()  # [D, k]
        soft = torch.sigmoid(per_image_product(coefficients, images, protos))  # [D, Hp, Wp]
        if m.mask_iou_net is not None:
            crop = box_crop(boxes, (size_tensor(protos, 2), size_tensor(protos, 3)), post.proto_stride)  # type: ignore[arg-type]
            predicted_iou = m.mask_iou_net((soft * crop)[:, None]).gather(1, labels[:, None]).squeeze(1)
            scores = scores * predicted_iou.clamp(0.0, 1.0)
        factor = torch.stack([ow / w, oh / h, ow / w, oh / h]).float()
        masks, mask_boxes = final_masks(
            soft, post.proto_stride, (h, w), (oh, ow), post.mask_threshold, windows=boxes * factor
        )
        nonempty = mask_boxes[:, 2] > mask_boxes[:, 0]
        return mask_boxes[nonempty], scores[nonempty], labels[nonempty], masks[nonempty], images[nonempty]
