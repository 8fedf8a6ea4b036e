"""A tiny COCO data set on disk for the data tests: every segmentation form, crowd, an empty image.

Images (``h x w``): ``a.png`` 10x12 RGB with a square polygon, an RLE ring (a hole), a two-part polygon and an
uncompressed-RLE crowd region; ``b.png`` 8x8 grey with one object of the second class; ``c.png`` 6x6 with none.
Categories have ids 3 ("cat") and 7 ("dog"), so labels 0/1 differ from the ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from instseg.structures.masks import mask_to_rle


def _uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE: column-major run lengths, starting with a (possibly empty) background run."""
    counts, value, run = [], False, 0
    for v in mask.flatten(order="F"):
        if bool(v) == value:
            run += 1
        else:
            counts.append(run)
            value, run = bool(v), 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def expected_masks() -> dict[int, np.ndarray]:
    """Annotation id -> its mask, as the json below encodes it."""
    square = np.zeros((10, 12), bool)
    square[1:4, 1:4] = True
    ring = np.zeros((10, 12), bool)
    ring[4:9, 5:10] = True
    ring[6, 7] = False
    parts = np.zeros((10, 12), bool)
    parts[0:2, 8:10] = True
    parts[8:10, 0:2] = True
    crowd = np.zeros((10, 12), bool)
    crowd[0:3, 10:12] = True
    dog = np.zeros((8, 8), bool)
    dog[2:6, 3:7] = True
    return {1: square, 2: ring, 3: parts, 4: crowd, 5: dog}


def coco_dict() -> dict[str, Any]:
    """The json content (before writing)."""
    m = expected_masks()
    crowd_rle = _uncompressed(m[4])
    assert sum(crowd_rle["counts"]) == 120
    return {
        "images": [
            {"id": 10, "file_name": "a.png", "height": 10, "width": 12},
            {"id": 20, "file_name": "b.png", "height": 8, "width": 8},
            {"id": 30, "file_name": "c.png", "height": 6, "width": 6},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 3,
                "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]],
                "bbox": [1, 1, 3, 3],
                "area": 9,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 10,
                "category_id": 3,
                "segmentation": mask_to_rle(m[2]),
                "bbox": [5, 4, 5, 5],
                "area": 24,
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 10,
                "category_id": 7,
                "segmentation": [[8, 0, 10, 0, 10, 2, 8, 2], [0, 8, 2, 8, 2, 10, 0, 10]],
                "area": 8,
                "iscrowd": 0,
            },
            {"id": 4, "image_id": 10, "category_id": 3, "segmentation": crowd_rle, "area": 6, "iscrowd": 1},
            {"id": 5, "image_id": 20, "category_id": 7, "segmentation": mask_to_rle(m[5]), "area": 16, "iscrowd": 0},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    }


def write_images(images_dir: Path) -> None:
    """The three image files."""
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(images_dir / "a.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(images_dir / "b.png")
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(images_dir / "c.png")


def make_coco_dir(root: Path, data: dict[str, Any] | None = None, split: str = "train") -> Path:
    """Write ``root/images`` + ``root/annotations/instances_{split}.json``; returns the json path."""
    write_images(root / "images")
    ann = root / "annotations" / f"instances_{split}.json"
    ann.parent.mkdir(parents=True, exist_ok=True)
    ann.write_text(json.dumps(coco_dict() if data is None else data))
    return ann
