"""The one resize rule shared by models (inference) and data pipelines (training and evaluation)."""

from __future__ import annotations


def resized_shape(height: int, width: int, min_size: int | None, max_size: int | None) -> tuple[int, int]:
    """Shape with the short side scaled to ``min_size`` and the long side kept <= ``max_size`` (aspect kept)."""
    scale = 1.0
    if min_size is not None:
        scale = min_size / min(height, width)
    if max_size is not None and max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
