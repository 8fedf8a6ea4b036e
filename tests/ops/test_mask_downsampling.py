"""``area_downsample_masks`` equals the full-image area resize: blobs, border objects, two-part masks, odd sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instseg.ops.mask_downsampling import area_downsample_masks


def full_area_resize(masks: torch.Tensor, padded: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The reference: pad every mask to ``padded``, float, ``F.interpolate(mode="area")``."""
    m = F.pad(masks.float(), (0, padded[1] - masks.shape[-1], 0, padded[0] - masks.shape[-2]))
    return F.interpolate(m[None], size=size, mode="area")[0]


def random_masks(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Random rectangles and noisy blobs, some touching the bottom/right edge, one empty, one in two parts."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n - 1):
        y0, x0 = int(torch.randint(0, h - 2, (1,), generator=g)), int(torch.randint(0, w - 2, (1,), generator=g))
        y1 = min(h, y0 + int(torch.randint(1, 30, (1,), generator=g)))
        x1 = min(w, x0 + int(torch.randint(1, 30, (1,), generator=g)))
        masks[i, y0:y1, x0:x1] = torch.rand(y1 - y0, x1 - x0, generator=g) > 0.2
    masks[0, h - 5 :, w - 7 :] = True  # at the image corner: its cells reach into the padding
    masks[1, :3, :3] = True
    masks[1, h - 3 :, w - 3 :] = True  # two far-apart parts
    masks[n - 1] = False  # empty
    return masks


@pytest.mark.parametrize(
    ("h", "w", "padded", "size"),
    [
        ((90), (70), (96, 96), (24, 24)),  # stride 4, image smaller than the padding
        ((64), (64), (64, 64), (8, 8)),  # stride 8, no padding
        ((50), (77), (64, 96), (16, 48)),  # different strides per axis (4, 2)
    ],
)
def test_equals_the_full_area_resize(h: int, w: int, padded: tuple[int, int], size: tuple[int, int]) -> None:
    masks = random_masks(12, h, w, seed=h + w)
    fast = area_downsample_masks(masks, padded, size)
    assert fast.dtype == torch.float32 and fast.shape == (12, *size)
    assert torch.equal(fast, full_area_resize(masks, padded, size))
    assert fast[11].sum() == 0 and 0 < float(fast.max()) <= 1.0


def test_fractional_strides_fall_back_to_the_full_resize() -> None:
    masks = random_masks(5, 40, 40, seed=3)
    fast = area_downsample_masks(masks, (40, 40), (12, 12))  # 40 / 12: not a whole stride
    assert torch.allclose(fast, full_area_resize(masks, (40, 40), (12, 12)))


def test_no_masks() -> None:
    assert area_downsample_masks(torch.zeros(0, 20, 20, dtype=torch.bool), (32, 32), (8, 8)).shape == (0, 8, 8)
