"""``instseg predict``: segment images, folders or every image of an annotation file."""

from __future__ import annotations

from pathlib import Path

import typer

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
OVERLAY_MAX_BITS = 2_000_000_000  # objects x pixels above which a full-mask overlay is skipped (huge slides)


def predict(
    inputs: list[str] | None = typer.Argument(None, help="[CHECKPOINT] then images, folders or glob patterns."),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder."),
    data: Path | None = typer.Option(None, "--data", help="Predict every image of this COCO json (keeps its ids)."),
    images: Path | None = typer.Option(None, "--images", help="Image folder for --data (default: sibling images/)."),
    score_thr: float | None = typer.Option(None, "--score-thr", help="Drop instances below this score."),
    tile: int | None = typer.Option(
        None, "--tile", help="Tile size for large images (default: tile only images longer than 2048 px; 0: never)."
    ),
    tile_overlap: int = typer.Option(256, "--tile-overlap", help="Pixels shared by neighbouring tiles."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    overlays: bool = typer.Option(True, "--overlays/--no-overlays", help="Write overlay PNGs."),
    label_maps: bool = typer.Option(
        True, "--label-maps/--no-label-maps", help="Write label maps (16-bit PNG; 32-bit TIFF past 65535 objects)."
    ),
) -> None:
    """Segment images with a checkpoint (or the shipped default model): COCO results json, label maps, overlays."""
    from PIL import Image
    from rich.console import Console
    from rich.progress import track

    from instseg.data.image_io import read_image
    from instseg.data.label_images import label_map_suffix, write_label_map
    from instseg.engine.checkpoint import load_model
    from instseg.inference.predictor import AUTO_TILE_ABOVE, Predictor
    from instseg.inference.sources import find_images
    from instseg.inference.writers import results_to_coco_images, write_json_atomic
    from instseg.viz.overlay import draw_instances

    console = Console(stderr=True)
    checkpoint: Path | None = None
    inputs = list(inputs or [])
    if inputs and inputs[0].lower().endswith(CHECKPOINT_SUFFIXES):
        checkpoint = Path(inputs[0])
        inputs = inputs[1:]
    try:
        model = load_model(checkpoint, device=device)
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from err
    class_names = getattr(model, "class_names", None)
    category_ids = getattr(model, "category_ids", None)

    if data is not None:
        from instseg.data.coco import load_coco_json
        from instseg.data.paths import resolve_annotations

        ann_file, images_dir = resolve_annotations(data, None, images)
        gt = load_coco_json(ann_file)
        jobs = [(int(im["id"]), images_dir / im["file_name"]) for im in gt["images"]]
        if category_ids is None:
            category_ids = sorted(int(c["id"]) for c in gt["categories"])
    else:
        if not inputs:
            raise typer.BadParameter("give images, folders or patterns to predict, or --data ANN.json")
        jobs = list(enumerate(find_images(inputs), start=1))
    if not jobs:
        raise typer.BadParameter("no image files found in the inputs")

    out.mkdir(parents=True, exist_ok=True)
    for folder, wanted in (("labels", label_maps), ("overlays", overlays)):
        if wanted:
            (out / folder).mkdir(exist_ok=True)
    predictor = Predictor(
        model,  # type: ignore[arg-type]
        device=device,
        score_thr=score_thr,
        tile_size=tile or None,
        tile_overlap=tile_overlap,
        auto_tile_above=None if tile == 0 else AUTO_TILE_ABOVE,
    )
    results, done, failed = [], [], []
    for image_id, path in track(jobs, description="predicting", console=console, disable=len(jobs) < 2):
        try:
            image = read_image(path)
        except ValueError as err:
            console.print(f"[yellow]skipped[/yellow] {err}")
            failed.append(str(path))
            continue
        found = predictor.predict_large(image)
        results.extend(found.to_coco(image_id, category_ids))
        done.append((image_id, path, found.label_map.shape))
        if label_maps:
            suffix = label_map_suffix(len(found))
            write_label_map(out / "labels" / f"{path.stem}{suffix}", found.label_map)
        if overlays:
            if len(found) * found.label_map.size > OVERLAY_MAX_BITS:
                console.print(f"{path}: {len(found)} objects on {image.shape[1]}x{image.shape[0]} px, overlay skipped")
            else:
                overlay = draw_instances(image, found.to_instances(), class_names)
                Image.fromarray(overlay).save(out / "overlays" / f"{path.stem}.png")
    write_json_atomic(results, out / "results.json")
    write_json_atomic({"images": results_to_coco_images(done), "skipped": failed}, out / "images.json")
    console.print(
        f"{len(done)} images, {len(results)} instances -> {out / 'results.json'}"
        + (f"; [yellow]{len(failed)} unreadable images skipped[/yellow]" if failed else "")
    )
    if not done:
        raise typer.Exit(code=1)
