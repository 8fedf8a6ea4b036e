"""The shipped default model: loads offline and safely, segments real nuclei in what microscopy users feed it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import instseg
from instseg.data.coco import CocoDataset
from instseg.data.image_io import read_image
from instseg.engine.checkpoint import default_weights_path
from instseg.eval import evaluate_results
from instseg.inference.predictor import Predictor

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample"
ANN = SAMPLE / "annotations" / "instances_sample.json"

pytestmark = pytest.mark.skipif(not default_weights_path().is_file(), reason="no default model in instseg/weights")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.set_flush_denormal(True)
    return instseg.load_model()


def test_default_checkpoint_loads_with_weights_only() -> None:
    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    assert state["config"]["model"]["name"] and state["classes"]["class_names"] == ["nucleus"]
    assert default_weights_path().stat().st_size <= 20 * 2**20


def test_sample_images_are_segmented_well(model: torch.nn.Module) -> None:
    dataset = CocoDataset(ANN)
    results = []
    for index in range(len(dataset)):
        info = dataset.image_info(index)
        found = model.predict(read_image(SAMPLE / "images" / info["file_name"]))
        assert found.image_size == (info["height"], info["width"])
        results.extend(found.to_coco(int(info["id"]), [1]))
    metrics = evaluate_results(ANN, results, max_dets=1000, score_thr=0.0)
    assert metrics["match/F1@0.5"] >= 0.85, (
        metrics
    )  # shipped model: 0.95 on these six (the stage-3 one: 0.91, the watershed: 0.75)


def _count_agreement(a: instseg.Instances, b: instseg.Instances) -> float:
    """F1@0.5 between two predictions of the same image (one taken as reference)."""
    h, w = a.image_size
    gt = {
        "images": [{"id": 1, "file_name": "x.png", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "nucleus"}],
        "annotations": [{**r, "id": i + 1, "iscrowd": 0} for i, r in enumerate(a.to_coco(1, [1]))],
    }
    return evaluate_results(gt, b.to_coco(1, [1]), max_dets=1000, score_thr=0.0)["match/F1@0.5"]


def test_16bit_grey_tiff_gives_the_same_nuclei(model: torch.nn.Module, tmp_path: Path) -> None:
    name = sorted((SAMPLE / "images").glob("*.png"))[0]
    rgb = read_image(name)
    grey16 = (rgb[..., 0].astype(np.uint16) * 257 + 3).astype(np.uint16)  # a 16-bit camera image
    tifffile.imwrite(tmp_path / "grey16.tif", grey16)
    from_8bit = model.predict(rgb)
    from_16bit = model.predict(read_image(tmp_path / "grey16.tif"))
    also_16bit = model.predict(grey16)  # numpy HxW uint16 straight in
    assert len(from_8bit) > 5
    assert _count_agreement(from_8bit, from_16bit) >= 0.9
    assert _count_agreement(from_16bit, also_16bit) == 1.0


@pytest.mark.parametrize("value", [0, 40, 255])
def test_empty_images_have_no_instances(model: torch.nn.Module, value: int) -> None:
    found = model.predict(np.full((300, 260, 3), value, dtype=np.uint8))
    assert len(found) == 0 and found.masks is not None and found.masks.shape == (0, 300, 260)


def test_small_and_odd_sized_images(model: torch.nn.Module) -> None:
    rgb = read_image(sorted((SAMPLE / "images").glob("*.png"))[0])
    for h, w in [(128, 128), (101, 77)]:
        found = model.predict(np.ascontiguousarray(rgb[:h, :w]))
        assert found.image_size == (h, w)


def test_long_images_are_tiled_and_stitched(model: torch.nn.Module) -> None:
    rgb = read_image(sorted((SAMPLE / "images").glob("*.png"))[0])  # 256 x 256 fluorescence
    strip = np.ascontiguousarray(np.tile(rgb, (1, 10, 1)))  # 256 x 2560: above the auto-tiling limit
    predictor = Predictor(model)
    assert predictor.needs_tiling(strip)
    tiled = predictor.predict_large(strip)
    whole = Predictor(model, auto_tile_above=None).predict_whole(strip)
    assert tiled.image_size == strip.shape[:2] and tiled.is_compact
    assert _count_agreement(whole, tiled) >= 0.97
