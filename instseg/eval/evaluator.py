"""The evaluator protocol (reset / process / evaluate) and ``InstanceEvaluator``: COCO AP plus matching metrics.

An evaluator sees the predictions of a data loader batch by batch (``process``), keeps only compact COCO
result dicts (RLE masks), and computes every figure at the end (``evaluate``), so training loops, the
``instseg eval`` command and benchmarks share one code path. Under ``torch.distributed`` the per-rank results
are gathered with ``all_gather_object`` and rank 0 computes the figures (other ranks return ``{}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from faster_coco_eval import COCO

from instseg.eval.coco_metrics import coco_ap, coco_max_dets
from instseg.eval.matching import gt_rles_by_image, matching_metrics
from instseg.eval.results import load_ground_truth, validate_results
from instseg.structures.instances import Instances


@runtime_checkable
class DatasetEvaluator(Protocol):
    """What the trainer and the ``eval`` command call: reset, feed batches, read figures."""

    def reset(self) -> None:
        """Forget everything processed so far."""

    def process(self, metas: Sequence[Mapping[str, Any]], predictions: Sequence[Instances]) -> None:
        """Take one batch: ``metas[i]['image_id']`` identifies the image of ``predictions[i]``."""

    def evaluate(self) -> dict[str, float]:
        """Figures over everything processed (``{}`` on non-zero ranks under torch.distributed)."""


def compute_metrics(
    gt: COCO,
    results: Sequence[dict[str, Any]],
    max_dets: int = 100,
    score_thr: float = 0.5,
    image_ids: Sequence[int] | None = None,
    gt_rles: dict[int, tuple[list, list[int]]] | None = None,
    per_class: bool = False,
) -> dict[str, float]:
    """Every figure of validated ``results``: ``segm/*`` and ``match/*`` when they carry masks, ``bbox/*`` always,
    plus ``max_dets``. ``image_ids`` restricts the images (default: all ground-truth images); ``per_class`` adds
    each category's AP and AP50 (``segm/AP[name]``, ...)."""
    coco_max_dets(max_dets)  # validates
    out: dict[str, float] = {}
    if results:
        masks = "segmentation" in results[0]
    else:  # no predictions at all: mask figures (all zero) when the ground truth has masks
        masks = all(ann.get("segmentation") for ann in gt.dataset["annotations"])
    if masks:
        out.update(coco_ap(gt, results, "segm", max_dets, image_ids, per_class))
    out.update(coco_ap(gt, results, "bbox", max_dets, image_ids, per_class))
    if masks:
        out.update(matching_metrics(gt, results, score_thr, image_ids, gt_rles))
    out["max_dets"] = float(max_dets)
    return out


def evaluate_results(
    gt_json: str | Path | Mapping[str, Any],
    results: Sequence[dict[str, Any]],
    max_dets: int = 100,
    score_thr: float = 0.5,
    source: str = "results",
    per_class: bool = False,
) -> dict[str, float]:
    """Evaluate COCO result dicts (e.g. a loaded results file) against a ground-truth json path or dict.

    Results are validated first (see ``instseg.eval.results.validate_results``; errors name ``source``, e.g. the
    results file); all ground-truth images count, so an image without predictions contributes its objects as misses.
    """
    gt = load_ground_truth(gt_json)
    return compute_metrics(gt, validate_results(results, gt, source), max_dets, score_thr, per_class=per_class)


class InstanceEvaluator:
    """COCO segm/bbox AP and matching metrics over the images passed to :meth:`process`.

    ``category_ids[label]`` is the data set's category id of contiguous label ``label`` (as
    ``CocoDataset.category_ids``); ``None`` means the ground truth's category ids in increasing order.
    Predictions must be at the image's original size; predictions without scores count as score 1.0.
    Only processed images are evaluated; an image seen twice (DistributedSampler pads ranks by repeating
    images) keeps its first predictions. ``per_class`` adds each category's AP and AP50 to the figures.
    """

    def __init__(
        self,
        ann_file_or_coco_dict: str | Path | Mapping[str, Any],
        category_ids: Sequence[int] | None = None,
        max_dets: int = 100,
        score_thr: float = 0.5,
        per_class: bool = False,
    ) -> None:
        self.gt = load_ground_truth(ann_file_or_coco_dict)
        self.per_class = per_class
        self.source = (
            "<ground-truth dict>" if isinstance(ann_file_or_coco_dict, Mapping) else str(ann_file_or_coco_dict)
        )
        coco_max_dets(max_dets)
        self.max_dets = max_dets
        self.score_thr = float(score_thr)
        gt_cats = sorted(int(c) for c in self.gt.cats)
        self.category_ids = list(category_ids) if category_ids is not None else gt_cats
        unknown = [c for c in self.category_ids if c not in self.gt.cats]
        if unknown:
            raise ValueError(f"{self.source}: category ids {unknown} are not categories of the ground truth")
        self._gt_rles: dict[int, tuple[list, list[int]]] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget all processed predictions."""
        self._results: dict[int, list[dict[str, Any]]] = {}

    def process(self, metas: Sequence[Mapping[str, Any]], predictions: Sequence[Instances]) -> None:
        """Store COCO result dicts (RLE masks) of one batch; ``metas[i]['image_id']`` names the gt image."""
        if len(metas) != len(predictions):
            raise ValueError(f"process: {len(metas)} metas but {len(predictions)} predictions")
        for meta, pred in zip(metas, predictions, strict=True):
            if "image_id" not in meta:
                raise ValueError(f"process: meta {dict(meta)} has no 'image_id'")
            image_id = int(meta["image_id"])
            img = self.gt.imgs.get(image_id)
            if img is None:
                raise ValueError(
                    f"{self.source}: predictions for image_id={image_id}, which is not in the ground truth"
                )
            size = (int(img["height"]), int(img["width"]))
            if pred.image_size != size:
                raise ValueError(
                    f"{self.source}: predictions for image_id={image_id} are at size {pred.image_size}, "
                    f"the image is {size}; postprocess must return original-size predictions"
                )
            if image_id in self._results:
                continue
            self._results[image_id] = pred.to_coco(image_id, self.category_ids)

    def _gathered(self) -> dict[int, list[dict[str, Any]]] | None:
        """All ranks' results (first occurrence of an image wins), or None on ranks other than 0."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self._results
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self._results)
        if dist.get_rank() != 0:
            return None
        merged: dict[int, list[dict[str, Any]]] = {}
        for part in parts:
            for image_id, entries in part.items():
                merged.setdefault(image_id, entries)
        return merged

    def evaluate(self) -> dict[str, float]:
        """All figures (see :func:`compute_metrics`) over the processed images; ``{}`` if none or not rank 0."""
        per_image = self._gathered()
        if not per_image:
            return {}
        results = [r for image_id in sorted(per_image) for r in per_image[image_id]]
        has_masks = any("segmentation" in r for r in results)
        if has_masks and self._gt_rles is None:
            self._gt_rles = gt_rles_by_image(self.gt)
        return compute_metrics(
            self.gt, results, self.max_dets, self.score_thr, sorted(per_image), self._gt_rles, self.per_class
        )
