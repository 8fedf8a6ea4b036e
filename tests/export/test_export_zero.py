"""Exported detectors give empty outputs (right shapes, no error) when nothing passes their thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from instseg_runtime import OnnxPredictor

import instseg
from instseg.export import to_onnx

# one model per detector family; YOLACT++ also runs its mask-IoU net on zero detections
NAMES = [
    "yolactpp_resnet18",
    "solov2_light_mobilenetv3",
    "mask_rcnn_mobilenetv3_fpn",
    "condinst_light_mobilenetv3",
    "blendmask_light_mobilenetv3",
    "polarmask_light_mobilenetv3",
]


@pytest.mark.parametrize("name", NAMES)
def test_zero_detections_give_empty_outputs(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = instseg.create_model(name, num_classes=2, min_size=96, max_size=128).eval()
    if hasattr(model, "roi_heads"):
        model.roi_heads.score_thresh = 1.01  # type: ignore[union-attr]
    elif hasattr(model.postprocessor, "selector"):  # the FCOS-based methods
        model.postprocessor.selector.score_threshold = 1.01  # type: ignore[union-attr]
    else:
        model.postprocessor.score_threshold = 1.01  # type: ignore[union-attr]
    predictor = OnnxPredictor(to_onnx(model, tmp_path / f"{name}.onnx"), threads=1)
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    with torch.no_grad():
        assert len(model.predict(image)) == 0
    raw, _ = predictor.raw(image)
    assert raw["scores"].shape == (0,) and raw["labels"].shape == (0,)
    if predictor.family == "polygons":
        assert raw["vertices"].shape[0] == 0 and raw["vertices"].shape[2] == 2
    else:
        assert raw["boxes"].shape == (0, 4)
        assert raw["masks"].shape == (0, 90, 120) and raw["masks"].dtype == np.bool_
    found = predictor(image)
    assert len(found) == 0 and found.image_size == (90, 120)
