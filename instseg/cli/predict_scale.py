"""The scale paths of ``instseg predict``: videos (tracked, PyAV) and batch prediction on Ray (Ray Data)."""

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
    from instseg.engine.checkpoint import load_model
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
        model = load_model(checkpoint, device=device)
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
