"""Ground-truth masks area-averaged to a coarse grid, computing only the cells each object covers.

Training targets of single-shot methods (YOLACT prototypes, SOLOv2 mask features, semantic maps) are the
ground-truth masks at 1/4 or 1/8 of the padded input. ``F.interpolate(mode="area")`` over the whole image turns
every mask into a full-size float map first: on a crowded nuclei image (hundreds of masks of 512 x 512) that is
gigabytes of copies and took about half of YOLACT's loss time on CPU. Each object covers a few cells, so the
average is computed over the block-aligned bounding box of its pixels only; the result is identical, since every
other cell averages zeros. No library offers a sparse area resize, hence this file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_CHUNK = 64  # full-image fallback: masks resized this many at a time (hundreds of full-size floats cost gigabytes)


def area_downsample_masks(masks: Tensor, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Boolean masks Tensor[N, h, w] (top-left of a ``padded`` input, zero beyond) area-averaged to ``size``:
    float Tensor[N, *size] in 0..1, equal to ``F.interpolate(pad(masks).float()[None], size, mode="area")[0]``.

    Area averaging keeps the fraction of each coarse cell an object covers, so small objects keep soft targets.
    The fast path needs whole strides (``padded`` a multiple of ``size``); otherwise the full resize is used.
    """
    n = masks.shape[0]
    if n and (padded[0] % size[0] or padded[1] % size[1]):
        return _full_resize(masks, padded, size)
    out = torch.zeros((n, *size), dtype=torch.float32, device=masks.device)
    sy, sx = padded[0] // size[0], padded[1] // size[1]
    rows_any, cols_any = masks.any(dim=2).cpu(), masks.any(dim=1).cpu()  # [N, h], [N, w]
    for i in range(n):
        rows, cols = rows_any[i].nonzero().flatten(), cols_any[i].nonzero().flatten()
        if rows.numel() == 0:
            continue
        r0, r1 = int(rows[0]) // sy, math.ceil((int(rows[-1]) + 1) / sy)  # cells holding pixels of the object
        c0, c1 = int(cols[0]) // sx, math.ceil((int(cols[-1]) + 1) / sx)
        block = masks[i, r0 * sy : r1 * sy, c0 * sx : c1 * sx].float()
        # cells reaching past the image read the padding's zeros
        block = F.pad(block, (0, (c1 - c0) * sx - block.shape[1], 0, (r1 - r0) * sy - block.shape[0]))
        out[i, r0:r1, c0:c1] = F.avg_pool2d(block[None], (sy, sx))[0]
    return out


def _full_resize(masks: Tensor, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """``F.interpolate`` area resize of the padded masks, in chunks (any strides)."""
    out = []
    for start in range(0, masks.shape[0], _CHUNK):
        chunk = masks[start : start + _CHUNK].float()
        chunk = F.pad(chunk, (0, padded[1] - chunk.shape[-1], 0, padded[0] - chunk.shape[-2]))
        out.append(F.interpolate(chunk[None], size=size, mode="area")[0])
    return torch.cat(out)
