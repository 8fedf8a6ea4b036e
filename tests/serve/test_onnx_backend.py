"""Serving an exported ``.onnx`` file through the torch-free runtime gives that runtime's objects, encoded alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from instseg.data.image_io import read_image
from instseg.serve import create_app
from instseg.serve.loading import load_backend
from instseg.structures.masks import rle_to_mask
from tests.serve.server_harness import sample_images


def test_onnx_file_is_served_with_the_runtime(default_backend: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="onnx is not installed")
    runtime = pytest.importorskip("instseg_runtime", reason="instseg-runtime is not installed")
    from instseg.export.onnx_export import to_onnx

    path = to_onnx(default_backend.predictor.model, tmp_path / "nuclei.onnx")
    backend = load_backend(path)
    image_path = sample_images()[0]
    direct = runtime.OnnxPredictor(path)(read_image(image_path))
    with TestClient(create_app(backend)) as client:
        model = client.get("/v1/models").json()["models"][0]
        assert model["backend"] == "onnxruntime" and model["classes"][0]["name"] == "nucleus"
        files = {"file": (image_path.name, image_path.read_bytes(), "image/png")}
        body = client.post("/v1/predict", files=files).json()
    assert body["count"] == len(direct) > 5
    order = np.argsort(-direct.scores, kind="stable")
    for served, i in zip(body["instances"], order, strict=True):
        assert served["score"] == pytest.approx(float(direct.scores[i]), abs=1e-6)
        assert np.array_equal(rle_to_mask(served["mask"]), direct.masks[i])
    torch_count = len(default_backend.predictor(read_image(image_path)))
    assert abs(body["count"] - torch_count) <= max(1, torch_count // 10)  # the export agrees with PyTorch
