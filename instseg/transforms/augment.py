"""Training and evaluation augmentation pipelines: resize, flips, 90-degree rotations, large-scale jitter, colour.

The steps are torchvision.transforms.v2 transforms (flips, colour jitter) or small sample transforms written
here around ``torchvision.transforms.v2.functional`` kernels where torchvision's own class does not do what we
need (the short-side resize must follow the model's exact rounding rule; masks are resized with centred
nearest neighbour so that they stay on their pixels; large-scale jitter must not produce zero-sized images and
must pad masks with 0 whatever the image pad value). All randomness is drawn from torch's global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from instseg.ops.resize import resized_shape as short_side_shape
from instseg.transforms.joint import JointPipeline, JointStep, Sample, sample_size

_SPATIAL_KEYS = ("image", "masks", "boxes")


def _map_spatial(sample: Sample, fn: Callable[[str, Any], Any]) -> Sample:
    """Apply ``fn(key, value)`` to the image, masks and boxes of a sample; other entries pass through."""
    out = dict(sample)
    for key in _SPATIAL_KEYS:
        if key in sample:
            out[key] = fn(key, sample[key])
    return out


def _resize_masks(masks: tv_tensors.Mask, size: tuple[int, int]) -> tv_tensors.Mask:
    """Resize masks [N, H, W] with *centred* nearest neighbour (``nearest-exact``).

    torchvision resizes masks with ``nearest``, which samples source pixel ``floor(j * scale)`` and so shifts
    masks by up to half a pixel against the image (resized bilinearly about pixel centres); at scales near 1
    a thin object's mask then lands beside its pixels. ``nearest-exact`` samples ``floor((j + 0.5) * scale)``.
    """
    if masks.shape[0] == 0:
        return tv_tensors.Mask(masks.new_zeros((0, *size)))
    pixels = masks.as_subclass(torch.Tensor)
    as_bool = pixels.dtype == torch.bool
    if as_bool:
        pixels = pixels.view(torch.uint8)  # interpolate has no bool kernel; a view, not a copy
    resized = torch.nn.functional.interpolate(pixels[None], size=size, mode="nearest-exact")[0]
    return tv_tensors.Mask(resized.view(torch.bool) if as_bool else resized)


def _resize_one(key: str, x: Any, size: tuple[int, int]) -> Any:
    """Resize one spatial entry: the image bilinear with antialias, masks centred-nearest, boxes scaled."""
    if key == "masks":
        return _resize_masks(x, size)
    if key == "image" and size == (1, 1):
        # PyTorch's uint8 antialiased bilinear kernel fails (internal assert) on a 1x1 output; go through float.
        pixels = F.resize(x.as_subclass(torch.Tensor).float(), [1, 1], antialias=True)
        return tv_tensors.Image(pixels.round().clamp(0, 255).to(torch.uint8))
    return F.resize(x, list(size), antialias=True)


def _resize(sample: Sample, size: tuple[int, int]) -> Sample:
    """Resize every spatial entry of a sample to ``size = (h, w)``."""
    if size == sample_size(sample):
        return sample
    return _map_spatial(sample, lambda key, x: _resize_one(key, x, size))


class ResizeShortSide:
    """Resize so that the short side is ``min_size`` (one drawn at random when a sequence: multi-scale
    training) and the long side at most ``max_size``."""

    def __init__(self, min_size: int | Sequence[int] | None, max_size: int | None = None) -> None:
        sizes: list[int | None] = [min_size] if min_size is None or isinstance(min_size, int) else list(min_size)
        for s in sizes:
            if s is not None and (not isinstance(s, int) or s <= 0):
                raise ValueError(f"min_size must be positive integers, got {min_size!r}")
        if not sizes:
            raise ValueError("min_size must not be an empty sequence")
        if max_size is not None and (not isinstance(max_size, int) or max_size <= 0):
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self.min_sizes = sizes
        self.max_size = max_size

    def __call__(self, sample: Sample) -> Sample:
        index = int(torch.randint(len(self.min_sizes), (1,))) if len(self.min_sizes) > 1 else 0
        h, w = sample_size(sample)
        return _resize(sample, short_side_shape(h, w, self.min_sizes[index], self.max_size))

    def __repr__(self) -> str:
        return f"ResizeShortSide(min_size={self.min_sizes}, max_size={self.max_size})"


class LargeScaleJitter:
    """Large-scale jitter (Ghiasi et al. 2021, "Simple Copy-Paste"): scale the image so that its long side is
    ``size * s`` with ``s ~ U(scale_range)``, then crop a random ``size x size`` window when larger, and pad
    bottom/right to ``size x size`` when smaller (image with ``pad_value``, masks with 0).

    Output: image [3, size, size]; objects cut away by the crop are dropped by the pipeline afterwards.
    """

    def __init__(self, size: int, scale_range: tuple[float, float] = (0.1, 2.0), pad_value: int = 0) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"lsj size must be a positive integer, got {size!r}")
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range!r}")
        self.size = size
        self.scale_range = (lo, hi)
        self.pad_value = int(pad_value)

    def __call__(self, sample: Sample) -> Sample:
        h, w = sample_size(sample)
        lo, hi = self.scale_range
        scale = lo + float(torch.rand(())) * (hi - lo)
        ratio = self.size / max(h, w) * scale
        sample = _resize(sample, (max(1, round(h * ratio)), max(1, round(w * ratio))))
        h, w = sample_size(sample)
        crop_h, crop_w = min(h, self.size), min(w, self.size)
        top = int(torch.randint(h - crop_h + 1, (1,)))
        left = int(torch.randint(w - crop_w + 1, (1,)))
        if (crop_h, crop_w) != (h, w):
            sample = _map_spatial(sample, lambda _, x: F.crop(x, top, left, crop_h, crop_w))
        if (crop_h, crop_w) != (self.size, self.size):
            padding = [0, 0, self.size - crop_w, self.size - crop_h]  # left, top, right, bottom
            sample = _map_spatial(
                sample, lambda key, x: F.pad(x, padding, fill=self.pad_value if key == "image" else 0)
            )
        return sample

    def __repr__(self) -> str:
        return f"LargeScaleJitter(size={self.size}, scale_range={self.scale_range}, pad_value={self.pad_value})"


def _rot90_boxes(boxes: tv_tensors.BoundingBoxes, k: int) -> tv_tensors.BoundingBoxes:
    """Boxes (XYXY, exclusive right/bottom edge) after ``torch.rot90(image, k, dims=(-2, -1))``.

    One counter-clockwise quarter turn of an ``(H, W)`` canvas sends pixel ``(r, c)`` to ``(W - 1 - c, r)``, so
    ``[x0, y0, x1, y1]`` becomes ``[y0, W - x1, y1, W - x0]`` on a ``(W, H)`` canvas. Written out rather than
    using torchvision's ``rotate`` for boxes, which goes through an affine matrix and leaves 1e-16 residues.
    """
    h, w = boxes.canvas_size
    xyxy = boxes.as_subclass(torch.Tensor)
    for _ in range(k % 4):
        x0, y0, x1, y1 = xyxy.unbind(-1)
        xyxy = torch.stack([y0, w - x1, y1, w - x0], dim=-1)
        h, w = w, h
    return tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=(h, w))


class RandomRot90:
    """Rotate by 0, 90, 180 or 270 degrees (uniformly): microscopy has no preferred orientation.

    ``torch.rot90`` moves pixels exactly (no resampling); boxes follow by formula (``_rot90_boxes``).
    """

    def __call__(self, sample: Sample) -> Sample:
        k = int(torch.randint(4, (1,)))
        if k == 0:
            return sample

        def rotate(key: str, x: Any) -> Any:
            if key == "boxes":
                return _rot90_boxes(x, k)
            return tv_tensors.wrap(torch.rot90(x.as_subclass(torch.Tensor), k, dims=(-2, -1)), like=x)

        return _map_spatial(sample, rotate)

    def __repr__(self) -> str:
        return "RandomRot90()"


def build_train_transforms(
    min_size: int | Sequence[int] | None = None,
    max_size: int | None = None,
    hflip: bool = True,
    vflip: bool = False,
    rot90: bool = False,
    lsj: int | None = None,
    scale_range: tuple[float, float] = (0.1, 2.0),
    color_jitter: float = 0.0,
    pad_value: int = 0,
) -> JointPipeline:
    """Training augmentation for ``(image uint8 [3, H, W], Instances)`` pairs.

    Geometry: large-scale jitter to a fixed ``lsj x lsj`` square when ``lsj`` is given (then ``min_size`` and
    ``max_size`` are unused), otherwise the short-side resize (``min_size`` a sequence = multi-scale);
    then random horizontal / vertical flips and, for microscopy, random 90-degree rotations.
    Photometric: colour jitter of strength ``color_jitter`` (brightness, contrast and saturation by that
    factor, hue by a quarter of it); images stay uint8.
    """
    if color_jitter < 0:
        raise ValueError(f"color_jitter must be >= 0, got {color_jitter}")
    steps: list[JointStep] = []
    if lsj is not None:
        steps.append(JointStep(LargeScaleJitter(lsj, scale_range, pad_value)))
    elif min_size is not None or max_size is not None:
        steps.append(JointStep(ResizeShortSide(min_size, max_size)))
    if hflip:
        steps.append(JointStep(v2.RandomHorizontalFlip(p=0.5), recheck=False))
    if vflip:
        steps.append(JointStep(v2.RandomVerticalFlip(p=0.5), recheck=False))
    if rot90:
        steps.append(JointStep(RandomRot90(), recheck=False))
    if color_jitter > 0:
        hue = min(0.5, color_jitter / 4)
        jitter = v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter, hue=hue)
        steps.append(JointStep(jitter, recheck=False))
    return JointPipeline(steps)


def build_eval_transforms(min_size: int | None = None, max_size: int | None = None) -> JointPipeline:
    """Evaluation transform: the deterministic short-side resize only (identity when both sizes are None)."""
    if min_size is None and max_size is None:
        return JointPipeline([])
    if min_size is not None and not isinstance(min_size, int):
        raise ValueError(f"eval min_size must be one integer, got {min_size!r}")
    return JointPipeline([JointStep(ResizeShortSide(min_size, max_size))])
