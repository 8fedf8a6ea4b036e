"""``evaluate_onnx``: the COCO figures of an exported file itself (``instseg eval model.onnx --data ...``), so that
the accuracy of what is deployed is measured, not only that of the checkpoint it came from."""

from __future__ import annotations

from pathlib import Path

from instseg.export.onnx_model import OnnxModel, to_instances


def evaluate_onnx(
    path: str | Path,
    ann_file: str | Path,
    images_dir: str | Path | None = None,
    max_dets: int = 100,
    score_thr: float = 0.5,
    per_class: bool = False,
    batch_size: int = 1,
    threads: int | None = None,
    backend: str = "onnxruntime",
) -> dict[str, float]:
    """COCO segm/bbox AP and matching figures of the exported file ``path`` on a COCO json, through the torch-free
    runtime (``instseg_runtime.OnnxPredictor``): the same images, evaluator and figures as ``evaluate_checkpoint``.

    Each image is resized by the file's own input rule (as ``instseg predict model.onnx`` does); up to
    ``batch_size`` images of one size share a run of the graph (``OnnxPredictor.predict_batch``).
    """
    from instseg.data.coco import CocoDataset
    from instseg.eval.evaluator import InstanceEvaluator

    model = OnnxModel(path, backend=backend, threads=threads)
    dataset = CocoDataset(ann_file, images_dir)
    if model.category_ids is not None and list(model.category_ids) != list(dataset.category_ids):
        raise ValueError(
            f"{dataset.ann_file}: category ids {dataset.category_ids} differ from those {path} was exported with "
            f"({list(model.category_ids)})"
        )
    evaluator = InstanceEvaluator(
        dataset.to_coco_dict(), dataset.category_ids, max_dets=max_dets, score_thr=score_thr, per_class=per_class
    )
    evaluator.reset()
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        images = [dataset.load_image(i) for i in indices]
        found = model.runtime.predict_batch(images, batch_size=batch_size)
        metas = [{"image_id": int(dataset.image_info(i)["id"])} for i in indices]
        evaluator.process(metas, [to_instances(f) for f in found])
    return evaluator.evaluate()
