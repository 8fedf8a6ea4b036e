"""``instseg predict``: segment images, folders or every image of an annotation file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from instseg.structures import Instances

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


def predict(
    inputs: list[str] | None = typer.Argument(None, help="[CHECKPOINT] then images, folders or glob patterns."),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder."),
    data: Path | None = typer.Option(None, "--data", help="Predict every image of this COCO json (keeps its ids)."),
    images: Path | None = typer.Option(None, "--images", help="Image folder for --data (default: sibling images/)."),
    score_thr: float | None = typer.Option(None, "--score-thr", help="Drop instances below this score."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    overlays: bool = typer.Option(True, "--overlays/--no-overlays", help="Write overlay PNGs."),
    label_maps: bool = typer.Option(True, "--label-maps/--no-label-maps", help="Write 16-bit label-map PNGs."),
) -> None:
    """Segment images with a checkpoint (or the shipped default model): COCO results json, label maps, overlays."""
    import numpy as np
    from rich.console import Console
    from rich.progress import track

    from instseg.data.image_io import read_image
    from instseg.engine.checkpoint import load_model
    from instseg.inference.predictor import Predictor
    from instseg.inference.sources import find_images
    from instseg.inference.writers import results_to_coco_images, save_label_map, write_json_atomic
    from instseg.ops.instance_maps import instances_to_label_map
    from instseg.viz.overlay import draw_instances

    console = Console(stderr=True)

    def label_map_array(instances: Instances) -> np.ndarray:
        """16-bit label map (32-bit beyond 65535 objects) for saving."""
        label_map = instances_to_label_map(instances).numpy()
        return label_map.astype(np.uint16 if len(instances) < 65536 else np.uint32)

    checkpoint: Path | None = None
    inputs = list(inputs or [])
    if inputs and inputs[0].lower().endswith(CHECKPOINT_SUFFIXES):
        checkpoint = Path(inputs[0])
        inputs = inputs[1:]
    model = load_model(checkpoint, device=device)
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
    if label_maps:
        (out / "labels").mkdir(exist_ok=True)
    if overlays:
        (out / "overlays").mkdir(exist_ok=True)
    predictor = Predictor(model, device=device, score_thr=score_thr)  # type: ignore[arg-type]
    results, done, failed = [], [], []
    for image_id, path in track(jobs, description="predicting", console=console, disable=len(jobs) < 2):
        try:
            image = read_image(path)
        except ValueError as err:
            console.print(f"[yellow]skipped[/yellow] {err}")
            failed.append(str(path))
            continue
        instances = predictor(image)
        results.extend(instances.to_coco(image_id, category_ids))
        done.append((image_id, path, instances.image_size))
        if label_maps:
            save_label_map(label_map_array(instances), out / "labels" / f"{path.stem}.png")
        if overlays:
            from PIL import Image

            Image.fromarray(draw_instances(image, instances, class_names)).save(out / "overlays" / f"{path.stem}.png")
    write_json_atomic(results, out / "results.json")
    write_json_atomic({"images": results_to_coco_images(done), "skipped": failed}, out / "images.json")
    console.print(
        f"{len(done)} images, {len(results)} instances -> {out / 'results.json'}"
        + (f"; [yellow]{len(failed)} unreadable images skipped[/yellow]" if failed else "")
    )
    if not done:
        raise typer.Exit(code=1)
