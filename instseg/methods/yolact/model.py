"""``Yolact`` (Bolya et al. 2019) and its YOLACT++ options: one-stage detection plus masks assembled from prototypes."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from instseg.backbones import Backbone
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.methods.yolact.anchors import AnchorGrid
from instseg.methods.yolact.head import ExtraLevels, MaskIoUNet, PredictionHead, ProtoNet
from instseg.methods.yolact.loss import YolactLoss
from instseg.methods.yolact.postprocess import YolactPostprocessor
from instseg.necks import FPN
from instseg.structures import ImageBatch, Instances


class Yolact(InstanceSegmenter):
    """YOLACT: an FPN detector whose every anchor also predicts ``k`` coefficients that mix ``k`` image-wide
    prototype masks into its instance mask (``sigmoid(prototypes @ coefficients)``, cropped by its box).

    Built from a backbone, an ``FPN`` over its stride 8..32 maps, ``ExtraLevels`` (P6, P7), a ``ProtoNet`` on the
    finest level, a shared ``PredictionHead``, an ``AnchorGrid``, a ``YolactLoss`` and a ``YolactPostprocessor``;
    optionally a 1x1 ``semantic_head`` on the finest level (training-only auxiliary loss) and, for YOLACT++, a
    ``MaskIoUNet`` that re-scores detections by their predicted mask quality.

    The registered builders set ``rebuild_kwargs`` (builder kwargs rebuilding the architecture without downloads).
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        extra_levels: ExtraLevels,
        protonet: ProtoNet,
        head: PredictionHead,
        anchors: AnchorGrid,
        criterion: YolactLoss,
        postprocessor: YolactPostprocessor,
        num_classes: int,
        semantic_head: nn.Module | None = None,
        mask_iou_net: MaskIoUNet | None = None,
        min_size: int | None = 550,
        max_size: int | None = 550,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        self.backbone = backbone
        self.neck = neck
        self.extra_levels = extra_levels
        self.protonet = protonet
        self.head = head
        self.anchors = anchors
        self.criterion = criterion
        self.postprocessor = postprocessor
        self.semantic_head = semantic_head
        self.mask_iou_net = mask_iou_net
        last = neck.feature_strides[-1]
        self.strides = list(neck.feature_strides) + [last * 2 ** (i + 1) for i in range(len(extra_levels.convs))]

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Raw predictions for a batch of raw 0..255 pixels (normalised here); ``targets`` are not needed.

        Returns (A anchors over all levels, k prototypes, K classes):
          - ``class_logits``: Tensor[B, A, K + 1], softmax logits, index 0 = background;
          - ``box_deltas``: Tensor[B, A, 4], SSD-encoded offsets from ``anchors``;
          - ``mask_coeffs``: Tensor[B, A, k] in [-1, 1];
          - ``prototypes``: Tensor[B, k, H / 4, W / 4], non-negative;
          - ``anchors``: Tensor[A, 4], xyxy input pixels;
          - ``semantic_logits``: Tensor[B, K, H / 8, W / 8], training mode only, when the model has the head.
        """
        features = self.neck(self.backbone(self.normalize(images)))  # p3..p5: [B, C, H/s, W/s]
        levels = list(features.values())
        levels += self.extra_levels(levels[-1])  # p6, p7
        class_logits, box_deltas, mask_coeffs = self.head(levels)
        outputs = {
            "class_logits": class_logits,
            "box_deltas": box_deltas,
            "mask_coeffs": mask_coeffs,
            "prototypes": self.protonet(levels[0]),
            "anchors": self.anchors(
                [(int(x.shape[-2]), int(x.shape[-1])) for x in levels], self.strides, images.tensor.device
            ),
        }
        if self.training and self.semantic_head is not None:
            outputs["semantic_logits"] = self.semantic_head(levels[0])
        return outputs

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Weighted ``loss_*`` scalars (see ``YolactLoss``); targets in the coordinates of the resized images."""
        return self.criterion(outputs, targets, self.mask_iou_net)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """Detections at ``images.original_sizes`` (see ``YolactPostprocessor``)."""
        return self.postprocessor(outputs, images, self.mask_iou_net)
