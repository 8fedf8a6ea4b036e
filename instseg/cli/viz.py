"""``instseg viz``: draw a COCO annotation file or a COCO results file over its images, one PNG per image."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from instseg.cli.errors import fail

MAX_SKIPPED_SHOWN = 20  # items skipped while loading that are named one by one


def _read_json(path: Path) -> Any:
    """Parse a json file; a missing or malformed file raises ``ValueError`` naming it."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from err


def _results_by_image(results: list[Any], source: Path, score_thr: float) -> dict[int, list[dict[str, Any]]]:
    """Group result dicts with ``score >= score_thr`` by image id, checking the keys drawing needs."""
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, res in enumerate(results):
        if not isinstance(res, dict) or "image_id" not in res or "category_id" not in res:
            raise ValueError(f"{source}: result #{i} must be a dict with 'image_id' and 'category_id'")
        if "segmentation" not in res and "bbox" not in res:
            raise ValueError(f"{source}: result #{i} (image {res['image_id']}) has neither 'segmentation' nor 'bbox'")
        if float(res.get("score", 1.0)) >= score_thr:
            grouped[int(res["image_id"])].append(res)
    return grouped


def _results_to_instances(results: list[dict[str, Any]], dataset: Any, size: tuple[int, int], source: Path) -> Any:
    """``Instances`` (masks when every result has one, else boxes) of one image's results, by decreasing score."""
    import numpy as np
    import torch

    from instseg.ops.boxes import xywh_to_xyxy
    from instseg.structures import Instances
    from instseg.structures.masks import segmentation_to_mask

    h, w = size
    results = sorted(results, key=lambda r: -float(r.get("score", 1.0)))
    labels = []
    for res in results:
        try:
            labels.append(dataset.label_of(int(res["category_id"])))
        except KeyError as err:
            raise ValueError(
                f"{source}: image {res['image_id']}: category_id {res['category_id']} is not in {dataset.ann_file}"
            ) from err
    scores = torch.tensor([float(r.get("score", 1.0)) for r in results], dtype=torch.float32)
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    if results and all("segmentation" in r for r in results):
        try:
            if all(isinstance(r["segmentation"], dict) for r in results):  # RLEs: decoded into crops, not frames
                from instseg.data.label_images import rles_to_box_masks

                box_masks = rles_to_box_masks([r["segmentation"] for r in results], h, w)
                return Instances(size, masks=box_masks, labels=label_tensor, scores=scores)
            masks = np.stack([segmentation_to_mask(r["segmentation"], h, w) for r in results])
        except ValueError as err:
            raise ValueError(f"{source}: image {results[0]['image_id']}: {err}") from err
        return Instances(size, masks=torch.from_numpy(masks), labels=label_tensor, scores=scores)
    boxes = torch.tensor([[float(v) for v in r.get("bbox", [0, 0, 0, 0])] for r in results], dtype=torch.float32)
    return Instances(size, boxes=xywh_to_xyxy(boxes.reshape(-1, 4)), labels=label_tensor, scores=scores)


def viz(
    annotations: Path = typer.Argument(..., help="COCO annotation json, or COCO results json (a list; needs --gt)."),
    out: Path = typer.Option(..., "--out", help="Folder for the <image stem>_overlay.png files."),
    images: Path | None = typer.Option(None, "--images", help="Images folder (default: the json's ../images)."),
    gt: Path | None = typer.Option(None, "--gt", help="With a results json: the annotation json it refers to."),
    score_thr: float = typer.Option(
        0.3, "--score-thr", help="With a results json: draw results scoring at least this."
    ),
    max_images: int | None = typer.Option(None, "--max-images", min=1, help="Draw at most this many images."),
    alpha: float = typer.Option(0.45, "--alpha", min=0.0, max=1.0, help="Opacity of the mask fill."),
    boxes: bool = typer.Option(True, "--boxes/--no-boxes", help="Draw boxes."),
    labels: bool | None = typer.Option(
        None, "--labels/--no-labels", help="Draw class names and scores (default: only when at most 40 objects)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Empty an existing non-empty --out folder first."),
) -> None:
    """Draw annotations (ANN.json) or predictions (RESULTS.json --gt ANN.json) over their images as PNG overlays."""
    from PIL import Image

    from instseg.data.coco import CocoDataset
    from instseg.viz.overlay import draw_instances

    try:
        data = _read_json(annotations)
        if isinstance(data, list):
            if gt is None:
                raise ValueError(f"{annotations}: a results file (a JSON list) needs --gt ANN.json for image names")
            grouped = _results_by_image(data, annotations, score_thr)
            dataset = CocoDataset(gt, images, skip_invalid=True)
            unknown = sorted(set(grouped) - set(dataset.image_ids))
            if unknown:
                raise ValueError(f"{annotations}: results for image ids not in {gt}: {unknown[:10]}")
        elif isinstance(data, dict):
            if gt is not None:
                raise ValueError(f"{annotations}: is an annotation file; --gt is only for results files")
            grouped = {}
            dataset = CocoDataset(annotations, images, skip_invalid=True)
        else:
            raise ValueError(f"{annotations}: expected a COCO json object or a results list, got {type(data).__name__}")
    except ValueError as err:
        raise fail(str(err)) from err

    from instseg.data.output_paths import prepare_output_dir, unique_output_stems

    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    names = [Path(str(dataset.image_info(i)["file_name"])) for i in range(count)]
    try:  # a reused --out never mixes stale overlays with new ones; inputs are never inside what is emptied
        inputs = [annotations, *([gt] if gt is not None else []), *(dataset.images_dir / n for n in names)]
        prepare_output_dir(out, inputs=inputs, overwrite=overwrite)
    except ValueError as err:
        raise fail(str(err), code=2) from err
    stems = unique_output_stems(names)  # two images named x.png in different folders get two overlays
    written, skipped = 0, 0
    for index in range(count):
        info = dataset.image_info(index)
        try:
            pixels = dataset.load_image(index)
            if isinstance(data, list):
                size = (int(info["height"]), int(info["width"]))
                target = _results_to_instances(grouped.get(int(info["id"]), []), dataset, size, annotations)
            else:
                target = dataset.load_target(index)
        except ValueError as err:
            typer.echo(f"skipped image {info['id']} ({info['file_name']}): {err}", err=True)
            skipped += 1
            continue
        overlay = draw_instances(pixels, target, dataset.class_names, alpha=alpha, show_boxes=boxes, show_labels=labels)
        Image.fromarray(overlay).save(out / f"{stems[index]}_overlay.png")
        written += 1
    for item in dataset.skipped[:MAX_SKIPPED_SHOWN]:  # found up front (unreadable files, invalid annotations)
        typer.echo(f"skipped {item}", err=True)
    message = f"wrote {written} overlay(s) to {out}"
    if skipped or dataset.skipped:
        message += f"; skipped {skipped + len(dataset.skipped)} unreadable or invalid image(s)/annotation(s)"
    typer.echo(message)
    if written == 0 and count > 0:
        raise typer.Exit(code=1)
