"""SOLOv2 in one graph: network, point NMS, score threshold, dynamic kernels, maskness, Matrix NMS, final masks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.export.detection_steps import final_masks, matrix_nms_sorted, per_image_product
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import descending, grouped_top, size_tensor
from instseg.methods.solov2 import SOLOv2


def batched_point_nms(scores: Tensor, num_grids: list[int]) -> Tensor:
    """``instseg.methods.solov2.postprocess.point_nms`` of every image of ``scores`` Tensor[B, G, K] at once (the
    eager one takes one image)."""
    out, offset = [], 0
    for s in num_grids:
        level = scores[:, offset : offset + s * s].transpose(1, 2).unflatten(2, (s, s))  # [B, K, S, S]
        peak = F.max_pool2d(level, 2, stride=1, padding=1)[..., :-1, :-1]
        out.append((level * (peak == level)).flatten(2).transpose(1, 2))
        offset += s * s
    return torch.cat(out, dim=1)


class SOLOv2Graph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks, batch_index)``: ``SOLOv2.forward`` then
    the steps of ``SOLOv2Postprocessor`` for every image of the batch at once (candidates kept in decreasing score
    order, so Matrix NMS needs no re-sorting)."""

    family = "detector"

    def __init__(self, model: SOLOv2) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        post: Any = self.model.postprocessor

        m: SOLOv2 = self.model  # type: ignore[assignment]
        features = list(m.neck(m.backbone(self.normalized(image))).values())
        out = m.head(features)  # SOLOv2.forward's steps, with the traceable normalisation
        out["mask_features"] = m.mask_branch(features)
        scores = batched_point_nms(out["cls_logits"].float().sigmoid(), post.num_grids)  # [B, G, K]
        num_images = size_tensor(scores, 0)
        images, cells, labels = (scores > post.score_threshold).nonzero(as_tuple=True)
        scores = scores[images, cells, labels]
        top = grouped_top(scores, images, num_images, post.pre_nms_top_k)  # by image, best first
        images, cells, labels, scores = images[top], cells[top], labels[top], scores[top]
        features = out["mask_features"].float()  # [B, E, Hf, Wf]
        soft = per_image_product(out["kernels"][images, cells].float(), images, features).sigmoid()  # [D, Hf, Wf]
        binary = (soft > post.mask_threshold).to(soft.dtype)
        area = binary.sum(dim=(1, 2))
        keep = area > post.min_area
        soft, binary, labels, scores, area = soft[keep], binary[keep], labels[keep], scores[keep], area[keep]
        images = images[keep]
        scores = scores * (soft * binary).sum(dim=(1, 2)) / area.clamp(min=1.0)
        order = descending(scores)
        soft, binary, labels, scores, images = soft[order], binary[order], labels[order], scores[order], images[order]
        scores = matrix_nms_sorted(binary, labels, scores, images, post.nms_kernel, post.nms_sigma)
        kept = (scores >= post.update_threshold).nonzero().flatten()
        final = kept[grouped_top(scores[kept], images[kept], num_images, post.max_per_image)]
        soft, labels, scores = soft[final], labels[final].long(), scores[final].clamp(0.0, 1.0)
        images = images[final]
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        masks, boxes = final_masks(
            soft, post.mask_stride, (h, w), (original_size[0], original_size[1]), post.mask_threshold
        )
        nonempty = boxes[:, 2] > boxes[:, 0]
        return boxes[nonempty], scores[nonempty], labels[nonempty], masks[nonempty], images[nonempty]
