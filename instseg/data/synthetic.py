"""``SyntheticShapes``: a seeded data set of overlapping coloured shapes for tests, smoke training and demos.

Each image has a smooth random background with pixel noise and a few shapes (ellipses, rectangles,
triangles, stars, hexagons) painted one after another, so later shapes occlude earlier ones. The class of an
object is its shape kind; its colour is random, so a model must learn shape, not colour. Items have the same
format as ``CocoDataset``'s, and ``write_coco`` writes the set as PNGs + a COCO json so that the same loading
path as for real data can be exercised.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from skimage import draw
from skimage.color import hsv2rgb
from torch import Tensor
from torch.utils.data import Dataset

from instseg.ops.boxes import xyxy_to_xywh
from instseg.structures import Instances

SHAPE_KINDS = ("ellipse", "rectangle", "triangle", "star", "hexagon")

Transform = Callable[[Tensor, Instances], tuple[Tensor, Instances]]


def _polygon(kind: str, radius: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Vertices of a rotated polygon of ``kind``: array [V, 2] of (dy, dx) offsets from its centre."""
    if kind == "rectangle":
        half_w, half_h = radius, radius * rng.uniform(0.4, 1.0)
        corners = np.array([[-half_h, -half_w], [-half_h, half_w], [half_h, half_w], [half_h, -half_w]])
    else:
        if kind == "triangle":
            thetas = np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.3, 0.3, 3)
            radii = radius * rng.uniform(0.8, 1.1, 3)
        elif kind == "star":
            thetas = np.arange(10) * np.pi / 5
            radii = np.where(np.arange(10) % 2 == 0, radius, radius * rng.uniform(0.35, 0.55))
        elif kind == "hexagon":
            thetas = np.arange(6) * np.pi / 3
            radii = np.full(6, radius)
        else:  # pragma: no cover - kinds are fixed above
            raise AssertionError(kind)
        corners = np.stack([radii * np.sin(thetas), radii * np.cos(thetas)], axis=1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return corners @ rotation.T


class SyntheticShapes(Dataset[tuple[Tensor, Instances, dict[str, Any]]]):
    """Seeded synthetic instance-segmentation images; item ``i`` depends only on ``(seed, split, i)``.

    ``ds[i] -> (image Tensor[3, H, W] uint8, Instances (bool masks, labels 0..K-1, no scores),
    meta dict(image_id, file_name, original_size))``, as ``CocoDataset`` gives. Objects whose visible part
    (after occlusion and clipping at the image border) is below ``min_area`` pixels are dropped.
    """

    def __init__(
        self,
        num_images: int = 64,
        image_size: int | tuple[int, int] = 128,
        num_classes: int = 3,
        seed: int = 0,
        min_objects: int = 3,
        max_objects: int = 12,
        size_range: tuple[float, float] = (0.06, 0.22),
        min_area: int = 16,
        noise: float = 8.0,
        split: str = "train",
        transforms: Transform | None = None,
    ) -> None:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if num_images < 0 or height <= 0 or width <= 0:
            raise ValueError(f"need num_images >= 0 and a positive image_size, got {num_images}, {image_size}")
        if not 1 <= num_classes <= len(SHAPE_KINDS):
            raise ValueError(f"num_classes must be in 1..{len(SHAPE_KINDS)} (one per shape kind), got {num_classes}")
        if not 0 <= min_objects <= max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
        if not 0 < size_range[0] <= size_range[1]:
            raise ValueError(f"size_range must satisfy 0 < low <= high, got {size_range}")
        self.num_images = int(num_images)
        self.image_size = (int(height), int(width))
        self.seed = int(seed)
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.size_range = (float(size_range[0]), float(size_range[1]))
        self.min_area = int(min_area)
        self.noise = float(noise)
        self.split = split
        self.transforms = transforms
        self.class_names: list[str] = list(SHAPE_KINDS[:num_classes])
        self.category_ids: list[int] = list(range(1, num_classes + 1))
        self.num_classes = num_classes
        self.image_ids: list[int] = list(range(1, self.num_images + 1))

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        return (
            f"SyntheticShapes(num_images={self.num_images}, image_size={self.image_size}, "
            f"num_classes={self.num_classes}, seed={self.seed}, split={self.split!r})"
        )

    def file_name(self, index: int) -> str:
        """The PNG file name of image ``index`` (split-prefixed, so splits can share one images folder)."""
        return f"{self.split}_{index:06d}.png"

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render image ``index``: (image [H, W, 3] uint8, visible masks [N, H, W] bool, labels [N] int64)."""
        if not 0 <= index < self.num_images:
            raise IndexError(f"SyntheticShapes index {index} out of range for {self.num_images} images")
        # A generator per (seed, split, index): items do not depend on which were generated before.
        rng = np.random.default_rng([self.seed, zlib.crc32(self.split.encode()), index])
        h, w = self.image_size
        # Smooth background: blurred noise, rescaled around a random dark-to-mid grey-ish colour.
        field = ndimage.gaussian_filter(rng.normal(size=(h, w, 3)), sigma=(max(h, w) / 12, max(h, w) / 12, 0))
        field /= field.std() + 1e-6
        image = rng.uniform(30, 110, size=3) + 20.0 * field
        occupancy = np.zeros((h, w), dtype=np.int32)  # object index + 1 of the top-most painted object
        labels = []
        num_objects = int(rng.integers(self.min_objects, self.max_objects + 1))
        for k in range(num_objects):
            label = int(rng.integers(self.num_classes))
            kind = self.class_names[label]
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            radius = rng.uniform(*self.size_range) * min(h, w)
            angle = rng.uniform(0, 2 * np.pi)
            if kind == "ellipse":
                rr, cc = draw.ellipse(cy, cx, radius * rng.uniform(0.5, 1.0), radius, shape=(h, w), rotation=angle)
            else:
                offsets = _polygon(kind, radius, angle, rng)
                rr, cc = draw.polygon(cy + offsets[:, 0], cx + offsets[:, 1], shape=(h, w))
            # Random hue/saturation, bright value: contrast with the background without telling the class.
            hsv = np.array([rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.6, 1.0)])
            colour = hsv2rgb(hsv[None, None])[0, 0] * 255.0
            ramp = rng.normal(size=2) * 0.004  # a gentle shading gradient across the object
            shading = 1.0 + ramp[0] * (rr - cy) + ramp[1] * (cc - cx)
            image[rr, cc] = colour[None] * shading[:, None]
            occupancy[rr, cc] = k + 1
            labels.append(label)
        image += rng.normal(scale=self.noise, size=image.shape)
        masks = occupancy[None] == np.arange(1, num_objects + 1)[:, None, None]  # [N, H, W], visible parts
        keep = masks.reshape(num_objects, -1).sum(axis=1) >= max(self.min_area, 1)
        return (
            np.clip(np.rint(image), 0, 255).astype(np.uint8),
            masks[keep],
            np.asarray(labels, dtype=np.int64).reshape(-1)[keep],
        )

    def meta(self, index: int) -> dict[str, Any]:
        """``dict(image_id, file_name, original_size)`` of image ``index``."""
        return {"image_id": self.image_ids[index], "file_name": self.file_name(index), "original_size": self.image_size}

    def __getitem__(self, index: int) -> tuple[Tensor, Instances, dict[str, Any]]:
        if index < 0:
            index += self.num_images
        image_np, masks, labels = self.generate(index)
        image = torch.from_numpy(image_np).permute(2, 0, 1).contiguous()
        target = Instances(self.image_size, masks=torch.from_numpy(masks), labels=torch.from_numpy(labels))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target, self.meta(index)

    def write_coco(self, root: str | Path, split: str | None = None) -> Path:
        """Write the untransformed images as ``root/images/<file_name(i)>`` PNGs and their objects as
        ``root/annotations/instances_<split>.json`` (compressed-RLE masks, ``bbox``, ``area``, ``iscrowd`` 0;
        ``split`` defaults to the data set's); returns the json path."""
        from PIL import Image

        from instseg.structures.masks import masks_to_rles

        split = split or self.split
        root = Path(root)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        h, w = self.image_size
        for index in range(self.num_images):
            image, masks, labels = self.generate(index)
            meta = self.meta(index)
            Image.fromarray(image).save(root / "images" / meta["file_name"])
            images.append({"id": meta["image_id"], "file_name": meta["file_name"], "height": h, "width": w})
            target = Instances(self.image_size, masks=torch.from_numpy(masks), labels=torch.from_numpy(labels))
            boxes = xyxy_to_xywh(target.boxes).tolist()
            for rle, box, label, mask in zip(masks_to_rles(masks), boxes, labels.tolist(), masks, strict=True):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": meta["image_id"],
                        "category_id": self.category_ids[label],
                        "segmentation": rle,
                        "area": int(mask.sum()),
                        "bbox": [float(v) for v in box],
                        "iscrowd": 0,
                    }
                )
        categories = [
            {"id": cid, "name": name, "supercategory": "shape"}
            for cid, name in zip(self.category_ids, self.class_names, strict=True)
        ]
        coco = {
            "info": {"description": f"instseg {self!r}"},
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        ann_file = root / "annotations" / f"instances_{split}.json"
        ann_file.write_text(json.dumps(coco))
        return ann_file
