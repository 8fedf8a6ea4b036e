"""Build a serving backend from a model file: a checkpoint (read with ``weights_only=True``) or an ONNX file.

Also the app factory uvicorn calls in each worker process when ``instseg serve --workers N`` runs several
(every process loads its own model from the same file; the spec travels in one environment variable).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from instseg.serve.backend import Backend, PredictorBackend
from instseg.serve.settings import ServeSettings, read_api_keys

SPEC_ENV = "INSTSEG_SERVE_SPEC"
ONNX_SUFFIX = ".onnx"


def file_version(path: Path) -> str:
    """``sha256:<first 12 hex digits>`` of a file: which weights answer, without naming where they lie."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:12]}"


def load_backend(
    model: str | Path | None = None,
    device: str = "cpu",
    score_thr: float | None = None,
    tile_size: int | None = None,
) -> Backend:
    """The backend for ``model``: None = the shipped default model, a checkpoint, or an exported ``.onnx`` file."""
    from instseg.engine.checkpoint import checkpoint_config, default_weights_path, load_checkpoint, model_from_state
    from instseg.inference.predictor import AUTO_TILE_ABOVE, Predictor

    path = Path(model) if model is not None else default_weights_path()
    if path.suffix.lower() == ONNX_SUFFIX:
        from instseg.serve.onnx_backend import onnx_backend

        return onnx_backend(path, score_thr, file_version(path) if path.is_file() else None)
    state = load_checkpoint(path)  # weights_only=True: loading never runs code from the file
    net = model_from_state(state, path.name, device)
    name = checkpoint_config(state, path.name).model.name
    predictor = Predictor(
        net,  # type: ignore[arg-type]
        device=device,
        score_thr=score_thr,
        tile_size=tile_size or None,
        auto_tile_above=None if tile_size == 0 else AUTO_TILE_ABOVE,
    )
    if tile_size and tile_size <= predictor.tile_overlap:
        raise ValueError(
            f"tile size {tile_size}: give 0 (never tile) or more than the {predictor.tile_overlap}-px overlap"
        )
    return PredictorBackend(predictor, name=name, version=file_version(path))


def write_spec(
    model: str | None,
    device: str,
    score_thr: float | None,
    tile: int | None,
    settings: ServeSettings,
    api_key_file: Path | None,
) -> str:
    """The JSON spec ``app_from_environment`` rebuilds the app from (the key file's path, never the keys)."""
    fields = {k: v for k, v in asdict(settings).items() if k != "api_keys"}
    spec = {
        "model": model,
        "device": device,
        "score_thr": score_thr,
        "tile": tile,
        "settings": fields,
        "api_key_file": str(api_key_file) if api_key_file else None,
    }
    return json.dumps(spec)


def app_from_environment() -> FastAPI:
    """The app described by the ``INSTSEG_SERVE_SPEC`` environment variable (uvicorn factory for worker processes)."""
    from instseg.serve.app import create_app

    spec: dict[str, Any] = json.loads(os.environ[SPEC_ENV])
    keys = read_api_keys(Path(spec["api_key_file"])) if spec.get("api_key_file") else frozenset()
    settings = ServeSettings(**spec["settings"], api_keys=keys)
    backend = load_backend(spec["model"], spec["device"], spec["score_thr"], spec["tile"])
    return create_app(backend, settings)
