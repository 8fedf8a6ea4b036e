"""``MaskRCNN`` (He et al., 2017): backbone + FPN, region proposals, then box and mask heads per region."""

from __future__ import annotations

from instseg.methods.two_stage_segmenter import TwoStageSegmenter


class MaskRCNN(TwoStageSegmenter):
    """Mask R-CNN on torchvision's RPN and ``RoIHeads`` (box head, then a mask head on the detected boxes); the
    outputs and the three steps are ``TwoStageSegmenter``'s, with the RoI heads' losses ``loss_classifier``,
    ``loss_box_reg`` and ``loss_mask``."""
