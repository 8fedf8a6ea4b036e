"""The server answers with the numbers ``instseg predict`` writes: same masks (RLE), boxes, scores and classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from instseg.cli.main import app as cli
from instseg.serve import ServeSettings, create_app
from instseg.structures.masks import rle_to_mask
from tests.serve.server_harness import sample_images


def test_served_instances_equal_the_results_json_of_instseg_predict(default_backend: Any, tmp_path: Path) -> None:
    images = sample_images()[:4]
    out = tmp_path / "pred"
    run = CliRunner().invoke(cli, ["predict", *map(str, images), "--out", str(out), "--no-overlays"])
    assert run.exit_code == 0, run.output
    results = json.loads((out / "results.json").read_text())
    ids = {im["file_name"]: im["id"] for im in json.loads((out / "images.json").read_text())["images"]}

    with TestClient(create_app(default_backend, ServeSettings(max_batch=4))) as client:
        for path in images:
            body = client.post("/v1/predict", files={"file": (path.name, path.read_bytes(), "image/png")}).json()
            written = sorted((r for r in results if r["image_id"] == ids[path.name]), key=lambda r: -r["score"])
            assert body["count"] == len(written) > 5, path.name
            for served, ref in zip(body["instances"], written, strict=True):
                assert served["score"] == ref["score"] and served["category_id"] == ref["category_id"]
                x0, y0, x1, y1 = served["box"]
                assert [x0, y0, x1 - x0, y1 - y0] == ref["bbox"] and served["area"] == ref["area"]
                assert served["mask"] == ref["segmentation"]  # the same compressed RLE string
                assert np.array_equal(rle_to_mask(served["mask"]), rle_to_mask(ref["segmentation"]))
