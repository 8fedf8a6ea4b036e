"""``instseg convert``: move a data set between COCO json, label-image folders and YOLO segmentation folders."""

from __future__ import annotations

from pathlib import Path

import typer

from instseg.cli.errors import fail

MAX_SKIPPED_SHOWN = 20


def convert(
    src: Path = typer.Argument(..., help="Source: COCO data folder (+ --split) or json; labels/yolo data folder."),
    dst: Path = typer.Argument(..., help="Destination folder (created)."),
    from_format: str = typer.Option(..., "--from", help="Source format: coco, labels or yolo."),
    to_format: str = typer.Option(..., "--to", help="Destination format: coco, labels or yolo."),
    split: str | None = typer.Option(None, "--split", help="Split to read (COCO folder) and to name the COCO json."),
    images: Path | None = typer.Option(None, "--images", help="Images folder of a COCO source (default: images/)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid annotations instead of stopping."),
    link: bool = typer.Option(False, "--link", help="Hard-link images instead of copying them where possible."),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0.0, help="Simplify YOLO polygons by this many pixels."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Empty an existing non-empty destination first."),
) -> None:
    """Convert a data set between formats (coco, labels, yolo); unreadable images are skipped and counted."""
    import warnings

    from rich.console import Console
    from rich.text import Text

    from instseg.data.convert import convert_dataset

    console = Console(stderr=True, soft_wrap=True)  # messages hold user paths: printed as Text, never as markup
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped items come back in the report and are printed below
            report = convert_dataset(
                from_format.lower(),
                to_format.lower(),
                src,
                dst,
                split,
                images,
                skip_invalid,
                link,
                tolerance,
                overwrite,
            )
    except ValueError as err:
        raise fail(str(err)) from err
    for message in report.skipped[:MAX_SKIPPED_SHOWN]:
        console.print(Text.assemble(("skipped", "yellow"), " ", message), highlight=False)
    if len(report.skipped) > MAX_SKIPPED_SHOWN:
        console.print(
            f"... and {len(report.skipped) - MAX_SKIPPED_SHOWN} more skipped items", highlight=False, markup=False
        )
    for message in report.lost_objects[:MAX_SKIPPED_SHOWN]:
        console.print(Text.assemble(("lost", "yellow"), " ", message), highlight=False)
    typer.echo(f"{from_format} -> {to_format}: {report.summary()} -> {dst}")
