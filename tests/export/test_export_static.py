"""A static export (``dynamic=False``) runs images of its size and refuses others by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from instseg_runtime import OnnxPredictor

import instseg
from instseg.export import to_onnx


def test_static_export_takes_only_its_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = instseg.create_model("watershed_unet", num_classes=1, min_size=96, max_size=128)
    path = to_onnx(model, tmp_path / "static.onnx", dynamic=False, example_size=(90, 120))
    predictor = OnnxPredictor(path, threads=1)
    rng = np.random.default_rng(0)
    outputs, size = predictor.raw(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    assert size == (90, 120) and outputs["fg_prob"].shape == (90, 120)
    with pytest.raises(ValueError, match=r"static\.onnx: exported for images resized to 96x128 only"):
        predictor(rng.integers(0, 255, (60, 200, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        to_onnx(model, tmp_path / "model.bin")
