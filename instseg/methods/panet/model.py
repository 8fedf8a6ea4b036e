"""``PANet`` (Liu et al., 2018): Mask R-CNN with the bottom-up path, adaptive feature pooling and a fused mask head."""

from __future__ import annotations

from instseg.methods.two_stage_segmenter import TwoStageSegmenter


class PANet(TwoStageSegmenter):
    """Path Aggregation Network for instance segmentation: a ``PathAugmentedFPN`` neck, the RPN, and torchvision's
    ``RoIHeads`` whose box and mask poolers read every level (``AllLevelRoIAlign``) and whose heads fuse the
    levels (``AdaptiveBoxHead``, ``FusedMaskHead``). Outputs, losses (``loss_objectness``, ``loss_rpn_box_reg``,
    ``loss_classifier``, ``loss_box_reg``, ``loss_mask``) and the three steps are ``TwoStageSegmenter``'s."""
