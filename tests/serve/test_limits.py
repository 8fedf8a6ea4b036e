"""Every refusal of the API: its status, its JSON body naming the fault, and nothing of the server's internals."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from instseg.serve import ServeSettings, create_app
from instseg.serve.settings import read_api_keys
from tests.serve.server_harness import ROOT, FakeBackend

KEY = "k" * 20 + "-test-key"


def png_bytes(h: int = 64, w: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _error(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["status"] == status and err["code"] and err["message"]
    for word in words:
        assert word in err["message"], err["message"]
    assert "Traceback" not in r.text and str(ROOT) not in r.text and "site-packages" not in r.text
    return err


@pytest.fixture()
def client() -> Any:
    settings = ServeSettings(max_upload_mb=0.05, max_pixels=100 * 100)
    with TestClient(create_app(FakeBackend(), settings)) as c:
        yield c


def test_fake_backend_round_trip(client: TestClient) -> None:
    body = client.post("/v1/predict", files={"file": ("a.png", png_bytes(), "image/png")}).json()
    assert body["count"] == 1 and body["instances"][0]["category_id"] == 7
    assert body["instances"][0]["box"] == [12.0, 16.0, 24.0, 32.0] and body["instances"][0]["area"] == 12 * 16


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(60_000)
    _error(client.post("/v1/predict", files={"file": ("a.png", big, "image/png")}), 413, "0.05 MB")

    def chunks() -> Any:  # no Content-Length: the limit applies while the body streams in
        for _ in range(20):
            yield bytes(10_000)

    _error(client.post("/v1/predict", content=chunks(), headers={"content-type": "image/png"}), 413, "limit")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width x height`` pixels, with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_too_many_pixels_is_413_before_decoding(client: TestClient) -> None:
    _error(client.post("/v1/predict", files={"file": ("big.png", png_bytes(200, 100), "image/png")}), 413, "pixels")
    # a 100-byte file claiming 30000 x 30000 pixels is refused from its header, never decoded
    _error(client.post("/v1/predict", files={"file": ("bomb.png", png_header_only(30000, 30000))}), 413, "bomb.png")
    _error(client.post("/v1/predict", files={"file": ("wide.png", png_header_only(5000, 3))}), 413, "5000x3")


def test_not_an_image_is_415_and_wrong_content_type_too(client: TestClient) -> None:
    err = _error(client.post("/v1/predict", files={"file": ("a.png", b"%PDF-1.4 hello", "image/png")}), 415, "a.png")
    assert "PNG, JPEG, TIFF" in err["message"]
    _error(client.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"}), 415, "text/plain")


def test_undecodable_images_and_bad_bodies_are_422(client: TestClient) -> None:
    truncated = png_bytes()[:80]
    _error(client.post("/v1/predict", files={"file": ("cut.png", truncated, "image/png")}), 422, "cut.png")
    _error(client.post("/v1/predict", files={"other": ("a.png", png_bytes(), "image/png")}), 422, "'file'")
    _error(client.post("/v1/predict", files={"file": ("e.png", b"", "image/png")}), 422, "empty")
    _error(client.post("/v1/predict", json={"image": "!!not base64!!"}), 422, "base64")
    _error(client.post("/v1/predict", json={"picture": "abc"}), 422, "'image'")
    bad_json = client.post("/v1/predict", content=b"{oops", headers={"content-type": "application/json"})
    _error(bad_json, 422, "JSON")
    encoded = base64.b64encode(png_bytes()).decode()
    for query, word in (("score_thr=2", "score_thr"), ("mask_format=svg", "mask_format"), ("max_instances=-1", "max")):
        _error(client.post(f"/v1/predict?{query}", json={"image": encoded}), 422, word)


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    _error(client.get("/v2/nothing"), 404)
    _error(client.get("/v1/predict"), 405)


def test_api_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# serving keys\n{KEY}\n\n")
    settings = ServeSettings(api_keys=read_api_keys(key_file))
    with TestClient(create_app(FakeBackend(), settings)) as c:
        files = {"file": ("a.png", png_bytes(), "image/png")}
        err = _error(c.post("/v1/predict", files=files), 401, "API key")
        assert err["code"] == "unauthorized"
        _error(c.post("/v1/predict", files=files, headers={"Authorization": "Bearer wrong"}), 401)
        _error(c.get("/v1/models"), 401)
        _error(c.get("/metrics"), 401)
        assert c.post("/v1/predict", files=files, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert c.get("/v1/models", headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200  # page and probes stay open
    (tmp_path / "short.txt").write_text("abc\n")
    with pytest.raises(ValueError, match="shorter than 16"):
        read_api_keys(tmp_path / "short.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no key"):
        read_api_keys(tmp_path / "empty.txt")


def test_full_queue_is_503_with_retry_after() -> None:
    backend = FakeBackend()
    backend.release.clear()  # the first batch blocks inside the model until released
    app = create_app(backend, ServeSettings(max_batch=1, batch_timeout_ms=0, queue_size=2, retry_after_s=3))

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            files = {"file": ("a.png", png_bytes(), "image/png")}
            running = asyncio.create_task(c.post("/v1/predict", files=files))
            while not backend.started.is_set():  # one request is inside the model
                await asyncio.sleep(0.01)
            waiting = [asyncio.create_task(c.post("/v1/predict", files=files)) for _ in range(2)]
            while app.state.batcher.depth < 2:  # the queue (size 2) is full
                await asyncio.sleep(0.01)
            refused = await c.post("/v1/predict", files=files)
            ready = await c.get("/readyz")
            backend.release.set()
            return [refused, ready, await running, *[await w for w in waiting]]

    refused, ready, *served = asyncio.run(scenario())
    _error(refused, 503, "busy")
    assert refused.headers["retry-after"] == "3"
    assert ready.status_code == 200 and ready.json()["queue_depth"] == 2
    assert [r.status_code for r in served] == [200, 200, 200]


def test_model_failure_is_a_bare_500() -> None:
    with TestClient(create_app(FakeBackend(fail=True)), raise_server_exceptions=False) as c:
        r = c.post("/v1/predict", files={"file": ("a.png", png_bytes(), "image/png")})
    err = _error(r, 500)
    assert "secret" not in r.text and "exploded" not in r.text and err["code"] == "internal_error"
