"""COCO-json instance segmentation data set: validated up front, masks decoded lazily per image.

Category ids map to contiguous labels ``0..K-1`` in sorted category-id order (``category_ids[label]`` maps back).
Crowd annotations (``iscrowd=1``) stay in the raw data (``annotations_for``, ``to_coco_dict``) for evaluation but
are left out of training targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from instseg.data.coco_validation import validate_coco
from instseg.data.image_io import read_image
from instseg.structures.instances import Instances

Transform = Callable[[Tensor, Instances], tuple[Tensor, Instances]]


def load_coco_json(path: str | Path) -> dict[str, Any]:
    """Read a COCO json file; unreadable or non-object files raise ``ValueError`` naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except FileNotFoundError as err:
        raise ValueError(f"{path}: no such annotation file") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read COCO json ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a COCO json must hold an object, got {type(data).__name__}")
    return data


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A pycocotools-ready compressed RLE (``counts`` bytes) of any COCO segmentation (polygons parts unioned)."""
    if isinstance(segmentation, list):
        polygons = [[float(v) for v in p] for p in segmentation]
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_segmentations(segmentations: list[Any], height: int, width: int) -> np.ndarray:
    """Decode COCO segmentations to C-contiguous bitmasks [N, H, W] bool with one pycocotools call."""
    if not segmentations:
        return np.zeros((0, height, width), dtype=bool)
    rles = [segmentation_to_rle(s, height, width) for s in segmentations]
    decoded = mask_utils.decode(rles)  # [H, W, N] uint8 0/1, Fortran order
    return np.ascontiguousarray(decoded.transpose(2, 0, 1)).view(bool)


class CocoDataset:
    """A COCO json + images folder: ``ds[i] -> (image Tensor[3, H, W] uint8, target Instances, meta dict)``.

    ``meta`` is ``{"image_id": int, "file_name": str, "original_size": (h, w)}``. ``transforms`` are callables
    ``(image, target) -> (image, target)`` applied in order. Validation happens at construction
    (``instseg.data.coco_validation``); ``skip_invalid=True`` drops faulty images/annotations with a warning each
    and lists them in ``skipped``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        images_dir: str | Path | None = None,
        transforms: Transform | list[Transform] | None = None,
        skip_invalid: bool = False,
    ) -> None:
        from instseg.data.paths import resolve_annotations

        self.ann_file, self.images_dir = resolve_annotations(ann_file, images=images_dir)
        data = load_coco_json(self.ann_file)
        checked = validate_coco(data, self.ann_file, self.images_dir, skip_invalid=skip_invalid)
        self.skipped: list[str] = checked.skipped
        self._images = checked.images
        self._annotations = checked.annotations
        self.categories: list[dict[str, Any]] = checked.categories
        self.category_ids: list[int] = [int(c["id"]) for c in self.categories]
        self.class_names: list[str] = [str(c["name"]) for c in self.categories]
        self.image_ids: list[int] = [int(img["id"]) for img in self._images]
        self._label_of = {cat_id: label for label, cat_id in enumerate(self.category_ids)}
        self._index_of = {image_id: i for i, image_id in enumerate(self.image_ids)}
        self._info: dict[str, Any] = {k: data[k] for k in ("info", "licenses") if k in data}
        if transforms is None:
            self.transforms: list[Transform] = []
        elif callable(transforms):
            self.transforms = [transforms]
        else:
            self.transforms = list(transforms)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def __len__(self) -> int:
        return len(self._images)

    def __repr__(self) -> str:
        return f"CocoDataset({self.ann_file}, images={len(self)}, classes={self.num_classes})"

    def image_info(self, index: int) -> dict[str, Any]:
        """The json entry of image ``index`` (``id``, ``file_name``, ``height``, ``width``, ...)."""
        return self._images[index]

    def annotations_for(self, image_id: int) -> list[dict[str, Any]]:
        """The valid raw annotations of an image (crowd ones included), as in the json."""
        if image_id not in self._annotations:
            raise KeyError(f"{self.ann_file}: no image with id {image_id}")
        return self._annotations[image_id]

    def label_of(self, category_id: int) -> int:
        """Contiguous label of a data set category id."""
        return self._label_of[category_id]

    def to_coco_dict(self) -> dict[str, Any]:
        """The valid part of the json (skipped items removed, crowd kept): ground truth for evaluation."""
        annotations = [a for img in self._images for a in self._annotations[int(img["id"])]]
        return {**self._info, "images": list(self._images), "annotations": annotations, "categories": self.categories}

    def load_target(self, index: int) -> Instances:
        """Non-crowd objects of image ``index`` as Instances (masks Tensor[N, H, W] bool, boxes from the masks)."""
        img = self._images[index]
        height, width = int(img["height"]), int(img["width"])
        anns = [a for a in self._annotations[int(img["id"])] if not a.get("iscrowd", 0)]
        masks = decode_segmentations([a["segmentation"] for a in anns], height, width)
        labels = torch.tensor([self._label_of[int(a["category_id"])] for a in anns], dtype=torch.int64)
        return Instances((height, width), labels=labels, masks=torch.from_numpy(masks))

    def load_image(self, index: int) -> np.ndarray:
        """Pixels [H, W, 3] uint8 of image ``index``; a file whose size differs from the json raises ValueError."""
        img = self._images[index]
        path = self.images_dir / img["file_name"]
        pixels = read_image(path)
        expected = (int(img["height"]), int(img["width"]))
        if pixels.shape[:2] != expected:
            raise ValueError(
                f"{path}: image {img['id']} is {pixels.shape[0]}x{pixels.shape[1]} (h x w) but {self.ann_file} "
                f"says {expected[0]}x{expected[1]}"
            )
        return pixels

    def __getitem__(self, index: int) -> tuple[Tensor, Instances, dict[str, Any]]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = index % len(self)
        img = self._images[index]
        pixels = self.load_image(index)
        image = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()  # [3, H, W] uint8
        target = self.load_target(index)
        for transform in self.transforms:
            image, target = transform(image, target)
        meta = {
            "image_id": int(img["id"]),
            "file_name": str(img["file_name"]),
            "original_size": (int(img["height"]), int(img["width"])),
        }
        return image, target, meta
