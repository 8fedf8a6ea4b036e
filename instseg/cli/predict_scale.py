"""The scale paths of ``instseg predict``: videos (tracked, PyAV), whole-slide images (``--slide``: tifffile +
zarr, tile by tile) and batch prediction on Ray (Ray Data)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instseg.cli.errors import fail


def _require(module: str, extra: str) -> None:
    """Refuse (exit code 2) when an optional extra is not installed, saying how to install it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise fail(f"this needs the '{extra}' extra: pip install 'instseg[{extra}]'", code=2)


def predict_videos(
    checkpoint: Path | None,
    videos: Sequence[str],
    out: Path,
    every: int,
    device: str,
    predictor_kwargs: dict[str, Any],
    overwrite: bool,
) -> None:
    """Predict and track each video into ``out``: ``<stem>_tracks.mp4``, ``_frames.jsonl`` and ``_vis.json``."""
    from rich.console import Console

    from instseg.data.output_paths import prepare_output_dir, unique_output_stems
    from instseg.inference.model_file import load_model_file
    from instseg.inference.predictor import Predictor
    from instseg.inference.video import predict_video

    _require("av", "video")
    if every < 1:
        raise fail(f"--every {every}: must be at least 1 (predict one frame in N)", code=2)
    paths = [Path(v) for v in videos]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise fail(f"{missing[0]}: no such video file", code=2)
    stems = unique_output_stems(paths)
    try:
        prepare_output_dir(out, inputs=paths, overwrite=overwrite)
        model = load_model_file(checkpoint, device=device)  # a checkpoint or an exported .onnx file
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err), code=2) from err
    predictor = Predictor(model, device=device, **predictor_kwargs)  # type: ignore[arg-type]
    category_ids = getattr(model, "category_ids", None)
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    for video_id, (path, stem) in enumerate(zip(paths, stems, strict=True), start=1):
        folder = out / stem if len(paths) > 1 else out
        try:
            summary = predict_video(predictor, path, folder, every=every, category_ids=category_ids, video_id=video_id)
        except ValueError as err:
            raise fail(str(err), code=1) from err
        console.print(
            f"{path}: {summary.frames_processed} of {summary.frames_read} frames, {summary.tracks} tracks, "
            f"{summary.fps:.1f} fps -> {summary.files['vis']}",
            markup=False,
        )


def _output_name(path: Path) -> Path:
    """``path`` as named for its output folder: ``slide.ome.tif`` -> ``slide.tif`` (stem ``slide``)."""
    lower = path.name.lower()
    for suffix in (".ome.tif", ".ome.tiff"):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return path.with_name(path.name[: -len(suffix)] + ".tif")
    return path


def predict_slides(
    checkpoint: Path | None,
    slides: Sequence[str],
    out: Path,
    device: str,
    precision: str,
    score_thr: float | None,
    options: dict[str, Any],
    overwrite: bool,
) -> None:
    """Predict each whole-slide image tile by tile into ``out`` (``OUT/<stem>/`` each when there are several):
    ``labels.zarr`` (+ ``labels.tif``), ``objects.jsonl`` and ``slide.json``.

    ``options``: ``level`` (pyramid level), ``tile`` and ``overlap`` (pixels), ``label_tiff``. A checkpoint on the
    CPU runs through ``FastCpuPredictor`` (BatchNorm folded; bfloat16 network per ``precision``); an exported
    ``.onnx`` file or another device runs the plain float32 path, ``Predictor.predict_whole`` per tile.
    """
    import torch
    from rich.console import Console

    from instseg.data.output_paths import prepare_output_dir, unique_output_stems
    from instseg.inference.model_file import is_onnx_file, load_model_file
    from instseg.inference.predictor import Predictor
    from instseg.methods.segmenter import InstanceSegmenter

    _require("zarr", "slides")
    from instseg.inference.slides import open_slide, predict_slide

    level = int(options["level"])
    if not slides:
        raise fail("--slide: give one or more slides (.tif/.tiff/.svs/.ome.tif files or zarr folders)", code=2)
    if level < 0:
        raise fail(f"--level {level}: must be >= 0 (0 = full resolution)", code=2)
    fast = torch.device(device).type == "cpu" and not is_onnx_file(checkpoint)  # FastCpuPredictor's case
    if not fast and precision == "bfloat16":
        what = "an exported .onnx model" if is_onnx_file(checkpoint) else f"--device {device}"
        raise fail(f"--precision bfloat16: only a checkpoint on the CPU runs bfloat16, not {what}", code=2)
    paths = [Path(s) for s in slides]
    for path in paths:  # every slide opens (lazily: nothing decoded) before anything is written
        try:
            open_slide(path, level=level).close()
        except ValueError as err:
            raise fail(str(err), code=2) from err
    stems = unique_output_stems([_output_name(p) for p in paths])
    try:
        prepare_output_dir(out, inputs=paths, overwrite=overwrite)
        model = load_model_file(checkpoint, device=device)  # a checkpoint or an exported .onnx file
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err), code=2) from err
    predict: Any
    if fast:
        from instseg.inference.cpu_fast import FastCpuPredictor

        if not isinstance(model, InstanceSegmenter):
            raise fail(f"{checkpoint}: holds a {type(model).__name__}, not an instseg model", code=1)
        predict = FastCpuPredictor(model, precision=precision, score_thr=score_thr)
        used = predict.precision
    else:  # an exported .onnx file (onnxruntime) or a GPU: the plain float32 path, one pass per tile
        predict = Predictor(model, device=device, score_thr=score_thr, auto_tile_above=None).predict_whole
        used = "float32"
    category_ids = getattr(model, "category_ids", None)
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    for path, stem in zip(paths, stems, strict=True):
        folder = out / stem if len(paths) > 1 else out
        try:
            with open_slide(path, level=level) as source:
                summary = predict_slide(
                    predict,
                    source,
                    folder,
                    tile=int(options["tile"]),
                    overlap=int(options["overlap"]),
                    category_ids=category_ids,
                    label_tiff=bool(options["label_tiff"]),
                )
        except ValueError as err:
            raise fail(str(err), code=1) from err
        console.print(
            f"{path}: {summary.objects} objects, {summary.tiles} tiles, {summary.seconds:.1f} s ({used}) -> {folder}",
            markup=False,
        )


def predict_on_ray(
    checkpoint: Path | None,
    inputs: Sequence[str],
    out: Path,
    address: str | None,
    concurrency: int,
    device: str,
    predictor_kwargs: dict[str, Any],
    overwrite: bool,
) -> None:
    """Predict the images of ``inputs`` on Ray into ``out`` (sharded, resumable; merged ``results.json``)."""
    from rich.console import Console

    from instseg.inference.ray_batch import ray_predict

    _require("ray", "ray")
    if concurrency < 1:
        raise fail(f"--concurrency {concurrency}: must be at least 1", code=2)
    gpus = 1.0 if device.startswith("cuda") else 0.0
    try:
        summary = ray_predict(
            list(inputs),
            out,
            checkpoint=checkpoint,
            address=address,
            concurrency=concurrency,
            num_gpus=gpus,
            device=device,
            predictor_kwargs=predictor_kwargs,
            overwrite=overwrite,
        )
    except ValueError as err:
        raise fail(str(err), code=2) from err
    failed = f"; {summary.failed} failed images listed in {out / 'errors.jsonl'}" if summary.failed else ""
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"{summary.images} images, {summary.instances} instances -> {summary.results_path} "
        f"({summary.shards_run} shards run, {summary.shards_skipped} already complete){failed}",
        markup=False,
    )
