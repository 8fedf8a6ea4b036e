"""Write prediction files: COCO results json and the list of images it covers (atomically), label maps, overlays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instseg.structures import Instances


def write_json_atomic(data: Any, path: Path) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    from instseg.data.atomic_files import write_atomic  # normal umask permissions, stale temporaries removed

    write_atomic(path, lambda f: f.write(json.dumps(data).encode("utf-8")))


def results_to_coco_images(files: Sequence[tuple[int, Path, tuple[int, int]]]) -> list[dict[str, Any]]:
    """COCO ``images`` entries for predicted files (id, file name, size), so results carry their images."""
    return [{"id": i, "file_name": p.name, "height": h, "width": w} for i, p, (h, w) in files]


def write_label_map_of(instances: Instances, stem_path: Path) -> Path:
    """Paint ``instances`` into one label map (the one painter and overlap rule of ``instseg.structures.label_map``)
    and write it at ``stem_path`` + ``.png`` (16-bit) or ``.tif`` (32-bit, past 65535 objects); returns the path.

    Compact instances are painted crop by crop: memory is one H x W map plus the objects' crops.
    """
    from instseg.data.label_images import label_map_suffix, write_label_map
    from instseg.structures.box_masks import BoxMasks
    from instseg.structures.label_map import paint_box_masks

    box_masks = instances.box_masks if instances.has_masks else None
    if box_masks is None:  # box-only predictions: an empty map of the image's size
        box_masks = BoxMasks.empty(instances.image_size)
    painted = paint_box_masks(box_masks.to("cpu"), count_overlaps=False)
    path = stem_path.with_name(stem_path.name + label_map_suffix(len(instances)))
    write_label_map(path, painted.label_map)
    return path


def write_overlay(
    image: np.ndarray, instances: Instances, path: Path, class_names: Sequence[str] | None = None
) -> Path:
    """Draw ``instances`` over ``image`` ([H, W, 3] uint8) straight from their masks (no label map) as a PNG."""
    from PIL import Image

    from instseg.viz.overlay import draw_instances

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(draw_instances(image, instances, class_names)).save(path)
    return path
