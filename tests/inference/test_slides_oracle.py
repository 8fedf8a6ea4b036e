"""Slide prediction against hand-computed cases: the slide-wide intensity range (brute force over the sampled
grid), the uint8 conversion, pasting by score with first-painted-wins, a tile-dependent model whose objects are
seen whole by two tiles (kept once, from the tile whose core holds the centre), objects.jsonl against the label
image, category ids, progress on stderr, the output folder rule, lazy sources with other axis orders, and the
tiled TIFF writer on sizes that are not a multiple of its tile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from instseg.inference.slides import (
    SlideSource,
    _paste_tile,
    full_slide_rle,
    intensity_range,
    object_crop,
    open_slide,
    predict_slide,
    to_rgb,
    write_tiled_tiff,
)
from instseg.structures import Instances
from instseg.structures.masks import mask_to_rle, rle_to_mask

zarr = pytest.importorskip("zarr", reason="zarr (the 'slides' extra) is not installed")


def test_intensity_range_is_the_percentiles_of_the_sampled_grid() -> None:
    h, w = 600, 700
    yy, xx = np.mgrid[:h, :w]
    slide = (1000 + 7 * xx + 3 * yy).astype(np.uint16)  # every region has its own values
    got = intensity_range(SlideSource(slide, "YX", "ramp"), samples=16, side=256)
    # 4 x 4 regions of 256 px, evenly from the top-left corner to the bottom-right one
    ys, xs = [0, 114, 229, 344], [0, 148, 296, 444]
    values = np.concatenate([slide[y : y + 256, x : x + 256].ravel() for y in ys for x in xs]).astype(np.float64)
    lo, hi = np.percentile(values, [0.1, 99.9])
    assert got is not None and got == pytest.approx((lo, hi))
    assert got[1] > 1000 + 7 * 600  # the right-hand regions were read (the whole width is sampled)
    # a slide smaller than a region: one region, the whole slide
    small = slide[:100, :90]
    assert intensity_range(SlideSource(small, "YX", "s"), samples=4, side=256) == pytest.approx(
        tuple(np.percentile(small.astype(np.float64), [0.1, 99.9]))
    )
    assert intensity_range(SlideSource(np.zeros((40, 40), np.uint8), "YX", "u8")) is None
    flat = intensity_range(SlideSource(np.full((40, 40), 5, np.uint16), "YX", "flat"))
    assert flat is not None and flat[0] == 5.0 and flat[1] == pytest.approx(5.0 + 1e-6)
    nan = intensity_range(SlideSource(np.full((40, 40), np.nan, np.float32), "YX", "nan"))
    assert nan == (0.0, 1.0)


def test_to_rgb_under_a_fixed_range() -> None:
    region = np.array([[999, 1000, 1500], [2000, 2001, 1250]], dtype=np.uint16)
    rgb = to_rgb(region, (1000.0, 2000.0))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], [[0, 0, 128], [255, 255, 64]])  # rint(127.5) = 128, rint(63.75)
    assert (rgb[..., 0] == rgb[..., 2]).all()
    floats = to_rgb(np.array([[np.nan, np.inf, 0.5]], np.float32), (0.0, 1.0))
    np.testing.assert_array_equal(floats[..., 0], [[0, 255, 128]])
    u8 = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(to_rgb(u8, None), u8)


def test_paste_tile_by_score_first_painted_wins() -> None:
    masks = torch.zeros((4, 40, 40), dtype=torch.bool)
    masks[0, 10:20, 10:20] = True  # score 0.6, shares rows 15-20 with object 1
    masks[1, 15:30, 10:20] = True  # score 0.9: painted first, keeps the shared pixels
    masks[2, 16:19, 12:15] = True  # score 0.5, wholly inside object 1: no pixel of its own, dropped
    masks[3, 30:38, 30:38] = True  # centre (34, 34) outside the core: another tile's
    found = Instances(
        (40, 40), masks=masks, scores=torch.tensor([0.6, 0.9, 0.5, 0.95]), labels=torch.tensor([1, 2, 3, 4])
    )
    region = np.zeros((40, 40), np.int32)
    region[10:12, 10:20] = 99  # painted by an earlier tile: never overwritten
    out = list(_paste_tile(found, region, ty=100, tx=200, core=(100, 132, 200, 232), next_id=7))
    assert [(o[0], o[1], o[2], o[4]) for o in out] == [(7, 115, 210, 2), (8, 112, 210, 1)]  # (id, y0, x0, label)
    assert out[0][5] == pytest.approx(0.9) and out[1][5] == pytest.approx(0.6)
    np.testing.assert_array_equal(out[0][3], np.ones((15, 10), bool))
    np.testing.assert_array_equal(out[1][3], np.ones((3, 10), bool))  # rows 12-15: what was left to it
    expected = np.zeros((40, 40), np.int32)
    expected[10:12, 10:20] = 99
    expected[15:30, 10:20] = 7
    expected[12:15, 10:20] = 8
    np.testing.assert_array_equal(region, expected)
    assert list(_paste_tile(Instances.empty((40, 40)), region, 0, 0, (0, 40, 0, 40), 1)) == []
    with pytest.raises(ValueError, match="masks"):
        list(_paste_tile(Instances((40, 40), boxes=torch.tensor([[1.0, 1, 4, 4]])), region, 0, 0, (0, 40, 0, 40), 1))


def coded_slide(h: int, w: int) -> np.ndarray:
    """[H, W, 3] uint8: channel 0 holds the objects (255), channels 1 and 2 the pixel's y // 4 and x // 4."""
    yy, xx = np.mgrid[:h, :w]
    return np.stack([np.zeros_like(yy), yy // 4, xx // 4], axis=-1).astype(np.uint8)


RECTS = [(20, 36, 30, 50), (60, 80, 100, 130), (150, 170, 60, 76), (200, 216, 200, 230), (120, 130, 180, 196)]


def tile_aware(image: np.ndarray) -> Instances:
    """Rectangles of channel 0 as objects, scored by the tile's origin (score = 0.3 + (ty + tx) / 2000) and
    labelled by the object's size, so the tile an object was kept from shows."""
    from skimage.measure import label as connected_components

    ty, tx = 4 * int(image[0, 0, 1]), 4 * int(image[0, 0, 2])
    lab = connected_components(image[..., 0] > 127)
    n = int(lab.max())
    masks = torch.from_numpy(lab[None] == np.arange(1, n + 1)[:, None, None])
    found = Instances(lab.shape, masks=masks)
    found.scores = torch.full((n,), 0.3 + (ty + tx) / 2000)
    found.labels = (found.mask_areas() > 300).long()
    return found


def test_objects_seen_by_two_tiles_are_kept_once_from_their_core(tmp_path: Path) -> None:
    h, w = 240, 256
    slide = coded_slide(h, w)
    for y0, y1, x0, x1 in RECTS:
        slide[y0:y1, x0:x1, 0] = 255
    # tiles of 128, overlap 64: starts 0, 64, 112 (y) and 0, 64, 128 (x); cores [0, 96), [96, 152), [152, 240)
    # and [0, 96), [96, 160), [160, 256); objects 2 and 4 are seen whole by two tiles each
    summary = predict_slide(tile_aware, SlideSource(slide, "YXS", "coded"), tmp_path, tile=128, overlap=64,
                            category_ids=[11, 22], progress=False)  # fmt: skip
    assert summary.tiles == 9 and summary.objects == len(RECTS) and (summary.height, summary.width) == (h, w)
    labels = np.asarray(zarr.open_array(str(summary.files["labels"]), mode="r")[:])
    records = [json.loads(line) for line in summary.files["objects"].read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(1, len(RECTS) + 1))
    owners = {}
    for y0, y1, x0, x1 in RECTS:
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        ty = 0 if cy < 96 else 64 if cy < 152 else 112
        tx = 0 if cx < 96 else 64 if cx < 160 else 128
        owners[(y0, x0)] = (ty, tx)
    # ids follow the tiles in raster order (then score): the owners' order
    order = sorted(RECTS, key=lambda r: (owners[(r[0], r[2])], r[0], r[2]))
    for record, (y0, y1, x0, x1) in zip(records, order, strict=True):
        ty, tx = owners[(y0, x0)]
        assert record["bbox"] == [x0, y0, x1 - x0, y1 - y0] and record["area"] == (y1 - y0) * (x1 - x0)
        assert record["score"] == pytest.approx(0.3 + (ty + tx) / 2000)
        assert record["category_id"] == (22 if record["area"] > 300 else 11)
        assert (labels[y0:y1, x0:x1] == record["id"]).all() and (labels == record["id"]).sum() == record["area"]
        y, x, crop = object_crop(record)
        assert (y, x) == (y0, x0) and crop.all()
        assert full_slide_rle(record, h, w) == mask_to_rle(labels == record["id"])
    assert int((labels > 0).sum()) == sum((r[1] - r[0]) * (r[3] - r[2]) for r in RECTS)
    meta = json.loads(summary.files["summary"].read_text())
    assert (meta["height"], meta["width"], meta["tile"], meta["overlap"], meta["tiles"], meta["objects"]) == (
        h, w, 128, 64, 9, len(RECTS))  # fmt: skip
    assert meta["source"] == "coded" and meta["intensity_range"] is None


def test_an_object_centred_on_a_core_boundary_is_kept_once_by_the_later_tile(tmp_path: Path) -> None:
    """Cores are half-open, ``[lo, hi)``: a box centre exactly on a boundary belongs to the tile after it (never to
    both, never to neither). Tiles of 128, overlap 64: starts 0, 64, 112 (y, 240 rows) and 0, 64, 128 (x, 256
    columns); the first boundary is 96 on both axes. Both objects are seen whole by the tiles on either side."""
    slide = coded_slide(240, 256)
    slide[90:102, 20:40, 0] = 255  # rows 90-102: centre 96.0 -> core [96, 152): tile row 64
    slide[20:36, 90:102, 0] = 255  # columns 90-102: centre 96.0 -> core [96, 160): tile column 64
    summary = predict_slide(tile_aware, SlideSource(slide, "YXS", "edge"), tmp_path, tile=128, overlap=64,
                            progress=False)  # fmt: skip
    records = [json.loads(line) for line in summary.files["objects"].read_text().splitlines()]
    got = sorted((r["bbox"], round(r["score"], 6)) for r in records)
    assert got == [([20, 90, 20, 12], 0.332), ([90, 20, 12, 16], 0.332)]  # 0.3 + (64 + 0) / 2000 each
    assert summary.objects == 2


def test_the_model_sees_one_tile_at_a_time(tmp_path: Path) -> None:
    """Each call gets exactly one tile: 128 x 128 at the starts 0, 64, 112 (240 rows) x 0, 64, 128 (256 columns),
    in raster order, never the rest of the slide below or right of a tile; a slide shorter than the tile is read
    at its own height."""
    calls: list[tuple[int, int, int, int]] = []

    def recording(image: np.ndarray) -> Instances:
        calls.append((4 * int(image[0, 0, 1]), 4 * int(image[0, 0, 2]), *image.shape[:2]))
        return tile_aware(image)

    slide = coded_slide(240, 256)
    slide[20:36, 30:50, 0] = 255
    summary = predict_slide(recording, SlideSource(slide, "YXS", "calls"), tmp_path / "a", tile=128, overlap=64,
                            progress=False)  # fmt: skip
    assert calls == [(ty, tx, 128, 128) for ty in (0, 64, 112) for tx in (0, 64, 128)]
    assert summary.tiles == 9 and summary.objects == 1
    calls.clear()
    predict_slide(recording, SlideSource(coded_slide(100, 256), "YXS", "short"), tmp_path / "b", tile=128,
                  overlap=64, progress=False)  # fmt: skip
    assert calls == [(0, 0, 100, 128), (0, 64, 100, 128), (0, 128, 100, 128)]


def test_a_spilled_copy_keeps_only_the_pixels_left_to_it(tmp_path: Path) -> None:
    """A model that, in a tile cutting an object at its top, spills the cut copy 20 rows further down: the copy's
    centre falls in that tile's core, so it is kept, but the object painted first (from the tile above) keeps the
    shared pixels; the copy is left with the spilled rows only (the slide rule has no fragment test).

    Tiles of 128, overlap 64 on 240 rows: starts 0, 64, 112; cores [0, 96), [96, 152), [152, 240)."""
    h, w = 240, 100
    slide = coded_slide(h, w)
    slide[50:90, 10:40, 0] = 255  # centre 70 < 96: kept whole by tile 0 (rows 0-128)

    def spilling(image: np.ndarray) -> Instances:
        found = tile_aware(image)
        if 4 * int(image[0, 0, 1]) == 64 and len(found):  # the tile at rows 64..192 cuts it at row 64
            masks = found.masks
            assert masks is not None
            masks[0, 26:66, 10:40] = True  # rows 90-130: the copy becomes rows 64-130, centre 97: in the core
            found = Instances(found.image_size, masks=masks, scores=found.scores, labels=found.labels)
        return found

    summary = predict_slide(spilling, SlideSource(slide, "YXS", "spill"), tmp_path, tile=128, overlap=64,
                            progress=False)  # fmt: skip
    labels = np.asarray(zarr.open_array(str(summary.files["labels"]), mode="r")[:])
    assert summary.objects == 2
    expected = np.zeros((h, w), np.int32)
    expected[50:90, 10:40] = 1
    expected[90:130, 10:40] = 2
    np.testing.assert_array_equal(labels, expected)
    records = [json.loads(line) for line in summary.files["objects"].read_text().splitlines()]
    assert [(r["bbox"], r["area"]) for r in records] == [([10, 50, 30, 40], 1200), ([10, 90, 30, 40], 1200)]


def test_progress_on_stderr_and_the_output_folder_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    slide = coded_slide(200, 200)
    slide[20:30, 20:30, 0] = 255
    source = SlideSource(slide, "YXS", "prog.tif")
    predict_slide(tile_aware, source, tmp_path / "a", tile=128, overlap=32, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "4/4" in err and "prog.tif tiles" in err
    with pytest.raises(ValueError):  # results already there: refused by default
        predict_slide(tile_aware, source, tmp_path / "a", tile=128, overlap=32, progress=False)
    again = predict_slide(tile_aware, source, tmp_path / "a", tile=128, overlap=32, progress=False, overwrite=True)
    assert again.objects == 1


@pytest.mark.parametrize("axes", ["YXS", "SYX", "CYX", "TCYX", "YX"])
def test_sources_in_other_axis_orders(axes: str) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    data = {
        "YXS": rgb,
        "SYX": np.moveaxis(rgb, 2, 0),
        "CYX": np.moveaxis(rgb, 2, 0),
        "TCYX": np.moveaxis(rgb, 2, 0)[None],
        "YX": rgb[..., 0],
    }[axes]
    source = SlideSource(data, axes, "a")
    assert source.shape == (30, 40) and source.dtype == np.uint8
    region = source.read(5, 7, 10, 20)
    np.testing.assert_array_equal(region, rgb[5:15, 7:27] if axes != "YX" else rgb[5:15, 7:27, 0])


def test_bad_sources() -> None:
    with pytest.raises(ValueError, match="do not match"):
        SlideSource(np.zeros((3, 4, 5)), "YX", "a.zarr")
    for array, axes in [(np.zeros((2, 8, 8)), "ZYX"), (np.zeros((8, 8, 5)), "YXS"), (np.zeros((8, 8)), "YZ")]:
        with pytest.raises(ValueError, match="not one 2-D image"):
            SlideSource(array, axes, "b.zarr")
    SlideSource(np.zeros((1, 8, 8, 4)), "ZYXS", "ok")  # length-1 extra axes and 4 channels are fine
    with pytest.raises(ValueError, match="object 5"):
        object_crop({"id": 5, "bbox": [0, 0, 3, 2], "segmentation": mask_to_rle(np.ones((3, 3), bool))})


def test_zarr_levels_and_errors(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "pyramid.zarr"), mode="w")
    full = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    for level, data in enumerate([full, full[::2, ::2]]):
        a = group.create_array(str(level), shape=data.shape, chunks=(16, 16), dtype="uint16")
        a[:] = data
        a.attrs["axes"] = "YX"
    np.testing.assert_array_equal(open_slide(tmp_path / "pyramid.zarr", level=1).read(0, 0, 32, 24), full[::2, ::2])
    with pytest.raises(ValueError, match="no array 2"):
        open_slide(tmp_path / "pyramid.zarr", level=2)
    single = zarr.create_array(str(tmp_path / "one.zarr"), shape=(20, 30, 3), chunks=(10, 10, 3), dtype="uint8")
    single[:] = 7
    source = open_slide(tmp_path / "one.zarr")
    assert source.shape == (20, 30) and source.axes == "YXS"
    with pytest.raises(ValueError, match="only level 0"):
        open_slide(tmp_path / "one.zarr", level=1)
    with pytest.raises(ValueError, match="no such file"):
        open_slide(tmp_path / "missing.zarr")


def test_tiled_tiff_of_a_size_not_a_multiple_of_its_tile(tmp_path: Path) -> None:
    labels = np.arange(100 * 70, dtype=np.int32).reshape(100, 70)
    write_tiled_tiff(labels, tmp_path / "l.tif", side=32)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (32, 32)
        np.testing.assert_array_equal(page.asarray(), labels)
    assert rle_to_mask(full_slide_rle({"bbox": [3, 2, 2, 1], "segmentation": mask_to_rle(np.ones((1, 2), bool))},
                                      5, 6)).sum() == 2  # fmt: skip
