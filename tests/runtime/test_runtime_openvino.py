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
    # objects are matched by IoU, not by position: two near-equal scores may swap places between the backends
    e, f = expected.masks.reshape(len(expected), -1), found.masks.reshape(len(found), -1)
    inter = e.astype(np.int64) @ f.T.astype(np.int64)
    union = e.sum(1)[:, None] + f.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)  # the two backends round differently: a threshold pixel may move
    best = iou.argmax(1)
    assert len(set(best.tolist())) == len(expected)  # one to one
    assert iou.max(1).mean() >= 0.995 and iou.max(1).min() >= 0.95
    assert np.abs(expected.boxes - found.boxes[best]).max() <= 1.0
