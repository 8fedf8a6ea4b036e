"""``create_app(predictor)``: the instseg HTTP API and web page as a FastAPI app (mountable in any ASGI app).

Routes: ``POST /v1/predict`` (an image in, instances out), ``GET /v1/models``, ``GET /healthz`` (the process
answers), ``GET /readyz`` (the model worker runs), ``GET /metrics`` (Prometheus text) and ``GET /`` (the page).
"""

from __future__ import annotations

import hmac
import json
import time
from importlib import resources
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from instseg.inference.predictor import Predictor
from instseg.serve.backend import Backend, PredictorBackend
from instseg.serve.batching import BatchInfo, DynamicBatcher, QueueFull
from instseg.serve.decode import decode_image
from instseg.serve.errors import ApiError, install_error_handlers
from instseg.serve.metrics import ServeMetrics
from instseg.serve.middleware import BodyLimitMiddleware, MetricsMiddleware
from instseg.serve.responses import encode_prediction
from instseg.serve.settings import ServeSettings
from instseg.serve.upload import read_upload
from instseg.structures import Instances

MaskFormat = Literal["rle", "polygon", "png"]


def as_backend(predictor: Any, name: str | None = None, version: str | None = None) -> Backend:
    """A ``Backend`` from an ``instseg.Predictor``, a bare model (wrapped in a default ``Predictor``) or a backend."""
    if isinstance(predictor, Predictor):
        return PredictorBackend(predictor, name, version)
    if hasattr(predictor, "predict_batch") and hasattr(predictor, "describe"):
        return predictor  # type: ignore[no-any-return]
    from instseg.methods.segmenter import InstanceSegmenter

    if isinstance(predictor, InstanceSegmenter):
        return PredictorBackend(Predictor(predictor, device=predictor.pixel_mean.device), name, version)
    raise TypeError(f"create_app needs an instseg.Predictor, a model or a serving backend, got {type(predictor)}")


def _page() -> str:
    """The web page (one self-contained HTML file shipped in the package)."""
    return resources.files("instseg.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(
    predictor: Any, settings: ServeSettings | None = None, name: str | None = None, version: str | None = None
) -> FastAPI:
    """The HTTP app serving ``predictor`` (``instseg.Predictor``, a model, or a ``Backend``) under ``settings``."""
    settings = settings or ServeSettings()
    backend = as_backend(predictor, name, version)
    metrics = ServeMetrics()
    batcher: DynamicBatcher[np.ndarray, Instances] = DynamicBatcher(
        backend.predict_batch,
        max_batch=settings.max_batch,
        timeout_s=settings.batch_timeout_ms / 1000,
        queue_size=settings.queue_size,
        on_batch=metrics.observe_batch,
    )
    metrics.track_queue(lambda: batcher.depth)
    model_name = str(backend.describe()["name"])
    page = _page()

    async def lifespan(_: FastAPI) -> Any:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="instseg",
        summary="Instance segmentation over HTTP",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.backend = backend
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def running_batcher() -> DynamicBatcher[np.ndarray, Instances]:
        # a mounted sub-app gets no lifespan events: the worker then starts with the first request
        if not batcher.running:
            await batcher.start()
        return batcher

    def require_key(request: Request) -> None:
        if not settings.api_keys:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        # compare against every key in constant time, so timing tells nothing about a key's prefix
        ok = any(hmac.compare_digest(given.encode(), key.encode()) for key in settings.api_keys)
        if not ok:
            raise ApiError(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """The model is loaded and its worker runs (503 otherwise)."""
        worker = await running_batcher()
        if not worker.running:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "queue_depth": worker.depth, "queue_size": settings.queue_size})

    @app.get("/metrics", dependencies=[Depends(require_key)])
    async def metrics_text() -> Response:
        """Prometheus text: requests, latency histogram, queue depth, batch sizes."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> dict[str, Any]:
        """The served model: name, classes, input rule and version."""
        return {
            "models": [backend.describe()],
            "limits": {
                "max_upload_mb": settings.max_upload_mb,
                "max_pixels": settings.max_pixels,
                "max_batch": settings.max_batch,
                "batch_timeout_ms": settings.batch_timeout_ms,
                "queue_size": settings.queue_size,
            },
            "mask_formats": ["rle", "polygon", "png"],
        }

    @app.post("/v1/predict", dependencies=[Depends(require_key)])
    async def predict(
        request: Request,
        score_thr: float | None = Query(None, ge=0.0, le=1.0, description="Drop instances scoring below this."),
        mask_format: MaskFormat = Query("rle", description="rle (COCO compressed RLE), polygon or png (label map)."),
        max_instances: int | None = Query(None, ge=0, le=1_000_000, description="Keep the best N instances."),
    ) -> Response:
        """Segment one image: multipart ``file``, JSON ``{"image": base64}`` or raw image bytes."""
        start = time.perf_counter()
        data, name = await read_upload(request)
        image = await run_in_threadpool(decode_image, data, name, settings.max_pixels)
        decoded = time.perf_counter()
        worker = await running_batcher()
        try:
            found, info = await worker.submit(image)
        except QueueFull as err:
            metrics.rejected.inc()
            raise ApiError(
                503, f"the server is busy ({err}); retry later", {"Retry-After": str(settings.retry_after_s)}
            ) from err
        predicted = time.perf_counter()
        limit = settings.max_instances if max_instances is None else max_instances
        body = await run_in_threadpool(
            encode_prediction, found, backend.class_names, backend.category_ids, mask_format, score_thr, limit
        )
        metrics.instances.inc(len(body["instances"]))
        done = time.perf_counter()
        head = {"name": name, "model": model_name, "mask_format": mask_format, "count": len(body["instances"])}
        head.update(batch_size=info.batch_size, timing_ms=_timing(start, decoded, predicted, done, info))
        # serialised in a worker thread with the standard json module: FastAPI's generic encoder walks every
        # number of every polygon in Python and takes longer than the model on crowded images
        content = await run_in_threadpool(_json_bytes, {**head, **body})
        return Response(content, media_type="application/json")

    return app


def _json_bytes(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":")).encode()


def _timing(start: float, decoded: float, predicted: float, done: float, info: BatchInfo) -> dict[str, float]:
    """Milliseconds spent reading and decoding, waiting in the queue, in the model, encoding, and in all."""
    return {
        "decode": round((decoded - start) * 1000, 2),
        "queue": round(info.queue_s * 1000, 2),
        "inference": round(info.run_s * 1000, 2),
        "encode": round((done - predicted) * 1000, 2),
        "total": round((done - start) * 1000, 2),
    }
