"""``instseg export``: write a checkpoint (or the shipped default model) as an ONNX file with its post-processing
inside (``instseg.export.to_onnx``)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from instseg.cli.errors import fail

FORMATS = ("onnx",)


def _parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if match is None or min(int(match.group(1)), int(match.group(2))) < 1:
        raise fail(f"--size {text}: expected HEIGHTxWIDTH, e.g. 512x512", code=2)
    return int(match.group(1)), int(match.group(2))


def export(
    checkpoint: str = typer.Argument(
        ..., help="Checkpoint file (.pt/.safetensors), or 'default' for the shipped model."
    ),
    format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (default: CHECKPOINT name + .onnx here)."),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset (default 18; 19 for deformable convs)."),
    dynamic: bool = typer.Option(
        True, "--dynamic/--static", help="Any image size (default), or only images of --size once resized."
    ),
    size: str = typer.Option("512x512", "--size", help="With --static: the image size (HEIGHTxWIDTH) to export for."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Export a model to ONNX: image in, final instances out (bottom-up models: maps for the runtime's grouping)."""
    from instseg.engine.checkpoint import load_model
    from instseg.export import to_onnx
    from instseg.methods.segmenter import InstanceSegmenter

    if format not in FORMATS:
        raise fail(f"--format {format}: supported formats are {', '.join(FORMATS)}", code=2)
    if opset is not None and not 11 <= opset <= 21:
        raise fail(f"--opset {opset}: give an opset between 11 and 21", code=2)
    example = _parse_size(size)
    source = None if checkpoint == "default" else Path(checkpoint)
    if source is not None and not source.is_file():
        raise fail(f"{checkpoint}: no such checkpoint file", code=2)
    target = out if out is not None else Path((source.stem if source is not None else "default") + ".onnx")
    if target.suffix != ".onnx":
        raise fail(f"--out {target}: the file name must end in .onnx", code=2)
    if source is not None and target.resolve() == source.resolve():
        raise fail(f"--out {target}: would overwrite the checkpoint", code=2)
    if target.is_dir():
        raise fail(f"--out {target}: is a folder; give a file name ending in .onnx", code=2)
    if target.exists() and not overwrite:
        raise fail(f"--out {target}: exists already (pass --overwrite to replace it)", code=2)
    try:
        model = load_model(source)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err), code=2) from err
    if not isinstance(model, InstanceSegmenter):
        raise fail(f"{checkpoint}: holds a {type(model).__name__}, not an instseg model", code=1)
    try:
        path = to_onnx(model, target, opset=opset, dynamic=dynamic, example_size=example)
    except (ValueError, TypeError) as err:
        raise fail(str(err), code=1) from err
    typer.echo(f"{type(model).__name__} -> {path}")
