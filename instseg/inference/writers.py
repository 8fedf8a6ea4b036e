"""Write prediction files atomically: COCO results json and the list of images it covers."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
