"""``TwoStageSegmenter``: backbone + neck, region proposals, then RoI heads per region: the shape Mask R-CNN and its
descendants (PANet, Cascade Mask R-CNN, HTC) share, so training, evaluation and export treat them alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.rpn import RegionProposalNetwork

from instseg.backbones import Backbone, norm_layer
from instseg.heads.rpn import build_pyramid_rpn
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone, keyword_defaults
from instseg.necks import FPN
from instseg.ops.boxes import clip_boxes, scale_boxes
from instseg.structures import ImageBatch, Instances

# masks are pasted this many at a time: a full-image float mask per detection for 500 detections on a large
# image would otherwise take gigabytes before thresholding
_PASTE_CHUNK = 64

Model = TypeVar("Model", bound=InstanceSegmenter)


class TwoStageSegmenter(InstanceSegmenter):
    """Two-stage instance segmenter behind instseg's three-step contract.

    ``roi_heads`` is torchvision's ``RoIHeads`` or a module with its call: ``roi_heads(features, proposals,
    image_sizes, targets)`` returning ``(detections, losses)``, one dict of ``boxes``/``scores``/``labels`` (1..K)/
    ``masks`` Tensor[D_i, 1, M, M] per image in eval mode, a dict of ``loss_*`` scalars in training.

    ``forward(images, targets)`` takes a normalised ``ImageBatch`` (see ``InstanceSegmenter.normalize``) whose
    targets live in the coordinates of ``images.image_sizes``:
      - training mode (targets required): the RPN and RoI heads compute their losses inside, so the output is
        ``{"loss_objectness", "loss_rpn_box_reg"}`` plus the RoI heads' ``loss_*`` (unweighted scalars);
      - eval mode: the detections of the whole batch, concatenated image after image (D in total):
        ``boxes`` Tensor[D, 4] xyxy in resized-image pixels, ``scores`` Tensor[D], ``labels`` Tensor[D] int64
        (0..K-1), ``mask_probs`` Tensor[D, 1, M, M] (sigmoid of the mask of the predicted class, M = 2 x mask RoI
        size), ``num_detections`` Tensor[B] int64 (how many of the D rows belong to each image).
    ``loss`` weights the ``loss_*`` entries; ``postprocess`` scales boxes to ``images.original_sizes``, pastes the
    masks there (torchvision's ``paste_masks_in_image``) and thresholds them at ``mask_threshold``.

    The registered builders set ``rebuild_kwargs``: keyword arguments for the same builder that rebuild this exact
    architecture (resolved norm, frozen stages) without fetching pretrained or COCO weights, which is what
    loading a checkpoint needs, possibly on a machine without internet.
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: nn.Module,
        num_classes: int,
        min_size: int | None = 800,
        max_size: int | None = 1333,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        mask_threshold: float = 0.5,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        self.backbone = backbone
        self.neck = neck
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.mask_threshold = mask_threshold
        self.loss_weights = dict(loss_weights or {})

    # -- step 1 -----------------------------------------------------------------------------------
    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Losses (training) or the batch's raw detections (eval); see the class docstring for the keys."""
        if self.training and targets is None:
            raise ValueError(f"{type(self).__name__}.forward needs targets in training mode")
        tv_targets = self.torchvision_targets(targets, images) if self.training and targets is not None else None
        x = self.normalize(images)  # [B, 3, H, W]
        image_list = ImageList(x, [(int(h), int(w)) for h, w in images.image_sizes])
        features = self.neck(self.backbone(x))  # p2..p6: [B, C, H/s, W/s]
        proposals, rpn_losses = self.rpn(image_list, features, tv_targets)  # list of Tensor[P_i, 4]
        detections, head_losses = self.roi_heads(features, proposals, image_list.image_sizes, tv_targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        device = images.tensor.device
        mask_size = detections[0]["masks"].shape[-2:]  # (M, M), also when no region was detected
        return {
            "boxes": torch.cat([d["boxes"] for d in detections]),
            "scores": torch.cat([d["scores"] for d in detections]),
            "labels": torch.cat([d["labels"] for d in detections]) - 1,  # torchvision's 0 is the background
            "mask_probs": torch.cat([d["masks"] for d in detections]).reshape(-1, 1, *mask_size),
            "num_detections": torch.tensor([len(d["boxes"]) for d in detections], dtype=torch.int64, device=device),
        }

    def torchvision_targets(self, targets: Sequence[Instances], images: ImageBatch) -> list[dict[str, Tensor]]:
        """Targets as torchvision's heads take them: ``boxes`` float [N, 4], ``labels`` 1..K, ``masks`` uint8."""
        if len(targets) != len(images):
            raise ValueError(f"{len(targets)} targets for a batch of {len(images)} images")
        out = []
        device = images.tensor.device
        for i, inst in enumerate(targets):
            if inst.masks is None:
                raise ValueError(f"target of batch image {i} has no masks; {type(self).__name__} needs them")
            if len(inst) and (int(inst.labels.min()) < 0 or int(inst.labels.max()) >= self.num_classes):
                raise ValueError(
                    f"target of batch image {i} has labels {inst.labels.unique().tolist()} "
                    f"outside 0..{self.num_classes - 1}"
                )
            # objects whose mask vanished (e.g. cropped away by augmentation) have zero-size boxes, which would
            # give infinite box-regression targets; they carry no signal, so they are dropped here
            keep = (inst.boxes[:, 2] > inst.boxes[:, 0]) & (inst.boxes[:, 3] > inst.boxes[:, 1])
            out.append(
                {
                    "boxes": inst.boxes[keep].to(device, torch.float32),
                    "labels": inst.labels[keep].to(device, torch.int64) + 1,
                    "masks": inst.masks[keep].to(device, torch.uint8),
                }
            )
        return out

    # -- step 2 -----------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """The weighted ``loss_*`` scalars computed inside ``forward`` (torchvision's heads need the proposals'
        matching, so the losses cannot be recomputed from the outputs alone); ``targets`` is unused."""
        return weighted_losses(outputs, self.loss_weights)

    # -- step 3 -----------------------------------------------------------------------------------
    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """One ``Instances`` per image at ``images.original_sizes`` (``paste_region_masks``)."""
        return paste_region_masks(outputs, images, self.mask_threshold)


def weighted_losses(outputs: Mapping[str, Tensor], weights: Mapping[str, float]) -> dict[str, Tensor]:
    """The ``loss_*`` entries of ``outputs`` times their ``weights`` (1 when absent): the ``loss`` step of models
    that compute their losses inside ``forward`` (their region matching needs the targets and the outputs together)."""
    losses = {k: v * weights.get(k, 1.0) for k, v in outputs.items() if k.startswith("loss_")}
    if not losses:
        raise ValueError("no losses in the outputs; call forward in training mode with targets")
    return losses


def build_on_torchvision_backbone_with_rpn(
    assemble: Callable[..., Model],
    backbone_name: str,
    num_classes: int,
    min_size: int | None,
    max_size: int | None,
    *args: Any,
) -> Model:
    """``build_on_torchvision_backbone`` (``args``: pretrained, norm, trainable layers, options) for an ``assemble``
    that passes ``**rpn_options`` on to ``build_pyramid_rpn``, whose defaults then go into ``rebuild_kwargs`` too."""
    pretrained, norm, trainable_layers, options = args
    model = build_on_torchvision_backbone(
        assemble, backbone_name, num_classes, min_size, max_size, pretrained, norm, trainable_layers, options
    )
    model.rebuild_kwargs = {**keyword_defaults(build_pyramid_rpn), **model.rebuild_kwargs}
    return model


def pyramid_and_rpn(
    backbone: Backbone, fpn_channels: int, fpn_norm: str | None, rpn_options: Mapping[str, Any]
) -> tuple[FPN, RegionProposalNetwork]:
    """The two-stage models' FPN on every map of ``backbone`` (+ a max-pooled top level for the largest anchors;
    ``fpn_norm`` "gn", "bn" or None after its convs) and the RPN over its levels (``build_pyramid_rpn`` with
    ``rpn_options``: ``anchor_sizes``, ``aspect_ratios`` and the ``rpn_*`` keywords)."""
    neck = FPN(
        backbone.feature_names,
        backbone.feature_channels,
        backbone.feature_strides,
        out_channels=fpn_channels,
        top_pool=True,
        norm_layer=norm_layer(fpn_norm) if fpn_norm is not None else None,
    )
    return neck, build_pyramid_rpn(neck.feature_names, neck.feature_strides, fpn_channels, **rpn_options)


def paste_region_masks(outputs: dict[str, Tensor], images: ImageBatch, mask_threshold: float) -> list[Instances]:
    """Detections with RoI masks (``boxes``, ``scores``, ``labels``, ``mask_probs`` Tensor[D, 1, M, M],
    ``num_detections`` Tensor[B], boxes in resized-image pixels) as one ``Instances`` per image at
    ``images.original_sizes``: boxes rescaled and clipped, masks pasted into the image (torchvision's
    ``paste_masks_in_image``) and thresholded at ``mask_threshold``; shared by every method with an RoI mask head."""
    counts = [int(n) for n in outputs["num_detections"].tolist()]
    parts = zip(
        outputs["boxes"].split(counts),
        outputs["scores"].split(counts),
        outputs["labels"].split(counts),
        outputs["mask_probs"].split(counts),
        strict=True,
    )
    results = []
    for (boxes, scores, labels, probs), (h, w), (oh, ow) in zip(
        parts, images.image_sizes, images.original_sizes, strict=True
    ):
        boxes = clip_boxes(scale_boxes(boxes, (ow / w, oh / h)), (oh, ow))
        masks = torch.zeros((len(boxes), oh, ow), dtype=torch.bool, device=boxes.device)
        for start in range(0, len(boxes), _PASTE_CHUNK):
            end = start + _PASTE_CHUNK
            pasted = paste_masks_in_image(probs[start:end], boxes[start:end], (oh, ow))  # [n, 1, oh, ow]
            masks[start:end] = pasted[:, 0] > mask_threshold
        results.append(Instances((oh, ow), boxes=boxes, labels=labels, masks=masks, scores=scores))
    return results
