"""Tiling seams against hand-built cases a tile-blind stand-in cannot give: a scripted, tile-dependent model whose
cut copies at a seam spill past the cut (so their box centres fall inside the cutting tile's core), fragments at
each of the four seams, the exact half-shared threshold, objects at the image's own borders (never seams), a
detector box longer than its mask, and brute-force properties of the tile starts and cores (hypothesis).

Tiling used throughout: tiles of 96 px, overlap 40, on a 200 px side: starts 0, 56, 104; cores [0, 76),
[76, 128), [128, 200) (each boundary is the middle of the two tiles' shared part).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from instseg.inference.tiling import predict_tiled, tile_cores, tile_starts
from instseg.structures import Instances

TILE, OVERLAP, LONG, SHORT = 96, 40, 200, 96
Rect = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open, absolute pixels


@dataclass
class Scene:
    """True objects (unions of rectangles) and the model's tile-dependent errors.

    ``spill[(ty, tx)][k]`` is a rectangle that the model, looking at the tile starting at ``(ty, tx)``, wrongly
    adds to its copy of object ``k`` (a cut object's mask bleeding past the cut, as a model short of context does).
    ``boxes[(ty, tx)][k]`` replaces the box the model reports there (a regressed box longer than its mask).
    """

    h: int
    w: int
    objects: list[list[Rect]]
    spill: dict[tuple[int, int], dict[int, Rect]] = field(default_factory=dict)
    boxes: dict[tuple[int, int], dict[int, Rect]] = field(default_factory=dict)

    def mask(self, k: int) -> np.ndarray:
        m = np.zeros((self.h, self.w), dtype=bool)
        for y0, y1, x0, x1 in self.objects[k]:
            m[y0:y1, x0:x1] = True
        return m

    def image(self) -> np.ndarray:
        """[H, W, 3] uint8 whose channels 1 and 2 hold each pixel's y and x: the model reads where its tile is."""
        yy, xx = np.mgrid[: self.h, : self.w]
        return np.stack([np.zeros_like(yy), yy, xx], axis=-1).astype(np.uint8)

    def transposed(self) -> Scene:
        """The same scene with y and x swapped (top/bottom seams become left/right seams)."""

        def t(r: Rect) -> Rect:
            return (r[2], r[3], r[0], r[1])

        return Scene(
            self.w,
            self.h,
            [[t(r) for r in obj] for obj in self.objects],
            {(tx, ty): {k: t(r) for k, r in d.items()} for (ty, tx), d in self.spill.items()},
            {(tx, ty): {k: t(r) for k, r in d.items()} for (ty, tx), d in self.boxes.items()},
        )


def scripted_model(scene: Scene, calls: list[tuple[int, int, int, int]] | None = None) -> Callable:
    """A model that reports every object of ``scene`` as far as its tile shows it, plus the scene's errors there.

    Scores and labels tell which tile an object came from (score = 0.5 + (ty + tx) / 1000, label = (ty + tx) // 8).
    """

    def predict(tile: np.ndarray) -> Instances:
        th, tw = tile.shape[:2]
        ty, tx = int(tile[0, 0, 1]), int(tile[0, 0, 2])
        if calls is not None:
            calls.append((ty, tx, th, tw))
        masks, boxes = [], []
        for k in range(len(scene.objects)):
            m = scene.mask(k)
            spill = scene.spill.get((ty, tx), {}).get(k)
            if spill is not None:
                m[spill[0] : spill[1], spill[2] : spill[3]] = True
            local = m[ty : ty + th, tx : tx + tw]
            if not local.any():
                continue
            masks.append(local)
            ys, xs = np.nonzero(local)
            box = scene.boxes.get((ty, tx), {}).get(k)
            if box is None:
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            else:  # absolute (y0, y1, x0, x1) -> local xyxy, clipped to the tile as a detector clips
                boxes.append([max(box[2] - tx, 0), max(box[0] - ty, 0), min(box[3] - tx, tw), min(box[1] - ty, th)])
        n = len(masks)
        full = torch.from_numpy(np.stack(masks)) if n else torch.zeros((0, th, tw), dtype=torch.bool)
        return Instances(
            (th, tw),
            boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            masks=full,
            scores=torch.full((n,), 0.5 + (ty + tx) / 1000),
            labels=torch.full((n,), (ty + tx) // 8, dtype=torch.int64),
        )

    return predict


def seams_scene(spill_rows: int = 8) -> Scene:
    """A 200 x 96 scene (one tile column, tiles at rows 0, 56, 104) with a cut copy at each horizontal seam.

    - object 0, rows [50, 90): whole in tile 0 and kept there (centre 70 < 76); tile 56 cuts it at its top seam and
      its copy spills ``spill_rows`` rows down, to rows [56, 90 + spill_rows): centre >= 76, so tile 56 keeps it;
      34 of its rows are object 0's.
    - object 1, rows [58, 120): whole in tile 56 and kept there (centre 89); tile 0 cuts it at its bottom seam and
      its copy spills 8 rows up, to rows [50, 96): centre 73, kept by tile 0; 38 of its 46 rows are object 1's.
    - objects 2, 3 and 4, 5: pairs at the image's top and bottom borders, the small one mostly inside the larger one
      (a nucleus on a cell): an image border is not a seam, so both of each pair stay.
    """
    return Scene(
        LONG,
        SHORT,
        objects=[
            [(50, 90, 10, 40)],
            [(58, 120, 50, 80)],
            [(0, 8, 84, 92)],
            [(2, 20, 82, 94)],
            [(192, 200, 84, 92)],
            [(180, 198, 82, 94)],
        ],
        spill={(56, 0): {0: (90, 90 + spill_rows, 10, 40)}, (0, 0): {1: (50, 58, 50, 80)}},
    )


def as_set(masks: torch.Tensor | np.ndarray) -> set[bytes]:
    return {np.packbits(np.asarray(m, dtype=bool)).tobytes() for m in masks}


def run(scene: Scene) -> Instances:
    return predict_tiled(scripted_model(scene), scene.image(), tile=TILE, overlap=OVERLAP)


@pytest.mark.parametrize("transpose", [False, True], ids=["top-bottom", "left-right"])
def test_cut_copies_at_every_seam_are_dropped_and_border_objects_kept(transpose: bool) -> None:
    scene = seams_scene().transposed() if transpose else seams_scene()
    tiled = run(scene)
    truth = np.stack([scene.mask(k) for k in range(len(scene.objects))])
    assert tiled.is_compact and tiled.image_size == (scene.h, scene.w)
    assert len(tiled) == len(truth)
    assert as_set(tiled.masks) == as_set(truth)  # type: ignore[arg-type]
    # each object comes from the tile that keeps it: object 0 and the top pair from tile 0, object 1 from tile 56,
    # the bottom pair from tile 104 (the score and label say which tile it was)
    origin = {0: 0, 1: 56, 2: 0, 3: 0, 4: 104, 5: 104}
    full = tiled.masks
    assert full is not None and tiled.scores is not None
    for k, t in origin.items():
        i = next(i for i in range(len(tiled)) if torch.equal(full[i], torch.from_numpy(truth[k])))
        assert float(tiled.scores[i]) == pytest.approx(0.5 + t / 1000)
        assert int(tiled.labels[i]) == t // 8
        ys, xs = np.nonzero(truth[k])
        assert tiled.boxes[i].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_without_the_model_errors_no_copy_is_kept_by_a_cutting_tile() -> None:
    """A tile-consistent model: cut copies' centres lie outside the cutting tiles' cores, no fragment rule needed."""
    scene = seams_scene()
    scene.spill = {}
    calls: list[tuple[int, int, int, int]] = []
    tiled = predict_tiled(scripted_model(scene, calls), scene.image(), tile=TILE, overlap=OVERLAP)
    assert as_set(tiled.masks) == as_set([scene.mask(k) for k in range(6)])  # type: ignore[arg-type]
    assert calls == [(0, 0, 96, 96), (56, 0, 96, 96), (104, 0, 96, 96)]


@pytest.mark.parametrize(
    ("spill_rows", "dropped"),
    [
        (34, True),  # 34 of 68 rows shared: exactly half -> a duplicate
        (35, False),  # 34 of 69: under half -> a separate object, kept
        (60, False),  # 34 of 94 (36%): kept
        (6, True),  # 34 of 40
    ],
)
@pytest.mark.parametrize("transpose", [False, True])
def test_half_shared_is_the_threshold(spill_rows: int, dropped: bool, transpose: bool) -> None:
    scene = seams_scene(spill_rows)
    copy = scene.mask(0)
    copy[:56] = False
    copy[90 : 90 + spill_rows, 10:40] = True  # what tile 56 reports for object 0
    if transpose:
        scene, copy = scene.transposed(), copy.T
    tiled = run(scene)
    truth = [scene.mask(k) for k in range(6)]
    expected = as_set(truth) if dropped else as_set([*truth, copy])
    assert as_set(tiled.masks) == expected  # type: ignore[arg-type]


def test_a_speck_under_a_long_box_at_a_seam_is_a_duplicate() -> None:
    """A detector box reaching the seam holds a one-pixel mask inside a whole object: a duplicate (half or more)."""
    scene = seams_scene()
    scene.objects.append([(80, 81, 61, 62)])  # inside object 1 (rows 58-120, cols 50-80)
    scene.boxes = {(56, 0): {6: (40, 100, 60, 63)}}  # in tile 56: rows 56..100 after clipping: touches its top
    for t in (0, 104):
        scene.boxes[(t, 0)] = {6: (80, 81, 61, 62)}
    tiled = run(scene)
    assert as_set(tiled.masks) == as_set([scene.mask(k) for k in range(6)])  # type: ignore[arg-type]


def test_fragment_rule_needs_a_whole_object() -> None:
    """Two cut copies of one object too large for any tile: neither is whole, so both stay (not merged, not lost)."""
    scene = Scene(LONG, SHORT, objects=[[(40, 110, 20, 60)]])  # rows 40-110: cut by tile 0 and by tile 56
    tiled = run(scene)
    full = tiled.masks
    assert full is not None and len(tiled) == 2
    assert full.sum(0).max() == 2 and torch.equal(full.any(0), torch.from_numpy(scene.mask(0)))
    rows = sorted((int(m.any(1).nonzero().min()), int(m.any(1).nonzero().max()) + 1) for m in full)
    assert rows == [(40, 96), (56, 110)]


def test_scores_default_to_one_and_box_only_models_are_stitched() -> None:
    scene = seams_scene()
    model = scripted_model(scene)

    def no_scores(tile: np.ndarray) -> Instances:
        found = model(tile)
        found.scores = None
        return found

    tiled = predict_tiled(no_scores, scene.image(), tile=TILE, overlap=OVERLAP)
    assert tiled.scores is not None and torch.equal(tiled.scores, torch.ones(6))

    def boxes_only(tile: np.ndarray) -> Instances:
        found = model(tile)
        return Instances(found.image_size, boxes=found.boxes, labels=found.labels, scores=found.scores)

    tiled = predict_tiled(boxes_only, scene.image(), tile=TILE, overlap=OVERLAP)
    assert not tiled.has_masks
    # no masks, so no fragment rule: the two spilled copies stay, each box moved by its tile's offset
    got = sorted(tuple(b) for b in tiled.boxes.int().tolist())
    assert got == sorted([(10, 50, 40, 90), (50, 58, 80, 120), (84, 0, 92, 8), (82, 2, 94, 20),
                          (84, 192, 92, 200), (82, 180, 94, 198), (10, 56, 40, 98), (50, 50, 80, 96)])  # fmt: skip


def test_tiled_rles_decode_to_the_true_masks_with_a_tile_dependent_model() -> None:
    scene = seams_scene().transposed()
    results = run(scene).to_coco(image_id=5, category_ids=[10 + k for k in range(20)])
    decoded = [mask_utils.decode(r["segmentation"]).astype(bool) for r in results]
    assert as_set(decoded) == as_set([scene.mask(k) for k in range(6)])
    for r, d in zip(results, decoded, strict=True):
        ys, xs = np.nonzero(d)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        assert r["area"] == int(d.sum()) and r["image_id"] == 5
        assert r["category_id"] == 10 + round((r["score"] - 0.5) * 1000) // 8  # the keeping tile's label, mapped


def test_tile_dependent_masks_stitch_within_tolerance() -> None:
    """A model that grows every mask by one pixel in every other tile: the stitched objects are the whole-image ones
    within IoU >= 0.7, one to one (tiled == untiled within a stated tolerance)."""
    from scipy.ndimage import binary_dilation
    from skimage.draw import disk
    from skimage.measure import label as connected_components

    rng = np.random.default_rng(4)
    image = np.zeros((320, 320, 3), np.uint8)
    taken = np.zeros((320, 320), bool)
    for _ in range(80):
        r = int(rng.integers(6, 12))
        cy, cx = (int(v) for v in rng.integers(r, 320 - r, 2))
        rr, cc = disk((cy, cx), r + 3, shape=taken.shape)
        if taken[rr, cc].any():
            continue
        taken[rr, cc] = True
        rr, cc = disk((cy, cx), r, shape=taken.shape)
        image[rr, cc, 0] = 255
    yy, xx = np.mgrid[:320, :320]
    image[..., 1], image[..., 2] = yy // 2, xx // 2  # the tile's position, readable by the model

    def uneven(tile: np.ndarray) -> Instances:
        lab = connected_components(tile[..., 0] > 127)
        grow = (int(tile[0, 0, 1]) + int(tile[0, 0, 2])) // 24 % 2 == 1
        masks = [binary_dilation(lab == k) if grow else lab == k for k in range(1, int(lab.max()) + 1)]
        stack = np.stack(masks) if masks else np.zeros((0, *lab.shape), bool)
        return Instances(lab.shape, masks=torch.from_numpy(stack), scores=torch.ones(len(masks)))

    whole = connected_components(image[..., 0] > 127)
    truth = torch.from_numpy(np.stack([whole == k for k in range(1, int(whole.max()) + 1)]))
    tiled = predict_tiled(uneven, image, tile=112, overlap=48)
    full = tiled.masks
    assert full is not None and len(tiled) == len(truth)
    a, b = truth.flatten(1).float(), full.flatten(1).float()
    inter = a @ b.T
    iou = inter / (a.sum(1)[:, None] + b.sum(1)[None] - inter)
    best = iou.max(1)
    assert float(best.values.min()) >= 0.7
    assert sorted(best.indices.tolist()) == list(range(len(tiled)))  # one to one


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(1, 700),
    tile=st.integers(8, 200),
    overlap_frac=st.floats(0.0, 0.95),
)
def test_tile_starts_and_cores_brute_force(length: int, tile: int, overlap_frac: float) -> None:
    overlap = min(int(tile * overlap_frac), tile - 1)
    starts = tile_starts(length, tile, overlap)
    ends = [min(s + tile, length) for s in starts]
    # the tiles cover every pixel, start at 0, end flush with the image, and neighbours share >= overlap pixels
    assert starts[0] == 0 and ends[-1] == length and starts == sorted(set(starts))
    covered = np.zeros(length, bool)
    for s, e in zip(starts, ends, strict=True):
        assert e - s == min(tile, length)
        covered[s:e] = True
    assert covered.all()
    assert all(ends[k] - starts[k + 1] >= overlap for k in range(len(starts) - 1))
    assert len(starts) == (1 if length <= tile else 1 + -(-(length - tile) // (tile - overlap)))
    cores = tile_cores(starts, tile, length)
    # the cores partition [0, length), each inside its tile; a pixel's core is the tile that sees the most of
    # its surroundings (farthest from a seam; a tie goes to the later tile)
    owner = np.full(length, -1)
    for k, (lo, hi) in enumerate(cores):
        assert starts[k] <= lo <= hi <= ends[k]
        assert (owner[lo:hi] == -1).all()
        owner[lo:hi] = k
    assert (owner >= 0).all()
    for c in range(0, length, max(1, length // 50)):
        margins = []
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
            if s <= c < e:
                before = c - s + 0.5 if k > 0 else np.inf
                after = e - c - 0.5 if k < len(starts) - 1 else np.inf
                margins.append((min(before, after), k))
        best = max(m for m, _ in margins)
        assert owner[c] == max(k for m, k in margins if m == best), (c, starts, cores)
    # an object narrower than half the overlap, kept by the core holding its centre, lies whole in that tile
    radius = overlap // 4
    for c in range(0, length, max(1, length // 50)):
        k = int(owner[c])
        assert starts[k] <= max(c - radius, 0) and min(c + radius + 1, length) <= ends[k]


def test_tile_sizes_and_errors() -> None:
    assert tile_starts(200, 96, 40) == [0, 56, 104]
    assert tile_cores([0, 56, 104], 96, 200) == [(0, 76), (76, 128), (128, 200)]
    assert tile_starts(96, 96, 40) == [0] and tile_starts(97, 96, 40) == [0, 1]
    assert tile_starts(10, 96, 0) == [0]
    with pytest.raises(ValueError, match="larger than the overlap"):
        tile_starts(500, 40, 41)
