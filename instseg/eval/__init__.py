"""Evaluation: the evaluator protocol, COCO mask/box AP (faster-coco-eval) and matching-based F1/PQ/DSB score."""

from instseg.eval.coco_metrics import coco_ap, summarize_coco
from instseg.eval.evaluator import DatasetEvaluator, InstanceEvaluator, compute_metrics, evaluate_results
from instseg.eval.matching import MATCH_THRESHOLDS, matching_metrics
from instseg.eval.results import load_ground_truth, load_results, validate_results

__all__ = [
    "MATCH_THRESHOLDS",
    "DatasetEvaluator",
    "InstanceEvaluator",
    "coco_ap",
    "compute_metrics",
    "evaluate_results",
    "load_ground_truth",
    "load_results",
    "matching_metrics",
    "summarize_coco",
    "validate_results",
]
