"""``HybridTaskCascade`` (Chen et al., 2019): a cascade whose box and mask branches interleave, with mask information
flow between stages and semantic features fused into every region."""

from __future__ import annotations

from instseg.methods.two_stage_segmenter import TwoStageSegmenter


class HybridTaskCascade(TwoStageSegmenter):
    """Hybrid Task Cascade: FPN, the RPN and ``HybridTaskCascadeRoIHeads``. Losses: ``loss_objectness``,
    ``loss_rpn_box_reg``, per stage t ``loss_classifier_{t}``, ``loss_box_reg_{t}`` and ``loss_mask_{t}``, and
    ``loss_semantic``; outputs and the three steps are ``TwoStageSegmenter``'s. Without stuff labels the semantic
    branch learns the union of the instance masks (foreground per class against background)."""
