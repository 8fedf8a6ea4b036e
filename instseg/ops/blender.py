"""BlendMask's blender (Chen et al. 2020, Sec. 3.3): an instance's mask as a per-pixel mixture of image-wide bases.

Each instance crops the ``K`` bases to its box (RoIAlign, ``R x R``) and mixes them with its own ``K`` coarse
``M x M`` attention maps: upsampled to ``R``, normalised by a softmax over the ``K`` bases at each pixel, multiplied
with the cropped bases and summed over them. The result is the instance's ``R x R`` mask logits over its box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align


def crop_bases(bases: Tensor, boxes: Tensor, image_index: Tensor, resolution: int, stride: float) -> Tensor:
    """Tensor[N, K, R, R]: ``bases`` Tensor[B, K, Hb, Wb] (``stride`` input pixels per cell) sampled on an
    ``R x R`` grid over each box Tensor[N, 4] (xyxy input pixels) of image ``image_index`` Tensor[N] int64.

    torchvision's ``roi_align`` with ``aligned=True``: bin ``(i, j)`` is read at the input pixel
    ``x0 + (j + 0.5) (x1 - x0) / R`` (same for y), cell ``c`` having its centre at input pixel ``(c + 0.5) * stride``;
    two samples per bin and axis, so that boxes several times larger than ``R`` cells are averaged, not aliased.
    """
    rois = torch.cat([image_index.to(boxes.dtype)[:, None], boxes], dim=1)  # [N, 5]
    return roi_align(bases, rois.to(bases.dtype), resolution, 1.0 / stride, sampling_ratio=2, aligned=True)


def blend_attentions(cropped: Tensor, attentions: Tensor) -> Tensor:
    """Mask logits Tensor[N, R, R] from cropped bases Tensor[N, K, R, R] and attentions Tensor[N, K, M, M]
    (logits): bilinear upsampling of the attentions to ``R``, softmax over the K bases, weighted sum."""
    r = cropped.shape[-1]
    if attentions.shape[-1] != r or attentions.shape[-2] != r:
        attentions = F.interpolate(attentions, size=(r, r), mode="bilinear", align_corners=False)
    return (cropped * attentions.softmax(dim=1)).sum(dim=1)


def blend(
    bases: Tensor, boxes: Tensor, image_index: Tensor, attentions: Tensor, resolution: int, stride: float
) -> Tensor:
    """BlendMask's mask logits Tensor[N, R, R] over each box: ``crop_bases`` then ``blend_attentions``.

    ``bases`` Tensor[B, K, Hb, Wb] at ``stride``, ``boxes`` Tensor[N, 4] xyxy input pixels, ``image_index``
    Tensor[N] int64 (which image of the batch each box is on), ``attentions`` Tensor[N, K, M, M] logits.
    """
    if attentions.shape[:2] != (boxes.shape[0], bases.shape[1]):
        raise ValueError(
            f"blend: attentions {tuple(attentions.shape)} need one [K, M, M] block per box ({boxes.shape[0]}) "
            f"and base (K = {bases.shape[1]})"
        )
    if boxes.shape[0] == 0:
        return bases.new_zeros((0, resolution, resolution))
    return blend_attentions(crop_bases(bases, boxes, image_index, resolution, stride), attentions)
