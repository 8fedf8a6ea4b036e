"""``instseg info``: what is in a COCO annotation file (images, instances, sizes, classes, faults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from instseg.cli.errors import fail

MAX_FAULTS_SHOWN = 10
MAX_SIZES_SHOWN = 20


def _print_tables(stats: dict[str, Any]) -> None:
    """Rich tables: overview, image sizes, classes, and the first validation faults."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)  # user text (paths, class names) is passed as Text: never read as markup
    console.print(Text(str(stats["ann_file"])))
    overview = Table(title="overview", show_header=False)
    overview.add_column("what")
    overview.add_column("value", justify="right")
    per_image, area = stats["instances_per_image"], stats["instance_area"]
    rows = [
        ("images", f"{stats['images']:,}"),
        ("instances", f"{stats['instances']:,}"),
        ("crowd regions", f"{stats['crowd']:,}"),
        ("images without annotations", f"{stats['images_without_annotations']:,}"),
        (
            "instances / image (min / median / max)",
            f"{per_image['min']:g} / {per_image['median']:g} / {per_image['max']:g}",
        ),
        ("instance area px (min / median / max)", f"{area['min']:g} / {area['median']:g} / {area['max']:g}"),
        ("classes (present / total)", f"{sum(1 for c in stats['classes'] if c['count'])} / {len(stats['classes'])}"),
        ("invalid items", f"{len(stats['invalid']):,}"),
    ]
    for name, value in rows:
        overview.add_row(name, value)
    console.print(overview)
    sizes = Table(title="image sizes")
    for col in ("width x height", "images"):
        sizes.add_column(col, justify="right")
    for s in stats["image_sizes"][:MAX_SIZES_SHOWN]:
        sizes.add_row(f"{s['width']} x {s['height']}", f"{s['count']:,}")
    if len(stats["image_sizes"]) > MAX_SIZES_SHOWN:
        sizes.add_row(f"{len(stats['image_sizes']) - MAX_SIZES_SHOWN} more sizes", "...")
    console.print(sizes)
    classes = Table(title="instances per class")
    for col in ("id", "name", "instances"):
        classes.add_column(col, justify="right" if col != "name" else "left")
    for c in stats["classes"]:
        classes.add_row(str(c["id"]), Text(str(c["name"])), f"{c['count']:,}")
    console.print(classes)
    for fault in stats["invalid"][:MAX_FAULTS_SHOWN]:
        console.print(Text.assemble(("invalid", "yellow"), " ", str(fault)), highlight=False)
    if len(stats["invalid"]) > MAX_FAULTS_SHOWN:
        console.print(f"... and {len(stats['invalid']) - MAX_FAULTS_SHOWN} more invalid items (see --json)")


def info(
    annotations: Path | None = typer.Argument(None, help="COCO annotation json (or give --data DIR --split NAME)."),
    data: Path | None = typer.Option(None, "--data", help="Data set folder with annotations/instances_{split}.json."),
    split: str | None = typer.Option(None, "--split", help="Split name for --data (e.g. train, val)."),
    images: Path | None = typer.Option(None, "--images", help="Images folder (default: the sibling images/)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Summarise a COCO data set: images, instances, image sizes, instances per image and class, faults."""
    from instseg.data.paths import resolve_annotations
    from instseg.data.statistics import dataset_statistics

    if (annotations is None) == (data is None):
        raise fail("give either an annotation json file or --data DIR (with --split)", code=2)
    source = annotations if annotations is not None else data
    assert source is not None
    try:
        if annotations is not None and split is not None:
            raise ValueError(f"{annotations}: --split goes with --data DIR, not with a json file")
        try:
            ann_file, images_dir = resolve_annotations(source, split, images)
        except ValueError:
            if annotations is None or not annotations.is_file():
                raise
            ann_file, images_dir = annotations, None  # statistics need only the json; file checks are skipped
        stats = dataset_statistics(ann_file, images_dir).to_dict()
    except ValueError as err:
        raise fail(str(err)) from err
    if images_dir is None:
        stats["notes"] = ["images folder not found: image files were not checked"]
    if as_json:
        typer.echo(json.dumps(stats))
    else:
        _print_tables(stats)
