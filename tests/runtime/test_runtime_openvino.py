"""OpenVINO (CPU) runs the same exported file as onnxruntime and finds the same objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from instseg_runtime import OnnxPredictor
from PIL import Image
from runtime_testdata import SAMPLE_IMAGE, export_default


def test_openvino_backend_matches_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    path = export_default(tmp_path)
    image = np.asarray(Image.open(SAMPLE_IMAGE))
    expected = OnnxPredictor(path, threads=1)(image)
    found = OnnxPredictor(path, backend="openvino", threads=1)(image)
    assert len(expected) > 0 and len(found) == len(expected)
    inter = (expected.masks & found.masks).sum((1, 2))
    union = (expected.masks | found.masks).sum((1, 2))
    assert (inter / np.maximum(union, 1)).min() >= 0.99
    assert np.abs(expected.boxes - found.boxes).max() <= 1.0
