"""Evaluation of a model over a data loader (used during training) and of a saved checkpoint on a COCO data set."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from instseg.eval.evaluator import DatasetEvaluator
from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import ImageBatch


@torch.no_grad()
def evaluate_model(
    model: InstanceSegmenter,
    loader: Iterable[Any],
    evaluator: DatasetEvaluator,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Predict every batch of ``loader`` (``(ImageBatch raw, targets, metas)``) and return the evaluator's figures.

    Per batch (raw pixels; the model normalises): ``preds = model.postprocess(model(batch), batch)`` (at the
    original image sizes); ``evaluator.process(metas, preds)``. Under ``torch.distributed`` every rank calls this
    on its shard and the evaluator gathers (figures on rank 0, ``{}`` elsewhere). The model's train/eval mode is
    restored afterwards.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    evaluator.reset()
    autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    try:
        for batch, _targets, metas in loader:
            images = model_input(model, batch.to(device, non_blocking=True))
            if channels_last:
                images.tensor = images.tensor.contiguous(memory_format=torch.channels_last)
            with autocast:
                outputs = model(images)
            predictions = [p.to("cpu") for p in model.postprocess(outputs, images)]
            evaluator.process(metas, predictions)
        return evaluator.evaluate()
    finally:
        model.train(was_training)


def model_input(model: InstanceSegmenter, batch: ImageBatch) -> ImageBatch:
    """``batch`` (raw pixels as the collate pads them) resized and padded by the model's own rule, exactly as
    ``model.predict`` prepares an image, so that evaluation scores what prediction would give; predictions still
    map back to ``batch.original_sizes``."""
    crops = [batch.tensor[i, :, :h, :w] for i, (h, w) in enumerate(batch.image_sizes)]
    prepared = model.preprocess(crops)
    return ImageBatch(prepared.tensor, prepared.image_sizes, batch.original_sizes)


def evaluate_checkpoint(
    checkpoint: str | Path,
    ann_file: str | Path,
    images_dir: str | Path | None = None,
    max_dets: int = 100,
    score_thr: float = 0.5,
    device: str = "cpu",
    batch_size: int = 2,
    num_workers: int = 0,
    per_class: bool = False,
) -> dict[str, float]:
    """COCO segm/bbox AP and matching figures of a checkpoint on a COCO json (images resized by the model's rule).

    The model is rebuilt from the checkpoint (EMA weights when present); images are resized by the model's own
    rule, as ``instseg predict`` does, and predictions are scored at the original image size. The
    data set's categories must be those the model was trained on. ``per_class`` adds each category's AP/AP50.
    """
    from instseg.data.coco import CocoDataset
    from instseg.data.collate import collate_batch
    from instseg.data.loader import build_loader
    from instseg.engine.checkpoint import load_checkpoint, model_from_state
    from instseg.engine.distributed import is_distributed
    from instseg.eval.evaluator import InstanceEvaluator

    state = load_checkpoint(checkpoint)
    model = model_from_state(state, str(checkpoint), device)
    if not isinstance(model, InstanceSegmenter):
        raise TypeError(f"checkpoint {checkpoint}: {type(model).__name__} is not an instseg model")
    dataset = CocoDataset(ann_file, images_dir)
    trained_ids = model.category_ids
    if trained_ids is not None and list(trained_ids) != list(dataset.category_ids):
        raise ValueError(
            f"{dataset.ann_file}: category ids {dataset.category_ids} differ from those checkpoint {checkpoint} "
            f"was trained on ({list(trained_ids)})"
        )
    evaluator = InstanceEvaluator(
        dataset.to_coco_dict(), dataset.category_ids, max_dets=max_dets, score_thr=score_thr, per_class=per_class
    )
    loader = build_loader(
        dataset,  # type: ignore[arg-type]
        batch_size,
        shuffle=False,
        num_workers=num_workers,
        distributed=is_distributed(),
        collate_fn=collate_batch,
    )
    return evaluate_model(model, loader, evaluator, device)  # type: ignore[arg-type]
