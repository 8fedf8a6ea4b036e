"""``instseg predict``: segment images, folders or every image of an annotation file (a shell over
``instseg.inference.predict_many``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from instseg.cli.errors import fail

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")  # .onnx: an exported file, run by onnxruntime
MIN_TILE = 64  # smaller tiles see too little context around an object to be useful
IMAGE_OVERLAP, SLIDE_OVERLAP, SLIDE_TILE = 256, 128, 1024  # --tile-overlap defaults; --slide's --tile default


def _split_checkpoint(inputs: list[str]) -> tuple[Path | None, list[str]]:
    """The checkpoint (first input, when it has a checkpoint suffix) and the image inputs; a checkpoint given
    anywhere else is refused rather than silently read as an image."""
    checkpoint = None
    if inputs and inputs[0].lower().endswith(CHECKPOINT_SUFFIXES):
        checkpoint, inputs = Path(inputs[0]), inputs[1:]
    misplaced = [item for item in inputs if item.lower().endswith(CHECKPOINT_SUFFIXES)]
    if misplaced:
        raise fail(f"{misplaced[0]}: a checkpoint must be the first input (instseg predict CKPT IMAGES...)", code=2)
    return checkpoint, inputs


def _check_device(device: str) -> None:
    """Refuse (exit code 2) a device string torch cannot parse, or a CUDA device this machine does not have."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise fail(f"--device {device}: not a device ({err})", code=2) from err
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise fail(f"--device {device}: no such CUDA device on this machine", code=2)


def predict(
    inputs: list[str] | None = typer.Argument(None, help="[CHECKPOINT] then images, folders or glob patterns."),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder (new or empty)."),
    data: Path | None = typer.Option(None, "--data", help="Predict every image of this COCO json (keeps its ids)."),
    images: Path | None = typer.Option(None, "--images", help="Image folder for --data (default: sibling images/)."),
    score_thr: float | None = typer.Option(None, "--score-thr", help="Drop instances below this score."),
    tile: int | None = typer.Option(
        None,
        "--tile",
        help="Tile size for large images (default: tile only images longer than 2048 px; 0: never). --slide: the "
        "slide's tile size (default 1024).",
    ),
    tile_overlap: int | None = typer.Option(
        None, "--tile-overlap", help="Pixels shared by neighbouring tiles (default 256; 128 with --slide)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    overlays: bool = typer.Option(True, "--overlays/--no-overlays", help="Write overlay PNGs."),
    label_maps: bool = typer.Option(
        True, "--label-maps/--no-label-maps", help="Write label maps (16-bit PNG; 32-bit TIFF past 65535 objects)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Empty an existing non-empty --out folder first."),
    every: int = typer.Option(1, "--every", help="Videos: predict one frame in N (tracked; the others skipped)."),
    use_ray: bool = typer.Option(False, "--ray", help="Predict on Ray (the 'ray' extra): sharded and resumable."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="--ray: cluster address (auto; default local)."),
    concurrency: int = typer.Option(2, "--concurrency", help="--ray: model actors (each loads the model once)."),
    slide: bool = typer.Option(
        False,
        "--slide",
        help="Each input is one whole-slide image (TIFF/SVS/OME-TIFF or zarr) read tile by tile (--tile, default "
        "1024): labels.zarr, objects.jsonl, slide.json (in OUT/<stem>/ each when several).",
    ),
    level: int = typer.Option(0, "--level", help="--slide: pyramid level (0 = full resolution)."),
    precision: str = typer.Option(
        "auto", "--precision", help="--slide: auto (bfloat16 where the CPU has it natively), float32 or bfloat16."
    ),
    label_tiff: bool = typer.Option(False, "--label-tiff", help="--slide: also write labels.tif (tiled BigTIFF)."),
) -> None:
    """Segment images with a checkpoint (or the shipped default model): COCO results json, label maps, overlays."""
    from rich.console import Console
    from rich.progress import Progress

    from instseg.data.output_paths import prepare_output_dir
    from instseg.engine.checkpoint import load_model
    from instseg.inference.cpu_fast import PRECISIONS
    from instseg.inference.predict_many import ImagePrediction, image_jobs, predict_many
    from instseg.inference.predictor import AUTO_TILE_ABOVE, Predictor
    from instseg.methods.segmenter import InstanceSegmenter

    checkpoint, image_inputs = _split_checkpoint(list(inputs or []))
    if precision not in PRECISIONS:
        raise fail(f"--precision {precision}: must be one of {', '.join(PRECISIONS)}", code=2)
    if not slide and (precision != "auto" or level != 0 or label_tiff):
        raise fail("--precision, --level and --label-tiff are options of --slide (whole-slide images)", code=2)
    if slide and tile == 0:
        raise fail("--tile 0: a slide is always predicted tile by tile; give a tile size (default 1024)", code=2)
    if tile is not None and tile != 0 and tile < MIN_TILE:
        raise fail(f"--tile {tile}: give 0 (never tile) or a tile size of at least {MIN_TILE} pixels", code=2)
    if slide:
        tile = tile or SLIDE_TILE
    if tile_overlap is None:
        tile_overlap = SLIDE_OVERLAP if slide else IMAGE_OVERLAP
    if tile_overlap < 0 or (tile and tile_overlap >= tile):
        raise fail(f"--tile-overlap {tile_overlap}: must be >= 0 and smaller than the tile size", code=2)
    if score_thr is not None and not 0.0 <= score_thr <= 1.0:
        raise fail(f"--score-thr {score_thr}: must be within [0, 1]", code=2)
    _check_device(device)
    from instseg.cli import predict_scale  # videos (tracked) and Ray: the scale paths, shells over their modules
    from instseg.inference.video import is_video_file

    scale_kwargs = {"score_thr": score_thr, "tile_size": tile or None, "tile_overlap": tile_overlap}
    scale_kwargs["auto_tile_above"] = None if tile == 0 else AUTO_TILE_ABOVE
    videos = [item for item in image_inputs if is_video_file(item)]
    if slide:
        if use_ray or data is not None or videos:
            raise fail("--slide predicts whole-slide images in this process; not with --ray, --data or videos", code=2)
        options = {"level": level, "tile": tile or SLIDE_TILE, "overlap": tile_overlap, "label_tiff": label_tiff}
        predict_scale.predict_slides(checkpoint, image_inputs, out, device, precision, score_thr, options, overwrite)
        return
    if (use_ray or videos) and data is not None:
        raise fail("--data predicts an annotation file's images in one process; not with --ray or videos", code=2)
    if use_ray:
        predict_scale.predict_on_ray(
            checkpoint, image_inputs, out, ray_address, concurrency, device, scale_kwargs, overwrite
        )
        return
    if videos:
        if len(videos) != len(image_inputs):
            raise fail(f"{videos[0]}: give videos alone, not mixed with images", code=2)
        predict_scale.predict_videos(checkpoint, videos, out, every, device, scale_kwargs, overwrite)
        return
    protected: list[Path] = []
    try:
        if data is not None:
            from instseg.data.coco import load_coco_json
            from instseg.data.paths import resolve_annotations

            ann_file, images_dir = resolve_annotations(data, None, images)
            gt = load_coco_json(ann_file)
            jobs = [(int(im["id"]), images_dir / im["file_name"]) for im in gt["images"]]
            protected.append(Path(ann_file))
        else:
            if not image_inputs:
                raise typer.BadParameter("give images, folders or patterns to predict, or --data ANN.json")
            jobs = image_jobs(image_inputs)
    except ValueError as err:
        raise fail(str(err), code=2) from err
    if not jobs:
        raise typer.BadParameter("no image files found in the inputs")
    try:  # before any prediction work: a reused or unsafe --out is refused at once
        prepare_output_dir(out, inputs=[*(path for _, path in jobs), *protected], overwrite=overwrite)
    except ValueError as err:
        raise fail(str(err), code=2) from err
    model: Any  # an InstanceSegmenter, or an OnnxModel that duck-types what Predictor drives
    try:
        if checkpoint is not None and checkpoint.suffix.lower() == ".onnx":
            from instseg.export.onnx_model import OnnxModel

            model = OnnxModel(checkpoint)  # duck-types the model interface Predictor drives
        else:
            model = load_model(checkpoint, device=device)
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from err
    if not isinstance(model, InstanceSegmenter) and type(model).__name__ != "OnnxModel":
        raise fail(f"{checkpoint}: holds a {type(model).__name__}, not an instseg model", code=1)
    category_ids = model.category_ids
    if category_ids is None and data is not None:
        category_ids = sorted(int(c["id"]) for c in gt["categories"])
    predictor = Predictor(
        model,
        device=device,
        score_thr=score_thr,
        tile_size=tile or None,
        tile_overlap=tile_overlap,
        auto_tile_above=None if tile == 0 else AUTO_TILE_ABOVE,
    )

    console = Console(stderr=True, soft_wrap=True, highlight=False)  # paths are never wrapped nor styled
    with Progress(console=console, transient=True, disable=len(jobs) < 2) as progress:
        task = progress.add_task("predicting", total=len(jobs))

        def report(item: ImagePrediction) -> None:
            if item.error is not None:
                console.print(f"skipped {item.error}", markup=False)
            progress.advance(task)

        summary = predict_many(
            predictor,
            jobs,
            out,
            category_ids=category_ids,
            class_names=model.class_names,
            label_maps=label_maps,
            overlays=overlays,
            prepared=True,
            on_item=report,
        )
    skipped = f"; {len(summary.skipped)} unreadable images skipped" if summary.skipped else ""
    console.print(
        f"{summary.images} images, {summary.instances} instances -> {summary.results_path}{skipped}", markup=False
    )
    if summary.images == 0:
        raise typer.Exit(code=1)
