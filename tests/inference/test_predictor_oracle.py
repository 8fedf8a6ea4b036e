"""``Predictor`` options against hand-computed expectations, with a recording stand-in model: when an image is tiled
(``tile_size``, ``auto_tile_above``, both boundaries), which tiles the model sees (size, overlap, the default tile),
``score_thr`` (inclusive, also per tile), one intensity rule for the whole image, compact results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from instseg.data.image_io import to_rgb_uint8
from instseg.inference.predictor import AUTO_TILE_ABOVE, Predictor
from instseg.inference.tiling import tile_starts
from instseg.structures import Instances

SCORES = [0.1, 0.5, 0.7, 0.3, 0.5000001]


class Recorder(nn.Module):
    """A stand-in model: a 4 x 4 square at each of five fixed spots of its input, scored ``SCORES``; it records
    every image it is given (the tiles, when the predictor tiles)."""

    def __init__(self, with_scores: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: list[np.ndarray] = []
        self.with_scores = with_scores

    def predict(self, image: np.ndarray) -> Instances:
        self.seen.append(np.array(image))
        h, w = image.shape[:2]
        masks = torch.zeros((len(SCORES), h, w), dtype=torch.bool)
        for k in range(len(SCORES)):
            y, x = (3 + 7 * k) % max(h - 4, 1), (5 + 11 * k) % max(w - 4, 1)
            masks[k, y : y + 4, x : x + 4] = True
        scores = torch.tensor(SCORES) if self.with_scores else None
        return Instances((h, w), masks=masks, scores=scores, labels=torch.arange(len(SCORES)))


def test_needs_tiling_boundaries() -> None:
    p = Predictor(Recorder(), tile_size=64)  # type: ignore[arg-type]
    assert not p.needs_tiling(np.zeros((64, 64, 3), np.uint8))  # exactly one tile: not tiled
    assert p.needs_tiling(np.zeros((64, 65, 3), np.uint8)) and p.needs_tiling(np.zeros((65, 3), np.uint8))
    # tile_size wins over auto_tile_above, whichever is smaller
    assert Predictor(Recorder(), tile_size=64, auto_tile_above=10).needs_tiling(np.zeros((64, 64), np.uint8)) is False  # type: ignore[arg-type]
    assert Predictor(Recorder(), tile_size=64, auto_tile_above=None).needs_tiling(np.zeros((70, 4), np.uint8))  # type: ignore[arg-type]
    auto = Predictor(Recorder(), auto_tile_above=100)  # type: ignore[arg-type]
    assert not auto.needs_tiling(np.zeros((100, 100), np.uint8)) and auto.needs_tiling(np.zeros((3, 101), np.uint8))
    never = Predictor(Recorder(), auto_tile_above=None)  # type: ignore[arg-type]
    assert not never.needs_tiling(np.zeros((5000, 2), np.uint8))
    default = Predictor(Recorder())  # type: ignore[arg-type]
    assert AUTO_TILE_ABOVE == 2048 and default.tile_overlap == 256 and default.score_thr is None
    assert not default.needs_tiling(np.zeros((2048, 1), np.uint8)) and default.needs_tiling(
        np.zeros((2049, 1), np.uint8)
    )


def test_model_is_put_in_eval_mode_on_the_device() -> None:
    model = Recorder().train()
    p = Predictor(model, device="cpu")  # type: ignore[arg-type]
    assert p.model is model and not model.training and p.device == torch.device("cpu")
    assert model.weight.device.type == "cpu"


@pytest.mark.parametrize(("thr", "kept"), [(None, SCORES), (0.5, [0.5, 0.7, 0.5000001]), (0.7, [0.7]), (0.71, [])])
def test_score_threshold_is_inclusive(thr: float | None, kept: list[float]) -> None:
    model = Recorder()
    image = np.zeros((40, 60, 3), np.uint8)
    out = Predictor(model, score_thr=thr)(image)  # type: ignore[arg-type]
    assert out.is_compact and out.image_size == (40, 60) and len(model.seen) == 1
    assert out.scores is not None and out.scores.tolist() == pytest.approx(kept)
    # the same objects (boxes, masks, labels) as the model's, in the model's order
    whole = model.predict(image)
    assert whole.scores is not None
    sel = whole[whole.scores >= thr] if thr is not None else whole
    assert torch.equal(out.boxes, sel.boxes) and torch.equal(out.labels, sel.labels)
    assert torch.equal(out.masks, sel.masks)  # type: ignore[arg-type]
    whole_only = Predictor(model, score_thr=thr).predict_whole(image)  # type: ignore[arg-type]
    assert not whole_only.is_compact and torch.equal(whole_only.masks, sel.masks)  # type: ignore[arg-type]


def test_score_threshold_without_scores_keeps_everything() -> None:
    out = Predictor(Recorder(with_scores=False), score_thr=0.9)(np.zeros((30, 30, 3), np.uint8))  # type: ignore[arg-type]
    assert len(out) == len(SCORES) and out.scores is None


def tile_origins(model: Recorder) -> list[tuple[int, int, int, int]]:
    """(y0, x0, h, w) of every image the model saw, read from the position code of ``coded_image``."""
    out = []
    for tile in model.seen:
        y0 = int(tile[0, 0, 1]) + 256 * int(tile[0, 0, 0] // 16)
        x0 = int(tile[0, 0, 2]) + 256 * int(tile[0, 0, 0] % 16)
        out.append((y0, x0, *tile.shape[:2]))
    return out


def coded_image(h: int, w: int) -> np.ndarray:
    """[H, W, 3] uint8 whose pixels encode their own (y, x), so a tile tells where it was cut from."""
    yy, xx = np.mgrid[:h, :w]
    return np.stack([(yy // 256) * 16 + xx // 256, yy % 256, xx % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(
    ("size", "kwargs", "tile", "overlap"),
    [
        ((300, 200), {"tile_size": 128, "tile_overlap": 32}, 128, 32),
        ((300, 200), {"tile_size": 100, "tile_overlap": 10}, 100, 10),
        ((2100, 40), {}, 1024, 256),  # auto-tiled: the default tile is 1024 ...
        ((2100, 40), {"tile_overlap": 600}, 1200, 600),  # ... or twice the overlap when that is larger
        ((150, 90), {"auto_tile_above": 100, "tile_overlap": 20}, 1024, 20),  # a tile larger than the image
    ],
)
def test_tiles_seen_by_the_model(size: tuple[int, int], kwargs: dict, tile: int, overlap: int) -> None:
    h, w = size
    model = Recorder()
    image = coded_image(h, w)
    out = Predictor(model, **kwargs)(image)  # type: ignore[arg-type]
    expected = [
        (ty, tx, min(tile, h - ty), min(tile, w - tx))
        for ty in tile_starts(h, tile, overlap)
        for tx in tile_starts(w, tile, overlap)
    ]
    assert tile_origins(model) == expected
    for (y0, x0, th, tw), seen in zip(expected, model.seen, strict=True):
        np.testing.assert_array_equal(seen, image[y0 : y0 + th, x0 : x0 + tw])
    assert out.is_compact and out.image_size == (h, w)


def test_score_threshold_applies_in_every_tile() -> None:
    model = Recorder()
    out = Predictor(model, tile_size=128, tile_overlap=32, score_thr=0.5)(coded_image(300, 200))  # type: ignore[arg-type]
    assert len(model.seen) == 6 and len(out) > 0
    assert out.scores is not None and bool((out.scores >= 0.5).all())
    assert sorted(set(out.scores.tolist())) == pytest.approx([0.5, 0.5000001, 0.7])


def test_one_intensity_rule_for_the_whole_image() -> None:
    """A 16-bit grey image is converted once: every tile is a slice of the whole image's conversion, so a dark
    tile is not stretched to full contrast on its own."""
    rng = np.random.default_rng(0)
    grey = rng.integers(100, 200, size=(260, 180)).astype(np.uint16)
    grey[:, 120:] += 30000  # a bright region: tiles without it must still see their pixels as dark
    model = Recorder()
    Predictor(model, tile_size=96, tile_overlap=24)(grey)  # type: ignore[arg-type]
    rgb = to_rgb_uint8(grey)
    starts_y, starts_x = tile_starts(260, 96, 24), tile_starts(180, 96, 24)
    assert len(model.seen) == len(starts_y) * len(starts_x)
    k = 0
    for ty in starts_y:
        for tx in starts_x:
            np.testing.assert_array_equal(model.seen[k], rgb[ty : ty + 96, tx : tx + 96])
            k += 1
    assert int(model.seen[0].max()) < 10  # a tile with no bright pixel stays dark
