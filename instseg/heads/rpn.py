"""Region proposal network of the two-stage segmenters, built from torchvision's anchor generator and RPN."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead


def build_rpn(
    in_channels: int,
    anchor_sizes: Sequence[int | Sequence[int]],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    pre_nms_top_n: tuple[int, int] = (2000, 1000),
    post_nms_top_n: tuple[int, int] = (2000, 1000),
    nms_thresh: float = 0.7,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    score_thresh: float = 0.0,
) -> RegionProposalNetwork:
    """Region proposal network over every pyramid level; ``anchor_sizes`` has one entry (a size or a tuple of
    sizes) per level, finest first. ``pre_nms_top_n``/``post_nms_top_n`` are ``(training, testing)`` and are per
    level / per image as in torchvision."""
    sizes = tuple((int(s),) if isinstance(s, int) else tuple(int(v) for v in s) for s in anchor_sizes)
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=(tuple(float(a) for a in aspect_ratios),) * len(sizes))
    head = RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=fg_iou_thresh,
        bg_iou_thresh=bg_iou_thresh,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        pre_nms_top_n={"training": pre_nms_top_n[0], "testing": pre_nms_top_n[1]},
        post_nms_top_n={"training": post_nms_top_n[0], "testing": post_nms_top_n[1]},
        nms_thresh=nms_thresh,
        score_thresh=score_thresh,
    )


def build_pyramid_rpn(
    feature_names: Sequence[str],
    feature_strides: Sequence[int],
    channels: int,
    *,
    anchor_sizes: Sequence[int | Sequence[int]] | None = None,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_nms_thresh: float = 0.7,
    rpn_fg_iou_thresh: float = 0.7,
    rpn_bg_iou_thresh: float = 0.3,
    rpn_batch_size_per_image: int = 256,
    rpn_positive_fraction: float = 0.5,
) -> RegionProposalNetwork:
    """``build_rpn`` over a neck's levels (``feature_names``/``feature_strides``, ``channels`` each) under the flat
    ``rpn_*`` keyword names the two-stage builders and their configs use; ``anchor_sizes`` has one entry per level
    (default 8 x the level's stride)."""
    sizes = list(anchor_sizes) if anchor_sizes is not None else [8 * s for s in feature_strides]
    if len(sizes) != len(feature_names):
        raise ValueError(
            f"anchor_sizes needs one entry per pyramid level ({len(feature_names)}: "
            f"strides {list(feature_strides)}), got {len(sizes)}"
        )
    return build_rpn(
        channels,
        sizes,
        aspect_ratios,
        pre_nms_top_n=(rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test),
        post_nms_top_n=(rpn_post_nms_top_n_train, rpn_post_nms_top_n_test),
        nms_thresh=rpn_nms_thresh,
        fg_iou_thresh=rpn_fg_iou_thresh,
        bg_iou_thresh=rpn_bg_iou_thresh,
        batch_size_per_image=rpn_batch_size_per_image,
        positive_fraction=rpn_positive_fraction,
    )
