"""Write predictions to disk: COCO results json, 16-bit label maps, overlay PNGs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def save_label_map(label_map: np.ndarray, path: Path) -> None:
    """Save a label map as 16-bit PNG (or 32-bit TIFF when it needs more than 16 bits)."""
    if label_map.dtype == np.uint16:
        Image.fromarray(label_map).save(path)
    else:
        import tifffile

        tifffile.imwrite(path.with_suffix(".tif"), label_map.astype(np.uint32))


def write_json_atomic(data: Any, path: Path) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def results_to_coco_images(files: Sequence[tuple[int, Path, tuple[int, int]]]) -> list[dict[str, Any]]:
    """COCO ``images`` entries for predicted files (id, file name, size), so results carry their images."""
    return [{"id": i, "file_name": p.name, "height": h, "width": w} for i, p, (h, w) in files]
