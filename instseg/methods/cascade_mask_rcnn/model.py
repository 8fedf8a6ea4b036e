"""``CascadeMaskRCNN`` (Cai & Vasconcelos, 2018/2019): three box stages at rising IoU thresholds, then the mask head."""

from __future__ import annotations

from instseg.methods.two_stage_segmenter import TwoStageSegmenter


class CascadeMaskRCNN(TwoStageSegmenter):
    """Cascade Mask R-CNN: FPN, the RPN, and a ``CascadeRoIHeads`` of box stages trained at IoU 0.5 / 0.6 / 0.7 on
    the boxes the stage before regressed, with the mask head on the last stage. Losses: ``loss_objectness``,
    ``loss_rpn_box_reg``, ``loss_classifier_{t}``, ``loss_box_reg_{t}`` for each stage t, ``loss_mask``; outputs
    and the three steps are ``TwoStageSegmenter``'s."""
