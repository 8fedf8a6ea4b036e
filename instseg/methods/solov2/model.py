"""``SOLOv2`` (Wang et al., 2020): segmenting objects by locations with dynamic kernels, no boxes and no RoIs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from instseg.backbones import Backbone
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.methods.solov2.head import SOLOv2InstanceHead, SOLOv2MaskBranch
from instseg.methods.solov2.loss import SOLOv2Loss
from instseg.methods.solov2.postprocess import SOLOv2Postprocessor
from instseg.necks import FPN
from instseg.structures import ImageBatch, Instances


class SOLOv2(InstanceSegmenter):
    """Single-stage instance segmenter: every cell of an S x S grid per pyramid level predicts a category and a
    dynamic 1x1 kernel; convolving the shared mask features with a cell's kernel gives that cell's mask.

    ``forward(images, targets=None)`` takes a normalised ``ImageBatch`` (padded to a multiple of 32) and returns
    (G = sum over levels of S_l^2 grid cells, K classes, E mask-feature channels, H x W the padded input):
      - ``cls_logits``: Tensor[B, G, K], category logits per grid cell (sigmoid classifiers);
      - ``kernels``: Tensor[B, G, E], each cell's dynamic kernel;
      - ``mask_features``: Tensor[B, E, H/4, W/4], the unified mask features.
    ``loss`` is ``SOLOv2Loss`` (focal loss on cells, Dice on masks); ``postprocess`` is ``SOLOv2Postprocessor``
    (maskness rescoring, Matrix NMS, masks back at ``images.original_sizes``). ``targets`` are unused by forward.
    """

    # oneDNN convolutions on channels_last inputs: measured 2.1x faster for the MobileNetV3 light model on CPU
    inference_channels_last = True

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        head: SOLOv2InstanceHead,
        mask_branch: SOLOv2MaskBranch,
        criterion: SOLOv2Loss,
        postprocessor: SOLOv2Postprocessor,
        num_classes: int,
        min_size: int | None = 800,
        max_size: int | None = 1333,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        if len(neck.feature_names) != len(head.num_grids):
            raise ValueError(
                f"methods/solov2/model.py: the neck gives {len(neck.feature_names)} levels but the head has "
                f"{len(head.num_grids)} grids; give one grid number per pyramid level"
            )
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.mask_branch = mask_branch
        self.criterion = criterion
        self.postprocessor = postprocessor

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Grid-cell logits and kernels plus the mask features; see the class docstring for the keys."""
        features = list(self.neck(self.backbone(self.normalize(images))).values())  # p2..p6: [B, C, H/s, W/s]
        out = self.head(features)
        out["mask_features"] = self.mask_branch(features)
        return out

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        return self.criterion(outputs, targets)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        return self.postprocessor(outputs, images)
