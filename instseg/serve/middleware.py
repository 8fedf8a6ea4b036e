"""ASGI middleware: a hard limit on request bodies (413 before the app reads them) and per-route metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from instseg.serve.errors import CODES
from instseg.serve.metrics import ServeMetrics

ROUTES = ("/", "/v1/predict", "/v1/models", "/healthz", "/readyz", "/metrics")


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being received."""


async def _send_json_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "code": CODES[status], "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: at once from ``Content-Length``, else while receiving."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over the limit of {self.max_bytes / 2**20:.4g} MB"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json_error(send, 400, "the Content-Length header is not a number")
                    return
                if declared > self.max_bytes:
                    await _send_json_error(send, 413, message)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_json_error(send, 413, message)


class MetricsMiddleware:
    """Count every HTTP request by route template (unknown paths as ``other``) and status, with its latency."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def status_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, status_send)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            self.metrics.observe_request(route, status["code"], time.perf_counter() - start)
