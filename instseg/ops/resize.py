"""The one resize rule shared by models (inference), data pipelines (training and evaluation) and exported models:
``resized_shape(height, width, min_size, max_size)``, kept in the torch-free runtime so that both sides agree."""

from __future__ import annotations

from instseg_runtime.image import resized_shape

__all__ = ["resized_shape"]
