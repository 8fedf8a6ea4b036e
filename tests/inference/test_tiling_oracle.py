"""Tiled prediction against oracles that a tile-blind stand-in cannot give: a predictor whose scores depend on
where the object sits in its tile (so the keeping tile is visible), objects centred exactly on a core boundary and
cut by the image's top and left edges, RLEs decoded back, and the shipped model at real seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from skimage.measure import label as connected_components

import instseg
from instseg.data.image_io import read_image
from instseg.inference.predictor import Predictor
from instseg.inference.tiling import predict_tiled
from instseg.structures import Instances

TILE, OVERLAP = 96, 40


def position_scored(image: np.ndarray) -> Instances:
    """Every bright blob is an object; its score tells where its box centre lies in the tile it was seen in."""
    labels = connected_components(image[..., 0] > 127)
    n = int(labels.max())
    masks = torch.from_numpy(labels[None] == np.arange(1, n + 1)[:, None, None])
    found = Instances(labels.shape, masks=masks, scores=torch.ones(n))
    h, w = labels.shape
    cy = (found.boxes[:, 1] + found.boxes[:, 3]) / 2
    cx = (found.boxes[:, 0] + found.boxes[:, 2]) / 2
    found.scores = 0.1 + 0.4 * cy / h + 0.4 * cx / w
    found.labels = (cx > w / 2).long()  # the class, too, depends on the tile: a label kept from the wrong tile shows
    return found


def owner_start(centre: float, length: int) -> int:
    """Start of the tile that must keep an object centred at ``centre``, computed from the tiling rule's definition:
    tiles step by TILE - OVERLAP (the last one flush with the end) and neighbours split their shared part at its
    middle."""
    starts = [*range(0, length - TILE, TILE - OVERLAP), length - TILE] if length > TILE else [0]
    bounds = [0] + [(starts[k + 1] + starts[k] + TILE) // 2 for k in range(len(starts) - 1)] + [length]
    return next(s for s, lo, hi in zip(starts, bounds, bounds[1:], strict=False) if lo <= centre < hi)


def squares_image() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 200 x 260 image of separated squares (y, x, side), some centred exactly on core boundaries, some cut by the
    top and left image edges."""
    # tiles of 96 at step 56: starts 0, 56, 104 in y (core bounds 76, 128) and 0, 56, 112, 164 in x (76, 132, 186)
    squares = [
        (0, 30, 12),  # touches the top edge
        (-6, 120, 14),  # cut by the top edge (only its lower 8 rows are in the image)
        (60, -5, 12),  # cut by the left edge
        (71, 150, 10),  # box centre y = 76.0: exactly on the first core boundary in y
        (120, 127, 10),  # box centre x = 132.0: exactly on a core boundary in x
        (150, 40, 16),
        (118, 181, 10),  # box centre x = 186.0
        (185, 230, 15),  # touches the bottom and is near the right edge
        (30, 200, 13),
    ]
    image = np.zeros((200, 260, 3), dtype=np.uint8)
    for y, x, s in squares:
        image[max(y, 0) : y + s, max(x, 0) : x + s] = 255
    return image, squares


def test_each_object_is_kept_once_by_the_tile_whose_core_holds_its_centre() -> None:
    image, squares = squares_image()
    tiled = predict_tiled(position_scored, image, tile=TILE, overlap=OVERLAP)
    whole = position_scored(image)
    assert len(tiled) == len(whole) == len(squares)
    assert tiled.scores is not None
    order = sorted(range(len(tiled)), key=lambda i: tiled.boxes[i].tolist())
    expected = sorted(range(len(whole)), key=lambda i: whole.boxes[i].tolist())
    assert torch.equal(tiled.boxes[order], whole.boxes[expected])
    assert torch.equal(tiled.masks[order], whole.masks[expected])  # type: ignore[index]
    for i in order:
        x0, y0, x1, y1 = tiled.boxes[i].tolist()
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        ty, tx = owner_start(cy, image.shape[0]), owner_start(cx, image.shape[1])
        th, tw = min(TILE, image.shape[0] - ty), min(TILE, image.shape[1] - tx)
        local_y, local_x = cy - ty, cx - tx
        assert float(tiled.scores[i]) == pytest.approx(0.1 + 0.4 * local_y / th + 0.4 * local_x / tw), (cy, cx)
        assert int(tiled.labels[i]) == int(local_x > tw / 2)


def test_tiled_rles_decode_to_the_masks_and_boxes() -> None:
    image, _ = squares_image()
    tiled = predict_tiled(position_scored, image, tile=TILE, overlap=OVERLAP)
    results = tiled.to_coco(image_id=3)
    full = tiled.masks
    assert full is not None and len(results) == len(tiled)
    for k, r in enumerate(results):
        decoded = mask_utils.decode(r["segmentation"]).astype(bool)
        assert decoded.shape == image.shape[:2]
        assert np.array_equal(decoded, full[k].numpy()), k
        ys, xs = np.nonzero(decoded)
        assert r["bbox"] == pytest.approx([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()])
        assert r["area"] == pytest.approx(decoded.sum()) and r["image_id"] == 3
    # the objects cut by the top and left edges keep exactly their visible pixels
    assert sorted(int(full[:, 0].sum(1)[k]) for k in range(len(tiled)) if full[k, 0].any()) == [12, 14]
    assert int(full[:, :, 0].any(1).sum()) == 1


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.set_flush_denormal(True)
    return instseg.load_model()  # the shipped default model (part of the package)


def _mosaic() -> np.ndarray:
    """2 x 2 sample nuclei images (512 x 512): a real model sees objects cut at every seam of a small tiling."""
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample" / "images").glob("*.png"))
    tiles = [read_image(f)[:256, :256] for f in files[:4]]
    rows = [np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:4], axis=1)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def _iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    fa, fb = a.flatten(1).float(), b.flatten(1).float()
    inter = fa @ fb.T
    return inter / (fa.sum(1)[:, None] + fb.sum(1)[None] - inter).clamp(min=1)


def test_shipped_model_tiled_at_real_seams_has_no_cut_copies(model: torch.nn.Module) -> None:
    image = _mosaic()
    assert image.shape[:2] == (512, 512)
    whole = Predictor(model, auto_tile_above=None).predict_whole(image)
    tiled_predictor = Predictor(model, tile_size=192, tile_overlap=64)
    assert tiled_predictor.needs_tiling(image) and not Predictor(model, tile_size=1024).needs_tiling(image)
    tiled = tiled_predictor(image)
    assert tiled.is_compact and tiled.image_size == (512, 512)
    assert len(whole) >= 40
    tm, wm = tiled.masks, whole.masks
    assert tm is not None and wm is not None
    # no cut copy: no object has half of its pixels inside another tiled object
    inter = tm.flatten(1).float() @ tm.flatten(1).float().T
    inter.fill_diagonal_(0)
    assert not (2 * inter >= tm.flatten(1).sum(1)[:, None]).any()
    # tiled == untiled within a stated tolerance: >= 90% of the whole-image objects found again at IoU >= 0.5
    # (objects near a seam may differ slightly: a tile sees less context), and the counts within 5%
    iou = _iou_matrix(wm, tm)
    assert float((iou.max(1).values >= 0.5).float().mean()) >= 0.9
    assert float((iou.max(0).values >= 0.5).float().mean()) >= 0.9
    assert abs(len(tiled) - len(whole)) <= 0.05 * len(whole)


def test_predictor_score_threshold_and_untiled_size(model: torch.nn.Module) -> None:
    image = _mosaic()[:256, :256]
    plain = Predictor(model)(image)
    assert plain.scores is not None and len(plain) >= 10
    thr = float(plain.scores.median())
    kept = Predictor(model, score_thr=thr)(image)
    assert kept.scores is not None and len(kept) == int((plain.scores >= thr).sum()) and 0 < len(kept) < len(plain)
    assert bool((kept.scores >= thr).all())
    selected = plain[plain.scores >= thr]
    assert torch.equal(kept.boxes, selected.boxes) and torch.equal(kept.masks, selected.masks)  # type: ignore[arg-type]
    # a tile size above the image size predicts it whole
    big_tile = Predictor(model, tile_size=1024)(image)
    assert torch.equal(big_tile.masks, plain.masks)  # type: ignore[arg-type]
