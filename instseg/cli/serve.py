"""``instseg serve``: the HTTP API and web page for a checkpoint (or the shipped default model) with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer


def serve(
    model: str | None = typer.Argument(
        None, help="Checkpoint (.pt/.pth/.safetensors) or exported .onnx file; default: the shipped model."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes, each with its own model."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, max=256, help="Most images per model batch."),
    batch_timeout_ms: float = typer.Option(
        10.0, "--batch-timeout-ms", min=0.0, max=10_000.0, help="How long a batch waits for more requests."
    ),
    queue_size: int = typer.Option(64, "--queue-size", min=1, help="Requests that may wait; beyond: 503."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", min=0.001, help="Largest request body (413)."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest image in pixels (413)."),
    api_key_file: Path | None = typer.Option(
        None, "--api-key-file", help="File with one API key per line; then /v1/* and /metrics need a key (401)."
    ),
    score_thr: float | None = typer.Option(None, "--score-thr", min=0.0, max=1.0, help="Drop instances below this."),
    tile: int | None = typer.Option(None, "--tile", min=0, help="Tile size for large images (0: never tile)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
) -> None:
    """Serve a model over HTTP: POST /v1/predict, GET /v1/models, /healthz, /readyz, /metrics and a web page at /."""
    from instseg.cli.errors import fail

    try:
        import uvicorn

        from instseg.serve.app import create_app
    except ImportError as err:
        raise fail(
            f"instseg serve needs the serve extra ({err.name} is missing): pip install 'instseg[serve]'"
        ) from err
    from instseg.serve.loading import SPEC_ENV, load_backend, write_spec
    from instseg.serve.settings import ServeSettings, read_api_keys

    try:
        keys = read_api_keys(api_key_file) if api_key_file is not None else frozenset()
        settings = ServeSettings(
            max_batch=max_batch,
            batch_timeout_ms=batch_timeout_ms,
            queue_size=queue_size,
            max_upload_mb=max_upload_mb,
            max_pixels=max_pixels,
            api_keys=keys,
        )
        backend = load_backend(model, device, score_thr, tile)
    except ValueError as err:
        raise fail(str(err), code=2) from err
    where = f"http://{host}:{port}/"
    typer.echo(f"serving {backend.describe()['name']} on {where} (page at /, API at /v1/predict)", err=True)
    if not keys and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            "warning: listening beyond this machine without --api-key-file: anyone who can reach it may use it",
            err=True,
        )
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "server_header": False,  # no server software banner in responses
        "log_level": "info",
        "access_log": False,
        # longer than uvicorn's 5 s: clients pausing between images (or honouring Retry-After) keep their
        # connection instead of racing its close
        "timeout_keep_alive": 30,
    }
    if workers == 1:
        uvicorn.run(create_app(backend, settings), **common)
        return
    # several processes: uvicorn imports the app factory in each; the model is loaded there, not here
    del backend
    os.environ[SPEC_ENV] = write_spec(model, device, score_thr, tile, settings, api_key_file)
    uvicorn.run("instseg.serve.loading:app_from_environment", factory=True, workers=workers, **common)
