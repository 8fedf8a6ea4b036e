"""``BlendMask`` (Chen et al. 2020, "BlendMask: Top-Down Meets Bottom-Up for Instance Segmentation")."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.blendmask.head import BasisModule
from instseg.methods.blendmask.loss import BlendMaskLoss
from instseg.methods.blendmask.postprocess import BlendMaskPostprocessor
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.necks import FPN
from instseg.ops.fcos import level_points
from instseg.structures import ImageBatch, Instances


class BlendMask(InstanceSegmenter):
    """BlendMask: an FCOS detector (the top layer) whose every point also predicts ``K`` coarse ``M x M``
    attention maps (the ``FCOSHead``'s ``extra`` outputs, from its box tower), and a bottom module predicting
    ``K`` image-wide bases at stride 4; an instance's mask blends the bases cropped to its box with its
    attentions (``instseg.ops.blender``). Built from a backbone, an ``FPN`` (P3-P6), a ``BasisModule``, an
    ``FCOSHead`` with ``K * M * M`` extra outputs, a ``BlendMaskLoss`` and a ``BlendMaskPostprocessor``.

    ``forward(images, targets=None) -> dict`` (P points over the levels, K classes, ``num_bases`` bases):
      - ``class_logits``: Tensor[B, P, num_classes], sigmoid logits;
      - ``box_ltrb``: Tensor[B, P, 4], distances to the box sides in input pixels;
      - ``centerness_logits``: Tensor[B, P];
      - ``attentions``: Tensor[B, P, num_bases, M, M], logits (softmax over the bases in the blender);
      - ``bases``: Tensor[B, num_bases, H / 4, W / 4] for the padded input of H x W;
      - ``points``: Tensor[P, 2] ``(x, y)`` input pixels; ``point_levels``: Tensor[P] int64.
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        bottom: BasisModule,
        head: FCOSHead,
        criterion: BlendMaskLoss,
        postprocessor: BlendMaskPostprocessor,
        num_classes: int,
        attention_size: int = 14,
        min_size: int | None = 800,
        max_size: int | None = 1333,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        expected = bottom.num_bases * attention_size * attention_size
        if head.extra_outputs != expected:
            raise ValueError(
                f"the FCOS head gives {head.extra_outputs} extra outputs per point; {bottom.num_bases} bases with "
                f"{attention_size}x{attention_size} attentions need {expected}"
            )
        self.backbone, self.neck, self.bottom, self.head = backbone, neck, bottom, head
        self.criterion, self.postprocessor = criterion, postprocessor
        self.attention_size = attention_size
        self.strides = list(neck.feature_strides)

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Raw predictions (keys in the class docstring) for raw 0..255 pixels; ``targets`` are not needed."""
        levels = list(self.neck(self.backbone(self.normalize(images))).values())  # P3..P6
        out = self.head(levels)
        b, p, _ = out["extra"].shape
        m = self.attention_size
        out["attentions"] = out.pop("extra").reshape(b, p, self.bottom.num_bases, m, m)
        out["bases"] = self.bottom(levels)
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in levels]
        out["points"], out["point_levels"] = level_points(sizes, self.strides, levels[0].device)
        return out

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Weighted ``loss_*`` scalars (see ``BlendMaskLoss``); targets in the resized images' coordinates."""
        return self.criterion(outputs, targets, self.strides)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """Detections at ``images.original_sizes`` (see ``BlendMaskPostprocessor``)."""
        return self.postprocessor(outputs, images)
