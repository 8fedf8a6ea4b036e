"""``instseg eval``: COCO mask/box AP and matching metrics of a results file or of a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from instseg.cli.arguments import check_device
from instseg.cli.errors import UsageFault, fail
from instseg.data.atomic_files import write_atomic

AP_ROWS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _from_checkpoint(
    checkpoint: Path,
    data: str,
    split: str | None,
    images: Path | None,
    max_dets: int,
    score_thr: float,
    device: str,
    per_class: bool,
    batch_size: int,
) -> dict[str, float]:
    """Run a checkpoint over a COCO data set through the engine's ``evaluate_checkpoint`` (imported lazily)."""
    try:
        from instseg.engine.evaluate import evaluate_checkpoint
    except ImportError as err:
        raise fail(f"evaluating a checkpoint needs instseg.engine.evaluate, which failed to import ({err})") from err
    try:
        from instseg.data.paths import resolve_annotations
    except ImportError as err:
        raise fail(f"resolving --data needs instseg.data.paths, which failed to import ({err})") from err
    if not checkpoint.is_file():
        raise fail(f"{checkpoint}: checkpoint file not found")
    if split is None and Path(data).is_dir():
        split = "val"  # a json file names its split itself
    ann_file, images_dir = resolve_annotations(data, split, images)
    if checkpoint.suffix == ".onnx":  # an exported file, run by the torch-free runtime (CPU)
        from instseg.export.onnx_eval import evaluate_onnx

        return evaluate_onnx(
            checkpoint, ann_file, images_dir, max_dets, score_thr, per_class=per_class, batch_size=batch_size
        )
    device = check_device(device, allow_auto=True)
    return evaluate_checkpoint(
        checkpoint,
        ann_file,
        images_dir,
        max_dets=max_dets,
        score_thr=score_thr,
        device=device,
        per_class=per_class,
        batch_size=batch_size,
    )


def _check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an ``--out`` that is a folder or one of the inputs (it would be overwritten)."""
    if out.is_dir():
        raise UsageFault(f"--out {out}: is a folder; name the metrics JSON file to write")
    for item in inputs:
        if item.exists() and out.exists() and out.resolve() == item.resolve():
            raise UsageFault(f"--out {out}: is the input {item}; it would be overwritten")


def _cell(metrics: dict[str, float], key: str) -> str:
    """A figure with 4 decimals, or '-' when the metrics lack it."""
    return f"{metrics[key]:.4f}" if key in metrics else "-"


def _per_class_rows(metrics: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """``(category, segm AP, segm AP50, bbox AP)`` of every category with ground truth (AP > -1), best first."""
    from instseg.eval.coco_metrics import per_class_key

    def opening(prefix: str) -> str:  # "segm/AP["
        return per_class_key(prefix, "AP", "")[:-1]

    prefix = "segm" if any(k.startswith(opening("segm")) for k in metrics) else "bbox"
    start = opening(prefix)
    rows = []
    for key, value in metrics.items():
        if key.startswith(start) and value > -1:
            name = key[len(start) : -1]
            ap50 = metrics.get(per_class_key(prefix, "AP50", name), -1.0)
            rows.append((name, value, ap50, metrics.get(per_class_key("bbox", "AP", name), -1.0)))
    return sorted(rows, key=lambda row: (-row[1], -row[2], row[0]))


def _print_per_class(metrics: dict[str, float]) -> None:
    """One row per category with ground truth, best AP first, and how many categories have AP > 0."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = _per_class_rows(metrics)
    learned = sum(1 for row in rows if row[1] > 0)
    table = Table(title="Per category")
    for column in ("category", "AP", "AP50", "bbox AP"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, ap, ap50, box_ap in rows:
        table.add_row(Text(name), f"{ap:.4f}", f"{ap50:.4f}", f"{box_ap:.4f}" if box_ap > -1 else "-")
    console = Console()
    console.print(table)
    console.print(f"{learned} of {len(rows)} categories with ground truth have AP > 0", soft_wrap=True)


def _print_tables(metrics: dict[str, float], max_dets: int, score_thr: float) -> None:
    """Two rich tables: COCO AP (segm and bbox side by side) and matching metrics per IoU threshold."""
    from rich.console import Console
    from rich.table import Table

    from instseg.eval.matching import MATCH_THRESHOLDS, threshold_name

    console = Console()
    title = f"COCO AP (max_dets={max_dets}, score_thr={score_thr:g})"
    ap = Table(title=title, min_width=len(title) + 2)  # wide enough that the title stays on one line
    kinds = [k for k in ("segm", "bbox") if f"{k}/AP" in metrics]
    ap.add_column("metric")
    for kind in kinds:
        ap.add_column(kind, justify="right")
    for row in (*AP_ROWS, f"AR@{max_dets}"):
        ap.add_row(row, *(_cell(metrics, f"{kind}/{row}") for kind in kinds))
    console.print(ap)
    if "match/score_thr" not in metrics:
        return
    names = ("precision", "recall", "F1", "PQ", "dsb")
    match = Table(
        title=f"Matching, pooled over images (score >= {score_thr:g}, max_dets={max_dets})",
        caption=f"dsb@0.5:0.95 = {_cell(metrics, 'match/dsb@0.5:0.95')}",
    )
    match.add_column("IoU >=")
    for name in names:
        match.add_column(name, justify="right")
    for t in MATCH_THRESHOLDS:
        suffix = threshold_name(t)
        match.add_row(suffix, *(_cell(metrics, f"match/{name}@{suffix}") for name in names))
    console.print(match)


def eval_command(
    checkpoint: Path | None = typer.Argument(
        None, help="Trained checkpoint (or exported .onnx file) to run on --data (instead of --gt/--pred)."
    ),
    gt: Path | None = typer.Option(None, "--gt", help="COCO ground-truth json."),
    pred: Path | None = typer.Option(None, "--pred", help="COCO results json (list of result dicts)."),
    data: str | None = typer.Option(None, "--data", help="With CHECKPOINT: data folder or annotation json."),
    split: str | None = typer.Option(
        None, "--split", help="With --data DIR: annotations/instances_{split}.json (default: val)."
    ),
    images: Path | None = typer.Option(None, "--images", help="With --data: images folder (default: beside it)."),
    max_dets: int = typer.Option(100, "--max-dets", min=1, help="Detections kept per image (crowded data: 1000)."),
    score_thr: float = typer.Option(0.5, "--score-thr", help="Score threshold of the matching metrics."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON instead of tables."),
    out: Path | None = typer.Option(None, "--out", help="Also write the metrics JSON to this file."),
    device: str = typer.Option("auto", "--device", help="With CHECKPOINT: cpu, cuda, cuda:1 ... (auto: cuda if any)."),
    per_class: bool = typer.Option(False, "--per-class", help="Also each category's AP and AP50."),
    batch_size: int = typer.Option(
        1,
        "--batch-size",
        min=1,
        help="With CHECKPOINT: images per pass (>1 pads to the largest: faster on GPU, "
        "but borders then see padding that `instseg predict` does not).",
    ),
) -> None:
    """Evaluate a COCO results file (--gt, --pred) or a checkpoint (CKPT --data DIR): mask/box AP, F1, PQ."""
    metrics: dict[str, Any]
    if out is not None:  # checked before the evaluation runs: a bad --out must not cost the whole run
        _check_out(out, [p for p in (checkpoint, gt, pred, Path(data) if data else None) if p is not None])
    if checkpoint is not None:
        if gt is not None or pred is not None:
            raise typer.BadParameter("give either CHECKPOINT --data ... or --gt/--pred, not both")
        if data is None:
            raise typer.BadParameter("CHECKPOINT needs --data (a data folder or an annotation json)")
        try:
            metrics = _from_checkpoint(
                checkpoint, data, split, images, max_dets, score_thr, device, per_class, batch_size
            )
        except ValueError as err:
            raise fail(str(err)) from err
    else:
        if gt is None or pred is None:
            raise typer.BadParameter("give --gt ANN.json and --pred RESULTS.json, or a CHECKPOINT with --data")
        from instseg.eval.evaluator import evaluate_results
        from instseg.eval.results import load_results

        try:
            metrics = evaluate_results(
                gt, load_results(pred), max_dets=max_dets, score_thr=score_thr, source=str(pred), per_class=per_class
            )
        except ValueError as err:
            raise fail(str(err)) from err
    text = json.dumps(metrics, indent=2)
    if out is not None:
        write_atomic(out, lambda f: f.write((text + "\n").encode("utf-8")))
    if as_json:
        typer.echo(text)
    else:
        _print_tables(metrics, max_dets, score_thr)
        if per_class:
            _print_per_class(metrics)
