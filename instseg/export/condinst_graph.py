"""CondInst in one graph: network, FCOS detection, the kept points' dynamic mask FCNs, final masks in boxes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.export.detection_steps import final_masks
from instseg.export.fcos_steps import fcos_detections, traced_point_values, traced_points
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import size_tensor
from instseg.methods.condinst import CondInst
from instseg.ops.dynamic_conv import split_dynamic_params


def batched_dynamic_logits(
    features: Tensor, images: Tensor, points: Tensor, scales: Tensor, params: Tensor, model: CondInst
) -> Tensor:
    """Mask logits Tensor[D, Hf, Wf] of ``instseg.ops.dynamic_conv.dynamic_mask_logits`` for detections of every
    image of ``features`` Tensor[B, C, Hf, Wf] at once (``images`` Tensor[D] int64).

    The relative coordinates fold into the first layer's bias as in the eager op; the first layer then reads its
    own image through a one-hot spread of its filters over the batch (Tensor[D, c_1, B, C + 2]): one einsum for
    all images, no per-detection copy of the features and no reshape with a traced size.
    """
    stride = model.mask_head.stride
    layers = split_dynamic_params(params, model.mask_head.layout)
    weight, bias = layers[0]  # [D, c_1, C + 2], [D, c_1]
    w_xy = weight[:, :, -2:] / scales[:, None, None]
    bias = bias - torch.einsum("dkc,dc->dk", w_xy, points)
    weight = torch.cat([weight[:, :, :-2], w_xy], dim=2)
    h, w = size_tensor(features, 2), size_tensor(features, 3)
    ys = torch.arange(h, dtype=torch.float32) * stride + stride // 2  # type: ignore[call-overload]
    xs = torch.arange(w, dtype=torch.float32) * stride + stride // 2  # type: ignore[call-overload]
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    locations = torch.stack([grid_x, grid_y])[None].expand(features.shape[0], -1, -1, -1)  # [B, 2, Hf, Wf]
    inputs = torch.cat([features, locations], dim=1)  # [B, C + 2, Hf, Wf]
    onehot = (images[:, None] == torch.arange(size_tensor(features, 0))[None]).to(weight.dtype)  # type: ignore[call-overload]
    spread = onehot[:, None, :, None] * weight[:, :, None, :]  # [D, c_1, B, C + 2]: zero off its own image
    # contracting (B, C + 2) in one einsum: a flatten of those axes fails in onnxruntime for D = 0
    x = torch.einsum("dkbc,bchw->dkhw", spread, inputs) + bias[:, :, None, None]
    for weight, bias in layers[1:]:
        x = torch.einsum("dok,dkhw->dohw", weight, F.relu(x)) + bias[:, :, None, None]
    return x[:, 0]


class CondInstGraph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks, batch_index)``: ``CondInst.forward`` and
    the steps of ``CondInstPostprocessor`` for every image of the batch at once (points built from the traced
    level sizes: the eager ``forward`` reads them as Python ints, which a trace would freeze)."""

    family = "detector"

    def __init__(self, model: CondInst) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: CondInst = self.model  # type: ignore[assignment]
        post = m.postprocessor
        levels = list(m.neck(m.backbone(self.normalized(image))).values())
        out = m.head(levels)
        points = traced_points(levels, m.strides)
        scales = traced_point_values(levels, m.sizes_of_interest)
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        images, idx, boxes, scores, labels = fcos_detections(
            post.selector, out["class_logits"], out["box_ltrb"], out["centerness_logits"], points, (h, w)
        )
        features = m.mask_branch(levels[0]).float()
        params = out["extra"][images, idx].float()
        logits = batched_dynamic_logits(features, images, points[idx], scales[idx], params, m)
        logits = F.interpolate(logits[:, None], scale_factor=2.0, mode="bilinear", align_corners=False)[:, 0]
        oh, ow = original_size[0], original_size[1]
        factor = torch.stack([ow / w, oh / h, ow / w, oh / h]).float()
        masks, mask_boxes = final_masks(
            logits.sigmoid(), m.mask_head.out_stride, (h, w), (oh, ow), post.mask_threshold, windows=boxes * factor
        )
        nonempty = mask_boxes[:, 2] > mask_boxes[:, 0]
        return mask_boxes[nonempty], scores[nonempty], labels[nonempty], masks[nonempty], images[nonempty]
