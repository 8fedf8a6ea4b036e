"""Random fixed-size training crops taken *before* masks are decoded to full size.

Crowded microscopy images hold hundreds of objects: decoding all of them to full-size masks and then
cropping costs seconds per sample (a 1272x603 dsb2018 image with 289 nuclei: ~3 s). Here every object is
kept once as a tight crop (from its RLE runs), images are cached, and a sample pastes only the objects
that meet the chosen window, so a step costs the window, not the image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.data.coco import CocoDataset, segmentation_to_rle
from instseg.data.rle_runs import rle_crop
from instseg.structures import Instances

Transform = Callable[[Tensor, Instances], tuple[Tensor, Instances]]
ObjectCrop = tuple[np.ndarray, int, int, int]  # (mask crop [h, w] bool, x0, y0, label)


class RandomCropDataset:
    """Samples of ``size x size`` pixels from a ``CocoDataset`` at a random scale in ``scale_range``.

    The window covers ``size / s`` source pixels for a scale ``s`` (so ``s > 1`` magnifies), is placed
    uniformly inside the image (images smaller than the window are padded bottom/right with 0), and objects
    are cut to it; objects left with no pixels are dropped. ``transforms`` (flips, rotations, colour) run on
    the crop. Item format, ``category_ids``, ``class_names`` and ``num_classes`` are those of the data set.
    """

    def __init__(
        self,
        dataset: CocoDataset,
        size: int,
        scale_range: tuple[float, float] = (1.0, 1.0),
        transforms: Transform | None = None,
        cache_images: bool = True,
    ) -> None:
        if size <= 0:
            raise ValueError(f"crop size must be positive, got {size}")
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.dataset = dataset
        self.size = size
        self.scale_range = (float(lo), float(hi))
        self.transforms = transforms
        self.cache_images = cache_images
        self._images: dict[int, np.ndarray] = {}
        self._objects: dict[int, list[ObjectCrop]] = {}
        self.category_ids = dataset.category_ids
        self.class_names = dataset.class_names
        self.num_classes = dataset.num_classes
        self.ann_file = dataset.ann_file
        self.image_ids = dataset.image_ids

    def __len__(self) -> int:
        return len(self.dataset)

    def _image(self, index: int) -> np.ndarray:
        """Pixels [H, W, 3] uint8, read once when caching."""
        if index in self._images:
            return self._images[index]
        pixels = self.dataset.load_image(index)
        if self.cache_images:
            self._images[index] = pixels
        return pixels

    def _object_crops(self, index: int) -> list[ObjectCrop]:
        """Every non-crowd object of image ``index`` as a tight mask crop with its position and label."""
        if index not in self._objects:
            info = self.dataset.image_info(index)
            h, w = int(info["height"]), int(info["width"])
            crops = []
            for ann in self.dataset.annotations_for(int(info["id"])):
                if ann.get("iscrowd", 0):
                    continue
                mask, x0, y0 = rle_crop(segmentation_to_rle(ann["segmentation"], h, w))
                if mask.size:
                    crops.append((mask, x0, y0, self.dataset.label_of(int(ann["category_id"]))))
            self._objects[index] = crops
        return self._objects[index]

    def __getitem__(self, index: int) -> tuple[Tensor, Instances, dict[str, Any]]:
        info = self.dataset.image_info(index)
        pixels = self._image(index)
        h, w = pixels.shape[:2]
        lo, hi = self.scale_range
        scale = lo + float(torch.rand(())) * (hi - lo)
        win = max(1, round(self.size / scale))
        win_h, win_w = min(win, h), min(win, w)
        top = int(torch.randint(h - win_h + 1, (1,)))
        left = int(torch.randint(w - win_w + 1, (1,)))

        masks, labels = [], []
        for mask, x0, y0, label in self._object_crops(index):
            mh, mw = mask.shape
            # intersection of the object's crop with the window, in window coordinates
            ty0, tx0 = max(y0, top), max(x0, left)
            ty1, tx1 = min(y0 + mh, top + win_h), min(x0 + mw, left + win_w)
            if ty0 >= ty1 or tx0 >= tx1:
                continue
            part = mask[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
            if not part.any():
                continue
            full = np.zeros((win_h, win_w), dtype=bool)
            full[ty0 - top : ty1 - top, tx0 - left : tx1 - left] = part
            masks.append(full)
            labels.append(label)

        image = torch.from_numpy(np.ascontiguousarray(pixels[top : top + win_h, left : left + win_w]))
        image = image.permute(2, 0, 1)  # [3, win_h, win_w]
        mask_tensor = torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, win_h, win_w), dtype=torch.bool)
        out_h, out_w = max(1, round(win_h * scale)), max(1, round(win_w * scale))
        if (out_h, out_w) != (win_h, win_w):
            image = F.interpolate(image[None].float(), size=(out_h, out_w), mode="bilinear", antialias=True)[0]
            image = image.round().clamp(0, 255).to(torch.uint8)
            if len(masks):
                resized = F.interpolate(mask_tensor[None].to(torch.uint8), size=(out_h, out_w), mode="nearest-exact")
                mask_tensor = resized[0].bool()
            else:
                mask_tensor = torch.zeros((0, out_h, out_w), dtype=torch.bool)
        pad_h, pad_w = max(0, self.size - out_h), max(0, self.size - out_w)
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h))
            mask_tensor = F.pad(mask_tensor, (0, pad_w, 0, pad_h))
        image, mask_tensor = image[:, : self.size, : self.size], mask_tensor[:, : self.size, : self.size]
        keep = mask_tensor.flatten(1).any(dim=1)
        target = Instances(
            (int(image.shape[1]), int(image.shape[2])),
            labels=torch.tensor(labels, dtype=torch.int64)[keep],
            masks=mask_tensor[keep],
        )
        if self.transforms is not None:
            image, target = self.transforms(image.contiguous(), target)
        meta = {
            "image_id": int(info["id"]),
            "file_name": str(info["file_name"]),
            "original_size": (int(target.image_size[0]), int(target.image_size[1])),
        }
        return image.contiguous(), target, meta
