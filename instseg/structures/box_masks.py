"""``BoxMasks``: instance masks stored cropped to their boxes, so memory follows the objects, not the image.

A full-frame mask stack costs N x H x W bits: 28k nuclei on an 8k x 8k slide would need 1.9 TB. Here each object
keeps a bool crop ``[y1 - y0, x1 - x0]`` and its integer window ``(x0, y0, x1, y1)`` (exclusive right/bottom edge,
the box convention of ``instseg.ops.boxes``) inside an image of ``image_size``. Nothing outside a window is
stored: it is background. ``to_full()`` gives the classic Tensor[N, H, W] back on request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

IndexLike = int | slice | Tensor | Sequence[int]


class BoxMasks:
    """N bool masks of one ``(height, width)`` image, each held as a crop inside its integer window.

    ``crops[i]`` is Tensor[y1 - y0, x1 - x0] bool and ``windows`` Tensor[N, 4] int64 ``xyxy`` with
    ``0 <= x0 <= x1 <= width`` (same for y); an empty mask has an empty window.
    """

    def __init__(self, image_size: tuple[int, int], crops: Sequence[Tensor], windows: Tensor) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        windows = torch.as_tensor(windows, dtype=torch.int64).reshape(-1, 4)
        if windows.shape[0] != len(crops):
            raise ValueError(f"BoxMasks: {len(crops)} crops but {windows.shape[0]} windows")
        h, w = self.image_size
        if len(crops):
            x0, y0, x1, y1 = windows.cpu().unbind(1)
            if bool(
                (x0 < 0).any() | (y0 < 0).any() | (x1 > w).any() | (y1 > h).any() | (x1 < x0).any() | (y1 < y0).any()
            ):
                raise ValueError(f"BoxMasks: a window lies outside the {h}x{w} image or is reversed")
            sizes = torch.stack([y1 - y0, x1 - x0], 1).tolist()
            for i, crop in enumerate(crops):
                if list(crop.shape) != sizes[i]:
                    raise ValueError(f"BoxMasks: crop {i} is {tuple(crop.shape)}, its window needs {tuple(sizes[i])}")
        self.crops = [c.bool() for c in crops]
        self.windows = windows

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def empty(cls, image_size: tuple[int, int], device: torch.device | str | None = None) -> BoxMasks:
        """No masks."""
        return cls(image_size, [], torch.zeros((0, 4), dtype=torch.int64, device=device))

    @classmethod
    def from_full(cls, masks: Tensor) -> BoxMasks:
        """Crop full-frame masks Tensor[N, H, W] to their tight boxes (copies, so the full stack can be freed)."""
        if masks.dim() != 3:
            raise ValueError(f"BoxMasks.from_full needs masks [N, H, W], got {tuple(masks.shape)}")
        windows = mask_windows(masks)  # [N, 4], empty masks give zeros
        crops = [masks[i, y0:y1, x0:x1].bool().clone() for i, (x0, y0, x1, y1) in enumerate(windows.tolist())]
        return cls((int(masks.shape[1]), int(masks.shape[2])), crops, windows)

    @classmethod
    def from_crops(
        cls, image_size: tuple[int, int], crops: Sequence[Tensor], offsets: Sequence[tuple[int, int]]
    ) -> BoxMasks:
        """Masks from crops placed with their top-left at ``offsets[i] = (x0, y0)``; each crop is trimmed to its
        tight box so windows always equal the masks' boxes."""
        tight, windows = [], []
        for crop, (x0, y0) in zip(crops, offsets, strict=True):
            rows, cols = crop.any(1).nonzero().flatten(), crop.any(0).nonzero().flatten()
            if rows.numel() == 0:
                tight.append(crop.new_zeros((0, 0), dtype=torch.bool))
                windows.append([0, 0, 0, 0])
                continue
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            tight.append(crop[r0:r1, c0:c1].bool())
            windows.append([x0 + c0, y0 + r0, x0 + c1, y0 + r1])
        return cls(image_size, tight, torch.tensor(windows, dtype=torch.int64).reshape(-1, 4))

    @staticmethod
    def cat(items: Sequence[BoxMasks]) -> BoxMasks:
        """Concatenate masks of the same image size."""
        if not items:
            raise ValueError("BoxMasks.cat needs at least one item")
        size = items[0].image_size
        if any(it.image_size != size for it in items):
            raise ValueError(f"BoxMasks.cat: image sizes differ: {sorted({it.image_size for it in items})}")
        crops = [c for it in items for c in it.crops]
        return BoxMasks(size, crops, torch.cat([it.windows.to(items[0].windows.device) for it in items]))

    # -- container protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: IndexLike) -> BoxMasks:
        if isinstance(index, int):
            index = [range(len(self))[index]]  # IndexError when out of range
        if isinstance(index, slice):
            positions = list(range(len(self)))[index]
        else:
            picked = torch.as_tensor(index if isinstance(index, Tensor) else list(index))
            if picked.dtype == torch.bool:
                if picked.numel() != len(self):
                    raise IndexError(f"bool index of {picked.numel()} entries for {len(self)} masks")
                picked = picked.nonzero().flatten()
            positions = [range(len(self))[int(i)] for i in picked.reshape(-1).tolist()]
        return BoxMasks(
            self.image_size, [self.crops[i] for i in positions], self.windows[torch.as_tensor(positions).long()]
        )

    def __iter__(self) -> Iterator[tuple[Tensor, tuple[int, int, int, int]]]:
        """Yield ``(crop, (x0, y0, x1, y1))`` per object."""
        for crop, window in zip(self.crops, self.windows.tolist(), strict=True):
            yield crop, (int(window[0]), int(window[1]), int(window[2]), int(window[3]))

    def __repr__(self) -> str:
        return f"BoxMasks(n={len(self)}, image_size={self.image_size}, pixels_stored={self.stored_pixels()})"

    @property
    def device(self) -> torch.device:
        return self.windows.device

    def to(self, device: torch.device | str) -> BoxMasks:
        """Move every crop to ``device``."""
        return BoxMasks(self.image_size, [c.to(device) for c in self.crops], self.windows.to(device))

    # -- views ------------------------------------------------------------------------------------
    def stored_pixels(self) -> int:
        """Pixels held in crops (the memory this object costs, in bits x 8)."""
        return sum(c.numel() for c in self.crops)

    def areas(self) -> Tensor:
        """Foreground pixel count per mask (Tensor[N] int64)."""
        return torch.tensor([int(c.sum()) for c in self.crops], dtype=torch.int64)

    def boxes(self) -> Tensor:
        """Tight ``xyxy`` boxes of the masks (Tensor[N, 4] float32; zeros for empty masks, as ``masks_to_boxes``)."""
        boxes = []
        for crop, (x0, y0, _, _) in self:
            rows, cols = crop.any(1).nonzero().flatten(), crop.any(0).nonzero().flatten()
            if rows.numel() == 0:
                boxes.append([0, 0, 0, 0])
            else:
                boxes.append([x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1])
        return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)

    def crop(self, index: int, window: tuple[int, int, int, int]) -> Tensor:
        """Mask ``index`` on the image window ``(x0, y0, x1, y1)`` (Tensor[y1 - y0, x1 - x0] bool), zero-padded."""
        wx0, wy0, wx1, wy1 = window
        out = torch.zeros((wy1 - wy0, wx1 - wx0), dtype=torch.bool, device=self.device)
        x0, y0, x1, y1 = (int(v) for v in self.windows[index].tolist())
        ix0, iy0, ix1, iy1 = max(x0, wx0), max(y0, wy0), min(x1, wx1), min(y1, wy1)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - wy0 : iy1 - wy0, ix0 - wx0 : ix1 - wx0] = self.crops[index][
                iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0
            ]
        return out

    def to_full(self) -> Tensor:
        """Full-frame masks Tensor[N, H, W] bool (N x H x W bits: for images of moderate size)."""
        h, w = self.image_size
        full = torch.zeros((len(self), h, w), dtype=torch.bool, device=self.device)
        for i, (crop, (x0, y0, x1, y1)) in enumerate(self):
            full[i, y0:y1, x0:x1] = crop
        return full

    def resized(self, new_size: tuple[int, int]) -> BoxMasks:
        """The masks on the image resized to ``new_size`` by nearest neighbour (``F.interpolate`` 'nearest-exact'
        geometry), each computed on its own window only."""
        h, w = self.image_size
        nh, nw = int(new_size[0]), int(new_size[1])
        sy, sx = h / nh, w / nw
        crops, offsets = [], []
        for crop, (x0, y0, x1, y1) in self:
            # output pixel j samples source floor((j + 0.5) * scale): the outputs that land in [x0, x1)
            ox0, oy0 = max(int((x0 / sx) - 0.5) - 1, 0), max(int((y0 / sy) - 0.5) - 1, 0)
            ox1, oy1 = min(int(x1 / sx + 0.5) + 2, nw), min(int(y1 / sy + 0.5) + 2, nh)
            if crop.numel() == 0 or ox1 <= ox0 or oy1 <= oy0:
                crops.append(crop.new_zeros((0, 0)))
                offsets.append((0, 0))
                continue
            src_y = _nearest_sources(oy0, oy1, h, nh)
            src_x = _nearest_sources(ox0, ox1, w, nw)
            inside_y = (src_y >= y0) & (src_y < y1)
            inside_x = (src_x >= x0) & (src_x < x1)
            out = crop[(src_y - y0).clamp(0, crop.shape[0] - 1)][:, (src_x - x0).clamp(0, crop.shape[1] - 1)]
            crops.append(out & inside_y[:, None].to(out.device) & inside_x[None, :].to(out.device))
            offsets.append((ox0, oy0))
        return BoxMasks.from_crops((nh, nw), crops, offsets)


def _nearest_sources(start: int, stop: int, in_len: int, out_len: int) -> Tensor:
    """Source index (Tensor[stop - start] int64) that output pixels ``start..stop-1`` read under
    ``F.interpolate(mode="nearest-exact")``: ``floor((j + 0.5) * in / out)``, in float32 as torch's CPU kernel
    computes it, so crops resize to exactly what the full-frame masks would."""
    scale = torch.tensor(in_len / out_len, dtype=torch.float32)
    j = torch.arange(start, stop, dtype=torch.float32)
    return ((j + 0.5) * scale).floor().long().clamp(0, in_len - 1)


def mask_windows(masks: Tensor) -> Tensor:
    """Tight ``xyxy`` integer boxes Tensor[N, 4] int64 of masks Tensor[N, H, W] (zeros for empty masks), the
    boxes of ``instseg.ops.boxes.masks_to_boxes``.

    Reduces with ``amax`` over a uint8 view of the bools (about 10x faster than ``any`` on CPU), because this
    pass over N x H x W is the whole cost of making a model's full masks compact.
    """
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=masks.device)
    if h == 0 or w == 0:
        return torch.zeros((n, 4), dtype=torch.int64, device=masks.device)
    as_bytes = masks.bool().contiguous().view(torch.uint8)
    rows = as_bytes.amax(dim=2) > 0  # [N, H]
    cols = as_bytes.amax(dim=1) > 0  # [N, W]
    present = rows.any(dim=1)  # [N]
    y0 = rows.to(torch.uint8).argmax(dim=1)  # first True (0 when none)
    y1 = h - rows.flip(1).to(torch.uint8).argmax(dim=1)
    x0 = cols.to(torch.uint8).argmax(dim=1)
    x1 = w - cols.flip(1).to(torch.uint8).argmax(dim=1)
    windows = torch.stack([x0, y0, x1, y1], dim=1).long()
    windows[~present] = 0
    return windows
