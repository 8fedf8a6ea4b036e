"""Prediction files against brute force: every results-json RLE decoded equals its mask, the label map equals
the smaller-wins painting computed pixel by pixel (equal areas: the later object), and the two files agree;
box-only results, atomic JSON, the images list, and ``PredictionWriter``/``predict_many``
options (ids kept as given, category ids, label maps and overlays switched off, skipped items)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from instseg.data.label_images import read_label_map
from instseg.inference.predict_many import ImagePrediction, PredictionWriter, predict_many
from instseg.inference.writers import results_to_coco_images, write_json_atomic, write_label_map_of, write_overlay
from instseg.structures import Instances
from instseg.viz.overlay import draw_instances


def random_objects(seed: int, n: int = 12, size: tuple[int, int] = (48, 64)) -> Instances:
    """Overlapping random blobs (unions of two rectangles), some of equal area, as compact instances."""
    rng = np.random.default_rng(seed)
    h, w = size
    masks = np.zeros((n, h, w), dtype=bool)
    for k in range(n):
        for _ in range(2):
            y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
            masks[k, y : y + rng.integers(2, 14), x : x + rng.integers(2, 14)] = True
    masks[n - 1] = np.roll(masks[n - 2], 3, axis=1)  # the same area as its predecessor (rolled), overlapping it
    scores = torch.from_numpy(rng.random(n).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 3, n))
    return Instances(size, masks=torch.from_numpy(masks), scores=scores, labels=labels).compact()


def brute_force_label_map(masks: np.ndarray) -> np.ndarray:
    """Pixel by pixel: the covering object with the fewest pixels wins, between equal areas the later one."""
    n, h, w = masks.shape
    areas = masks.reshape(n, -1).sum(1)
    out = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            covering = [k for k in range(n) if masks[k, y, x]]
            if covering:
                out[y, x] = min(covering, key=lambda k: (areas[k], -k)) + 1
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_results_and_label_map_agree_with_the_masks(seed: int, tmp_path: Path) -> None:
    found = random_objects(seed)
    full = found.masks
    assert full is not None
    masks = full.numpy()
    path = write_label_map_of(found, tmp_path / "img")
    assert path == tmp_path / "img.png"
    label_map = read_label_map(path)
    np.testing.assert_array_equal(label_map, brute_force_label_map(masks))
    results = found.to_coco(image_id=9, category_ids=[4, 5, 6])
    assert len(results) == len(found)
    for k, r in enumerate(results):
        decoded = mask_utils.decode(r["segmentation"]).astype(bool)
        np.testing.assert_array_equal(decoded, masks[k])
        assert r["area"] == int(masks[k].sum()) and r["category_id"] == [4, 5, 6][int(found.labels[k])]
        ys, xs = np.nonzero(decoded)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        # the two files agree: a label-map pixel of object k lies in k's decoded mask
        assert decoded[label_map == k + 1].all()
    assert ((label_map > 0) == masks.any(0)).all()


def test_equal_areas_later_object_wins(tmp_path: Path) -> None:
    masks = torch.zeros((3, 10, 10), dtype=torch.bool)
    masks[0, 0:4, 0:4] = True  # 16 px
    masks[1, 2:6, 2:6] = True  # 16 px: equal area, listed later: wins the shared pixels
    masks[2, 0:10, 0:10] = True  # the largest: keeps only what nobody else covers
    label_map = read_label_map(write_label_map_of(Instances((10, 10), masks=masks).compact(), tmp_path / "m"))
    assert label_map[3, 3] == 2 and label_map[1, 1] == 1 and label_map[8, 8] == 3
    assert (label_map == 2).sum() == 16 and (label_map == 1).sum() == 12 and (label_map == 3).sum() == 100 - 28


def test_box_only_results_give_an_empty_map(tmp_path: Path) -> None:
    boxes = Instances((7, 9), boxes=torch.tensor([[1.0, 1.0, 4.0, 4.0]]), scores=torch.ones(1))
    label_map = read_label_map(write_label_map_of(boxes, tmp_path / "b"))
    assert label_map.shape == (7, 9) and not label_map.any()


def test_atomic_json_and_the_images_list(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_json_atomic({"a": [1, 2.5, None]}, target)
    assert json.loads(target.read_text()) == {"a": [1, 2.5, None]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind
    images = results_to_coco_images([(3, Path("/x/a.png"), (10, 20)), (7, Path("b.tif"), (5, 6))])
    assert images == [
        {"id": 3, "file_name": "a.png", "height": 10, "width": 20},
        {"id": 7, "file_name": "b.tif", "height": 5, "width": 6},
    ]


def test_overlay_is_drawn_from_the_masks(tmp_path: Path) -> None:
    found = random_objects(3)
    image = np.full((48, 64, 3), 90, np.uint8)
    path = write_overlay(image, found, tmp_path / "deep" / "o.png", class_names=["a", "b", "c"])
    assert path == tmp_path / "deep" / "o.png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), draw_instances(image, found, ["a", "b", "c"]))


def test_writer_options_and_skipped_items(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    found = random_objects(4, n=3)
    image = np.zeros((48, 64, 3), np.uint8)
    jobs = [(10, Path("p.png")), (20, Path("q.png")), (30, Path("r.png"))]
    writer = PredictionWriter(tmp_path, {j: j[1].stem for j in jobs}, category_ids=[7, 8, 9], overlays=False)
    assert writer.write(ImagePrediction(10, Path("p.png"), image=image, instances=found)) == [
        tmp_path / "labels" / "p.png"
    ]
    assert writer.write(ImagePrediction(20, Path("q.png"), error="q.png: cannot read image (bad)")) == []
    assert writer.write(ImagePrediction(30, Path("r.png"))) == []
    summary = writer.finish()
    assert (summary.images, summary.instances) == (1, 3)
    assert summary.skipped == [(Path("q.png"), "q.png: cannot read image (bad)"), (Path("r.png"), "no prediction")]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["image_id"] for r in results] == [10, 10, 10]
    assert [r["category_id"] for r in results] == [[7, 8, 9][int(v)] for v in found.labels]
    listed = json.loads((tmp_path / "images.json").read_text())
    assert listed == {"images": [{"id": 10, "file_name": "p.png", "height": 48, "width": 64}],
                      "skipped": ["q.png", "r.png"]}  # fmt: skip
    assert not (tmp_path / "overlays").exists() and summary.results_path == tmp_path / "results.json"
    assert set(summary.files) == {tmp_path / "labels" / "p.png", tmp_path / "results.json", tmp_path / "images.json"}


def test_predict_many_keeps_the_given_ids_and_the_files_agree(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    objects = {}
    jobs = []
    for k, seed in enumerate([5, 6]):
        path = folder / f"im{k}.png"
        Image.fromarray(np.full((48, 64, 3), 40 * k, np.uint8)).save(path)
        objects[int(40 * k)] = random_objects(seed)
        jobs.append((100 + 11 * k, path))

    def by_brightness(image: np.ndarray) -> Instances:
        return objects[int(image[0, 0, 0])]

    seen: list[int] = []
    summary = predict_many(by_brightness, jobs, tmp_path / "out", label_maps=True, overlays=False,
                           on_item=lambda item: seen.append(item.image_id))  # fmt: skip
    assert seen == [100, 111] and summary.images == 2
    assert not (tmp_path / "out" / "overlays").exists()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    for (image_id, path), found in zip(jobs, objects.values(), strict=True):
        mine = [r for r in results if r["image_id"] == image_id]
        assert len(mine) == len(found)
        decoded = np.stack([mask_utils.decode(r["segmentation"]).astype(bool) for r in mine])
        np.testing.assert_array_equal(decoded, found.masks.numpy())  # type: ignore[union-attr]
        assert [r["score"] for r in mine] == pytest.approx(found.scores.tolist())  # type: ignore[union-attr]
        label_map = read_label_map(tmp_path / "out" / "labels" / f"{path.stem}.png")
        np.testing.assert_array_equal(label_map, brute_force_label_map(decoded))
    none = predict_many(by_brightness, jobs, tmp_path / "none", label_maps=False, overlays=False)
    assert sorted(p.name for p in (tmp_path / "none").iterdir()) == ["images.json", "results.json"]
    assert none.instances == sum(len(f) for f in objects.values())
