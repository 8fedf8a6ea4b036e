"""``predict_many``: results json, label maps and overlays from compact instances; bad files skipped and reported;
two inputs never share an output file; a reused output folder is refused unless asked to be emptied."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from skimage.draw import disk
from skimage.measure import label as connected_components

from instseg.data.label_images import read_label_map
from instseg.inference import ImagePrediction, image_jobs, iter_predictions, predict_many
from instseg.inference.tiling import predict_tiled
from instseg.structures import Instances
from instseg.viz.overlay import draw_instances


def components(image: np.ndarray) -> Instances:
    """A stand-in model: every bright connected blob is one object, scored by its size."""
    labels = connected_components(image[..., 0] > 127)
    n = int(labels.max())
    masks = torch.from_numpy(labels[None] == np.arange(1, n + 1)[:, None, None])
    return Instances(labels.shape, masks=masks, scores=torch.linspace(0.9, 0.5, n) if n else torch.zeros(0))


def compact_components(image: np.ndarray) -> Instances:
    """The stand-in as the predictor path gives it: compact instances."""
    return components(image).compact()


def write_discs(path: Path, size: tuple[int, int], centres: list[tuple[int, int]], radius: int = 6) -> None:
    image = np.zeros((*size, 3), np.uint8)
    for cy, cx in centres:
        rr, cc = disk((cy, cx), radius, shape=size)
        image[rr, cc] = 255
    Image.fromarray(image).save(path)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
    write_discs(folder / "a" / "x.png", (40, 60), [(10, 10), (25, 40)])
    write_discs(folder / "b" / "x.png", (50, 30), [(20, 15)])  # same file name in another folder
    write_discs(folder / "a" / "y.png", (32, 32), [])  # no objects
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_results_label_maps_and_overlays(inputs: Path, tmp_path: Path) -> None:
    before = digest(inputs)
    jobs = image_jobs([inputs / "a", inputs / "b"])
    assert [p.name for _, p in jobs] == ["broken.png", "x.png", "y.png", "x.png"]
    seen: list[ImagePrediction] = []
    out = tmp_path / "out"
    summary = predict_many(compact_components, jobs, out, category_ids=[3], on_item=seen.append)
    assert digest(inputs) == before  # inputs untouched
    assert summary.images == 3 and summary.instances == 3 and len(seen) == 4
    assert [(p.name, "cannot" in why or "broken" in why) for p, why in summary.skipped] == [("broken.png", True)]
    images = json.loads((out / "images.json").read_text())
    assert [im["file_name"] for im in images["images"]] == ["x.png", "y.png", "x.png"]
    assert images["skipped"] == [str(inputs / "a" / "broken.png")]
    # two x.png never share an output file: their names carry their folders
    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert labels == ["a__x.png", "b__x.png", "y.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == labels
    results = json.loads((out / "results.json").read_text())
    assert {r["category_id"] for r in results} == {3} and len(results) == 3
    for image_id, path in jobs[1:]:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        expected = components(pixels)
        stem = {"x.png": f"{path.parent.name}__x", "y.png": "y"}[path.name]
        label_map = read_label_map(out / "labels" / f"{stem}.png")
        assert label_map.shape == pixels.shape[:2]
        assert np.array_equal(label_map, connected_components(pixels[..., 0] > 127))
        overlay = np.asarray(Image.open(out / "overlays" / f"{stem}.png"))
        assert np.array_equal(overlay, draw_instances(pixels, expected))
        mine = [r for r in results if r["image_id"] == image_id]
        assert [r["segmentation"] for r in mine] == [r["segmentation"] for r in expected.to_coco(image_id)]
        for r in mine:
            decoded = mask_utils.decode({"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"]})
            assert int(decoded.sum()) == r["area"]


def test_overlapping_objects_stay_whole_in_results(tmp_path: Path) -> None:
    """Results json keeps both of two overlapping objects whole; the label map gives shared pixels to the smaller."""

    def overlapping(image: np.ndarray) -> Instances:
        masks = torch.zeros((2, 20, 20), dtype=torch.bool)
        masks[0, 2:12, 2:12] = True  # 100 px
        masks[1, 8:14, 8:14] = True  # 36 px, 16 shared
        return Instances((20, 20), masks=masks, scores=torch.tensor([0.9, 0.8])).compact()

    path = tmp_path / "one.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path)
    predict_many(overlapping, [(1, path)], tmp_path / "out", overlays=False)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["area"] for r in results] == [100, 36]
    label_map = read_label_map(tmp_path / "out" / "labels" / "one.png")
    assert (label_map == 1).sum() == 100 - 16 and (label_map == 2).sum() == 36
    assert not (tmp_path / "out" / "overlays").exists()


def test_reused_output_folder_is_refused_or_emptied(inputs: Path, tmp_path: Path) -> None:
    jobs = image_jobs([inputs / "a"])
    out = tmp_path / "out"
    predict_many(compact_components, jobs, out)
    stale = out / "labels" / "stale.png"
    stale.write_bytes(b"old")
    with pytest.raises(ValueError, match="already holds"):
        predict_many(compact_components, jobs, out)
    assert stale.exists()
    predict_many(compact_components, jobs, out, overwrite=True)
    assert not stale.exists() and (out / "labels" / "x.png").is_file()
    with pytest.raises(ValueError, match="existing file"):  # --out naming an input image
        predict_many(compact_components, jobs, inputs / "a" / "x.png")
    with pytest.raises(ValueError, match="delete the input"):  # emptying the inputs' own folder
        predict_many(compact_components, jobs, inputs / "a", overwrite=True)
    assert (inputs / "a" / "x.png").is_file()
    with pytest.raises(ValueError, match="no image"):
        predict_many(compact_components, [], tmp_path / "empty")


def test_generator_yields_one_item_per_job_and_tiles_large_images(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    write_discs(path, (100, 400), [(50, 30 + 45 * k) for k in range(8)])

    def tiled(image: np.ndarray) -> Instances:
        return predict_tiled(components, image, tile=128, overlap=40)

    items = list(iter_predictions(tiled, [(5, path), (6, tmp_path / "missing.png")]))
    assert [i.image_id for i in items] == [5, 6]
    assert items[0].instances is not None and items[0].instances.is_compact and len(items[0].instances) == 8
    assert items[0].error is None and items[1].instances is None and "missing.png" in str(items[1].error)
