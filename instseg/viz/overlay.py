"""Drawing ``Instances`` over an image: coloured mask fill, contours, boxes and label/score text."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.segmentation import find_boundaries

from instseg.structures import Instances

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def instance_colors(n: int, saturation: float = 0.85, value: float = 1.0) -> np.ndarray:
    """``n`` distinct RGB colours (array [n, 3] uint8): hues spaced by the golden ratio, so neighbours in the
    list differ strongly in hue whatever ``n`` is."""
    hues = (np.arange(n) * _GOLDEN_RATIO_CONJUGATE + 0.1) % 1.0
    rgb = [colorsys.hsv_to_rgb(float(h), saturation, value) for h in hues]
    return np.round(np.asarray(rgb, dtype=np.float64).reshape(n, 3) * 255).astype(np.uint8)


def _label_text(instances: Instances, index: int, class_names: Sequence[str] | None) -> str:
    """``"<class name or label> <score>"`` for object ``index``."""
    label = int(instances.labels[index])
    name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)
    if instances.scores is not None:
        return f"{name} {float(instances.scores[index]):.2f}"
    return name


def draw_instances(
    image: np.ndarray,
    instances: Instances,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.45,
    show_boxes: bool = True,
    show_labels: bool | None = None,
    show_contours: bool = True,
    max_labels: int = 40,
) -> np.ndarray:
    """Overlay ``instances`` on ``image`` (array [H, W, 3] uint8) and return a new array [H, W, 3] uint8.

    Each object gets its own colour: its mask is blended in with opacity ``alpha`` (rounded to uint8 after each
    object) and outlined (inner boundary, ``skimage.segmentation.find_boundaries``), working on each mask's own
    window, so compact ``Instances`` (``BoxMasks``) are drawn without full-frame masks; its box and
    ``"name score"`` text are drawn with Pillow's default font. ``show_labels=None`` draws the text only when
    there are at most ``max_labels`` objects (crowded microscopy images would be buried under it).
    ``instances`` must be at the image's size (predictions at ``original_size``).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"draw_instances needs a uint8 image [H, W, 3], got {desc}")
    h, w = image.shape[:2]
    if instances.image_size != (h, w):
        raise ValueError(f"instances are for an image of size {instances.image_size}, the image is {(h, w)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    instances = instances.to("cpu")
    n = len(instances)
    if show_labels is None:
        show_labels = n <= max_labels
    colors = instance_colors(n)
    out = image.copy()  # uint8: only each object's window is blended in float, so memory stays ~ one image
    boxes = instances.boxes.numpy()
    box_masks = instances.box_masks if n else None  # compact masks as they are; full ones cropped to their boxes
    if box_masks is not None:
        # Work inside each mask's own box (+1 px): images with thousands of small objects stay fast. The mask box,
        # not the instance's box, because a prediction's box need not enclose its mask.
        for i, (crop, mask_window) in enumerate(box_masks):
            if crop.numel() == 0 or not bool(crop.any()):
                continue
            x0, y0, x1, y1 = _box_window(np.asarray(mask_window, dtype=np.float64), h, w)
            mask = box_masks.crop(i, (x0, y0, x1, y1)).numpy()
            region = out[y0:y1, x0:x1].astype(np.float32)
            region[mask] = (1.0 - alpha) * region[mask] + alpha * colors[i]
            if show_contours:
                region[find_boundaries(mask, mode="inner")] = colors[i]
            out[y0:y1, x0:x1] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(out)
    if n and (show_boxes or show_labels):
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default()
        for i in range(n):
            color = tuple(int(c) for c in colors[i])
            bx0, by0, bx1, by1 = (float(v) for v in boxes[i])
            if show_boxes and bx1 > bx0 and by1 > by0:
                # Boxes have an exclusive right/bottom edge; Pillow's rectangle includes both corners.
                draw.rectangle([bx0, by0, bx1 - 1, by1 - 1], outline=color, width=1)
            if show_labels:
                text = _label_text(instances, i, class_names)
                left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
                tw, th = right - left, bottom - top
                tx = min(max(bx0, 0.0), max(w - tw - 2, 0))
                ty = by0 - th - 3 if by0 - th - 3 >= 0 else min(by0 + 1, max(h - th - 3, 0))
                draw.rectangle([tx, ty, tx + tw + 2, ty + th + 2], fill=color)
                luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
                ink = (0, 0, 0) if luma > 110 else (255, 255, 255)  # readable on light and dark label boxes
                draw.text((tx + 1 - left, ty + 1 - top), text, fill=ink, font=font)
    return np.asarray(canvas)


def _box_window(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer window ``(x0, y0, x1, y1)`` covering ``box`` plus one pixel, clipped to the image."""
    x0 = max(int(np.floor(box[0])) - 1, 0)
    y0 = max(int(np.floor(box[1])) - 1, 0)
    x1 = min(int(np.ceil(box[2])) + 1, width)
    y1 = min(int(np.ceil(box[3])) + 1, height)
    return x0, y0, max(x1, x0), max(y1, y0)
