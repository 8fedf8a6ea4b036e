"""``load_model_file``: a checkpoint or an exported ``.onnx`` file, opened as a model ``instseg.Predictor`` drives.

Every path that predicts from a file (images, videos, slides, Ray actors) opens it here, so an exported file
works wherever a checkpoint does: ``.onnx`` becomes an ``instseg.export.onnx_model.OnnxModel`` (onnxruntime on
the CPU, the torch-free runtime's grouping), anything else (or ``None``, the shipped default model) is rebuilt by
``instseg.engine.checkpoint.load_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ONNX_SUFFIX = ".onnx"


def is_onnx_file(path: str | Path | None) -> bool:
    """Whether ``path`` names an exported ONNX file (by its suffix)."""
    return path is not None and Path(path).suffix.lower() == ONNX_SUFFIX


def load_model_file(path: str | Path | None, device: str = "cpu", threads: int | None = None) -> Any:
    """The model in ``path``: an ``InstanceSegmenter`` for a checkpoint (``None``: the shipped default model), an
    ``OnnxModel`` for an exported ``.onnx`` file (CPU only; ``threads`` bounds onnxruntime's intra-op threads).

    Raises ``ValueError`` naming the file when it cannot be read or an ``.onnx`` file is asked to run off the CPU.
    """
    if is_onnx_file(path):
        from instseg.export.onnx_model import OnnxModel

        assert path is not None  # is_onnx_file(None) is False
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such exported model file")
        return OnnxModel(path, threads=threads).to(device)  # .to refuses any device but the CPU
    from instseg.engine.checkpoint import load_model

    return load_model(path, device=device)
