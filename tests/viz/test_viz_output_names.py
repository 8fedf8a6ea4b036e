"""``instseg viz`` output names: two images with one file name get two overlays; a reused --out is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from PIL import Image
from typer.testing import CliRunner

from instseg.cli.viz import viz
from instseg.structures.masks import mask_to_rle

app = typer.Typer()
app.command()(viz)


def write_set(root: Path) -> Path:
    """A COCO set whose two images are both called x.png, in folders a/ and b/."""
    images, annotations = [], []
    for k, folder in enumerate(["a", "b"], start=1):
        (root / "images" / folder).mkdir(parents=True)
        pixels = np.full((20, 30, 3), 40 * k, np.uint8)
        Image.fromarray(pixels).save(root / "images" / folder / "x.png")
        mask = np.zeros((20, 30), bool)
        mask[5 : 10 + k, 4:12] = True
        images.append({"id": k, "file_name": f"{folder}/x.png", "height": 20, "width": 30})
        annotations.append(
            {
                "id": k,
                "image_id": k,
                "category_id": 1,
                "segmentation": mask_to_rle(mask),
                "area": int(mask.sum()),
                "bbox": [4.0, 5.0, 8.0, float(5 + k)],
                "iscrowd": 0,
            }
        )
    ann = root / "annotations" / "instances_val.json"
    ann.parent.mkdir(parents=True)
    categories = [{"id": 1, "name": "cell"}]
    ann.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann


def test_two_images_named_alike_and_a_reused_out(tmp_path: Path) -> None:
    ann = write_set(tmp_path / "set")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(ann), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a__x_overlay.png", "b__x_overlay.png"]
    first, second = (np.asarray(Image.open(out / n)) for n in names)
    assert first[0, 0].tolist() == [40, 40, 40] and second[0, 0].tolist() == [80, 80, 80]  # each its own image
    again = CliRunner().invoke(app, [str(ann), "--out", str(out)])
    assert again.exit_code == 2 and "already holds" in again.output
    (out / "stale_overlay.png").write_bytes(b"old")
    forced = CliRunner().invoke(app, [str(ann), "--out", str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in out.iterdir()) == names
    inside = CliRunner().invoke(app, [str(ann), "--out", str(tmp_path / "set" / "images"), "--overwrite"])
    assert inside.exit_code == 2 and (tmp_path / "set" / "images" / "a" / "x.png").is_file()
