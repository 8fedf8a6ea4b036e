"""The HTTP API against the shipped model: every endpoint, every mask format, and the library (mounted) use."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from instseg.engine.checkpoint import checkpoint_config, default_weights_path, load_checkpoint
from instseg.serve import ServeSettings, create_app
from instseg.structures.masks import polygons_to_mask, rle_to_mask
from tests.serve.server_harness import sample_images


@pytest.fixture(scope="module")
def client(default_backend: Any) -> Iterator[TestClient]:
    with TestClient(create_app(default_backend, ServeSettings(max_batch=4, batch_timeout_ms=5))) as c:
        yield c


def _post(client: TestClient, data: bytes, query: str = "", name: str = "cells.png") -> Any:
    r = client.post(f"/v1/predict{query}", files={"file": (name, data, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()


def test_page_health_ready_models(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<canvas" in page.text and "v1/predict" in page.text
    # self-contained: no script, style or image is fetched from anywhere else
    assert "http://" not in page.text and "https://" not in page.text
    assert "<script src" not in page.text and "<link" not in page.text and "@import" not in page.text
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    models = client.get("/v1/models").json()
    model = models["models"][0]
    stored = checkpoint_config(load_checkpoint(default_weights_path())).model.name
    assert model["name"] == stored and model["backend"] == "pytorch"
    assert [c["name"] for c in model["classes"]] == ["nucleus"] and model["classes"][0]["category_id"] == 1
    assert model["version"].startswith("sha256:") and model["input"]["size_divisibility"] == 32
    assert models["mask_formats"] == ["rle", "polygon", "png"]


def test_predict_rle_masks_are_consistent(client: TestClient) -> None:
    path = sample_images()[0]
    body = _post(client, path.read_bytes(), name=path.name)
    h, w = np.asarray(Image.open(path)).shape[:2]
    assert (body["height"], body["width"]) == (h, w) and body["name"] == path.name and body["mask_format"] == "rle"
    assert body["count"] == len(body["instances"]) > 5
    assert set(body["timing_ms"]) == {"decode", "queue", "inference", "encode", "total"}
    scores = [inst["score"] for inst in body["instances"]]
    assert scores == sorted(scores, reverse=True)
    for inst in body["instances"]:
        mask = rle_to_mask(inst["mask"])
        assert mask.shape == (h, w) and int(mask.sum()) == inst["area"] > 0
        ys, xs = np.nonzero(mask)
        assert inst["box"] == [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        assert inst["label"] == 0 and inst["label_name"] == "nucleus" and inst["category_id"] == 1


def test_polygon_and_png_formats_give_the_same_masks(client: TestClient) -> None:
    data = sample_images()[1].read_bytes()
    rle = _post(client, data)
    poly = _post(client, data, "?mask_format=polygon")
    png = _post(client, data, "?mask_format=png")
    h, w = rle["height"], rle["width"]
    assert rle["count"] == poly["count"] == png["count"]
    label_map = np.asarray(Image.open(io.BytesIO(base64.b64decode(png["label_map"]["data"]))))
    assert label_map.shape == (h, w) and int(label_map.max()) == png["count"]
    painted = np.zeros((h, w), dtype=bool)
    for a, b, c in zip(rle["instances"], poly["instances"], png["instances"], strict=True):
        assert a["score"] == b["score"] == c["score"] and a["box"] == b["box"] == c["box"]
        mask = rle_to_mask(a["mask"])
        assert np.array_equal(polygons_to_mask(b["mask"], h, w), mask)  # exact polygons of the same mask
        in_map = label_map == c["mask"]["value"]
        assert not (in_map & ~mask).any()  # the label map gives an object only its own pixels
        painted |= mask
    assert np.array_equal(label_map > 0, painted)


def test_json_base64_raw_bytes_and_options(client: TestClient) -> None:
    data = sample_images()[2].read_bytes()
    ref = _post(client, data)
    for prefix in ("", "data:image/png;base64,"):
        r = client.post("/v1/predict", json={"image": prefix + base64.b64encode(data).decode(), "filename": "x.png"})
        assert r.status_code == 200 and r.json()["instances"] == ref["instances"] and r.json()["name"] == "x.png"
    raw = client.post("/v1/predict", content=data, headers={"content-type": "image/png"})
    assert raw.status_code == 200 and raw.json()["instances"] == ref["instances"]
    cut = sorted(inst["score"] for inst in ref["instances"])[len(ref["instances"]) // 2]
    high = _post(client, data, f"?score_thr={cut}")
    assert high["instances"] == [inst for inst in ref["instances"] if inst["score"] >= cut][: high["count"]]
    assert 0 < high["count"] < ref["count"]
    top3 = _post(client, data, "?max_instances=3")
    assert [i["mask"] for i in top3["instances"]] == [i["mask"] for i in ref["instances"][:3]]


def test_grey_16bit_tiff_upload(client: TestClient) -> None:
    import tifffile

    grey = np.asarray(Image.open(sample_images()[0]).convert("L")).astype(np.uint16) * 40 + 1000
    buf = io.BytesIO()
    tifffile.imwrite(buf, grey)
    body = _post(client, buf.getvalue(), name="cells.tif")
    assert (body["height"], body["width"]) == grey.shape and body["count"] > 5


def test_metrics_count_requests_batches_and_queue(client: TestClient) -> None:
    _post(client, sample_images()[0].read_bytes())
    client.get("/nowhere")
    text = client.get("/metrics").text
    assert 'instseg_requests_total{route="/v1/predict",status="200"}' in text
    assert 'instseg_requests_total{route="other",status="404"}' in text
    assert 'instseg_request_latency_seconds_bucket{le="0.5",route="/v1/predict"}' in text
    assert "instseg_queue_depth 0.0" in text and "instseg_batch_size_count" in text
    count = next(line for line in text.splitlines() if line.startswith("instseg_batch_size_count"))
    assert float(count.split()[-1]) >= 1


def test_mounted_in_another_asgi_app(default_backend: Any) -> None:
    outer = FastAPI()
    outer.mount("/segment", create_app(default_backend))
    with TestClient(outer) as c:  # a mounted app gets no lifespan events: the worker starts on demand
        assert c.get("/segment/readyz").status_code == 200
        r = c.post("/segment/v1/predict", files={"file": ("a.png", sample_images()[0].read_bytes(), "image/png")})
        assert r.status_code == 200 and r.json()["count"] > 5


def test_uploads_are_read_by_the_rule_files_on_disk_are(
    client: TestClient, default_backend: Any, tmp_path: Any
) -> None:
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs is not installed")
    from instseg.data.image_io import read_image

    rgb16 = np.asarray(Image.open(sample_images()[3]).convert("RGB")).astype(np.uint16) * 30 + 500
    path = tmp_path / "cells16.png"
    path.write_bytes(imagecodecs.png_encode(rgb16))  # 16 bits per channel colour PNG
    body = _post(client, path.read_bytes(), name=path.name)
    expected = default_backend.predictor(read_image(path)).to_coco(1, [1])
    assert body["count"] == len(expected) > 5
    assert sorted(i["mask"]["counts"] for i in body["instances"]) == sorted(
        r["segmentation"]["counts"] for r in expected
    )
