"""SOLOv2 in one graph: network, point NMS, score threshold, dynamic kernels, maskness, Matrix NMS, final masks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from instseg.export.detection_steps import final_masks, matrix_nms_sorted
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import descending, size_tensor, topk_at_most
from instseg.methods.solov2 import SOLOv2
from instseg.methods.solov2.postprocess import point_nms


class SOLOv2Graph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks)``: ``SOLOv2.forward`` then the steps of
    ``SOLOv2Postprocessor`` (candidates kept in decreasing score order, so Matrix NMS needs no re-sorting)."""

    family = "detector"

    def __init__(self, model: SOLOv2) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        post: Any = self.model.postprocessor

        m: SOLOv2 = self.model  # type: ignore[assignment]
        features = list(m.neck(m.backbone(self.normalized(self.batch(image, original_size)))).values())
        out = m.head(features)  # SOLOv2.forward's steps, with the traceable normalisation
        out["mask_features"] = m.mask_branch(features)
        scores = point_nms(out["cls_logits"][0].float().sigmoid(), post.num_grids)  # [G, K]
        cells, labels = (scores > post.score_threshold).nonzero(as_tuple=True)
        scores = scores[cells, labels]
        top = topk_at_most(scores, post.pre_nms_top_k)  # also sorts: best first
        cells, labels, scores = cells[top], labels[top], scores[top]
        features = out["mask_features"][0].float()  # [E, Hf, Wf]
        soft = torch.einsum("de,ehw->dhw", out["kernels"][0][cells].float(), features).sigmoid()
        binary = (soft > post.mask_threshold).to(soft.dtype)
        area = binary.sum(dim=(1, 2))
        keep = area > post.min_area
        soft, binary, labels, scores, area = soft[keep], binary[keep], labels[keep], scores[keep], area[keep]
        scores = scores * (soft * binary).sum(dim=(1, 2)) / area.clamp(min=1.0)
        order = descending(scores)
        soft, binary, labels, scores = soft[order], binary[order], labels[order], scores[order]
        scores = matrix_nms_sorted(binary, labels, scores, post.nms_kernel, post.nms_sigma)
        kept = (scores >= post.update_threshold).nonzero().flatten()
        final = kept[descending(scores[kept])][: post.max_per_image]
        soft, labels, scores = soft[final], labels[final].long(), scores[final].clamp(0.0, 1.0)
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        masks, boxes = final_masks(
            soft, post.mask_stride, (h, w), (original_size[0], original_size[1]), post.mask_threshold
        )
        nonempty = boxes[:, 2] > boxes[:, 0]
        return boxes[nonempty], scores[nonempty], labels[nonempty], masks[nonempty]
