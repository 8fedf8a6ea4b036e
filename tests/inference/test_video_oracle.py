"""Video prediction against a clip whose every frame, object, label and score is known: frame skipping and
``max_frames`` (frame numbers, times, counts), per-frame JSONL (boxes, RLEs, category ids, scores), the
YouTube-VIS file (one entry per processed frame, ``None`` where a track is absent, mean score, most frequent
category, video id), the annotated MP4 (size padded to even, rate divided by ``every``, drawn pixels), the summary's
speed, progress on stderr only, and ``draw_tracks`` pixel by pixel."""

from __future__ import annotations

import json
import re
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.measure import label as connected_components

from instseg.inference.video import VideoSummary, draw_tracks, predict_video, read_frames
from instseg.structures import Instances
from instseg.structures.masks import rle_to_mask

av = pytest.importorskip("av", reason="PyAV (the 'video' extra) is not installed")

H, W, FRAMES, FPS = 95, 100, 10, 12  # odd height: the annotated video must be padded to an even size


def true_rects(f: int) -> list[tuple[int, int, int, int]]:
    """Frame ``f``'s objects (y0, y1, x0, x1): A moves right (12 px wide, 10 tall, except 10 x 12 in frame 6),
    B moves left, C is present in frames 3..6 only."""
    a = (10, 20, 5 + 2 * f, 17 + 2 * f) if f != 6 else (9, 21, 18, 28)
    rects = [a, (70, 80, 80 - f, 88 - f)]
    if 3 <= f <= 6:
        rects.append((45, 57, 40, 50))
    return rects


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frames drawn white on black, lossless (x264 4:4:4 at qp 0 also encodes an odd height)."""
    path = tmp_path_factory.mktemp("video") / "known.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        stream.options = {"qp": "0"}
        for f in range(FRAMES):
            rgb = np.zeros((H, W, 3), np.uint8)
            for y0, y1, x0, x1 in true_rects(f):
                rgb[y0:y1, x0:x1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def known(image: np.ndarray) -> Instances:
    """A perfect stand-in: bright blobs; label 1 when wider than tall else 0; score from the blob's top row."""
    lab = connected_components(image[..., 0] > 127)
    n = int(lab.max())
    masks = torch.from_numpy(lab[None] == np.arange(1, n + 1)[:, None, None])
    found = Instances(lab.shape, masks=masks)
    b = found.boxes
    found.labels = ((b[:, 2] - b[:, 0]) > (b[:, 3] - b[:, 1])).long()
    found.scores = 0.5 + b[:, 1] / 200
    return found


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def which(rect: tuple[int, int, int, int], f: int) -> int:
    return true_rects(f).index(rect)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_frames_file_and_vis_file_hold_the_known_objects(clip: Path, tmp_path: Path, every: int) -> None:
    summary = predict_video(known, clip, tmp_path, every=every, progress=False, write_video=False,
                            category_ids=[7, 9], video_id=4)  # fmt: skip
    processed = list(range(0, FRAMES, every))
    assert (summary.frames_read, summary.frames_processed) == (FRAMES, len(processed))
    assert summary.tracks == 3 and set(summary.files) == {"frames", "vis"}
    records = read_jsonl(summary.files["frames"])
    assert [r["frame"] for r in records] == processed
    by_track: dict[int, dict[int, np.ndarray]] = {}
    for k, r in enumerate(records):
        f = r["frame"]
        assert r["time_s"] == pytest.approx(f / FPS, abs=1e-3)
        assert len(r["instances"]) == len(true_rects(f))
        for e in r["instances"]:
            mask = rle_to_mask(e["segmentation"])
            assert mask.shape == (H, W)
            ys, xs = np.nonzero(mask)
            rect = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
            assert rect in true_rects(f) and mask.sum() == (rect[1] - rect[0]) * (rect[3] - rect[2])
            assert e["bbox"] == [rect[2], rect[0], rect[3] - rect[2], rect[1] - rect[0]]  # xywh
            wide = rect[3] - rect[2] > rect[1] - rect[0]
            assert e["category_id"] == (9 if wide else 7)
            assert e["score"] == pytest.approx(0.5 + rect[0] / 200)
            by_track.setdefault(e["track_id"], {})[k] = mask
            # the same true object keeps its track: A is 1, B is 2, C (born later) is 3
            assert e["track_id"] == which(rect, f) + 1
    vis = json.loads(summary.files["vis"].read_text())
    assert len(vis) == 3 and [v["video_id"] for v in vis] == [4, 4, 4]
    for tid, v in enumerate(vis, start=1):
        assert len(v["segmentations"]) == len(processed)
        for k, seg in enumerate(v["segmentations"]):
            if k in by_track[tid]:
                np.testing.assert_array_equal(rle_to_mask(seg), by_track[tid][k])
            else:
                assert seg is None
        tops = [true_rects(f)[tid - 1][0] for k, f in enumerate(processed) if k in by_track[tid]]
        assert v["score"] == pytest.approx(float(np.mean([0.5 + t / 200 for t in tops])))
    # A is wide in every frame but 6 (most frequent: 9), B is always tall (7), C is tall (12 x 10)
    assert [v["category_id"] for v in vis] == [9, 7, 7]
    absent = [k for k, f in enumerate(processed) if not 3 <= f <= 6]
    assert all(vis[2]["segmentations"][k] is None for k in absent)


def test_defaults_video_id_and_category_ids(clip: Path, tmp_path: Path) -> None:
    summary = predict_video(known, clip, tmp_path, progress=False, write_video=False, max_frames=4)
    assert (summary.frames_read, summary.frames_processed) == (4, 4)
    vis = json.loads(summary.files["vis"].read_text())
    assert {v["video_id"] for v in vis} == {1}
    assert [v["category_id"] for v in vis] == [2, 1, 1]  # label + 1
    assert [len(v["segmentations"]) for v in vis] == [4, 4, 4]
    skip = predict_video(known, clip, tmp_path / "skip", every=2, progress=False, write_video=False, max_frames=5)
    assert (skip.frames_read, skip.frames_processed) == (5, 3)
    assert [r["frame"] for r in read_jsonl(skip.files["frames"])] == [0, 2, 4]


def test_annotated_video_size_rate_and_pixels(clip: Path, tmp_path: Path) -> None:
    summary = predict_video(known, clip, tmp_path, every=2, progress=False)
    container, stream = read_frames(summary.files["video"])
    with container:
        assert Fraction(stream.average_rate) == Fraction(FPS, 2)
        assert (stream.codec_context.width, stream.codec_context.height) == (W, H + 1)  # padded to even
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 5 and decoded[0].shape == (H + 1, W, 3)
    # each frame is the drawing of that frame's tracks (lossy H.264: close, not equal), the padding row black
    for k, out in enumerate(decoded):
        f = 2 * k
        rgb = np.zeros((H, W, 3), np.uint8)
        for y0, y1, x0, x1 in true_rects(f):
            rgb[y0:y1, x0:x1] = 255
        ids = np.array([which(r, f) + 1 for r in true_rects(f)])
        order = np.argsort([r[0] * W + r[2] for r in true_rects(f)])  # ``known`` lists blobs in raster order
        expected = draw_tracks(rgb, known(rgb), ids[order]).astype(int)
        got = out[:H].astype(int)
        assert np.abs(got - expected).mean() < 6, k
        assert out[H].mean() < 40
        # not moved or stretched: the drawing matches better in place than one pixel off, in the left and top
        # halves (a pad on the wrong side, rescaled to the stream's size, would shift them most)
        for axis, part in ((1, np.s_[:, : W // 2]), (0, np.s_[: H // 2, :])):
            err = {d: float(np.abs(got[part] - np.roll(expected, d, axis=axis)[part]).mean()) for d in (-1, 0, 1)}
            assert err[0] < 0.75 * min(err[-1], err[1]), (k, axis, err)


def test_summary_speed() -> None:
    assert VideoSummary(10, 0, 0, 0.0, {}).fps == 0.0
    assert VideoSummary(10, 8, 2, 0.0, {}).fps == 0.0
    assert VideoSummary(10, 8, 2, 2.0, {}).fps == 4.0


def test_progress_goes_to_stderr_with_the_frame_count(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    predict_video(known, clip, tmp_path, progress=True, write_video=False, max_frames=5)
    out, err = capsys.readouterr()
    assert out == ""
    assert "known.mp4" in err and "5/5" in err  # max_frames bounds the bar's total
    t0 = time.perf_counter()
    predict_video(known, clip, tmp_path / "all", progress=True, write_video=False)
    wall = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert f"{FRAMES}/{FRAMES}" in err
    # the bar's speed is frames over the seconds since the start, which are at most the call's wall time, so it
    # shows at least FRAMES / wall (less 0.05 for the one decimal shown)
    shown = [float(v) for v in re.findall(r"(\d+\.\d) fps", err)]
    assert shown and shown[-1] >= FRAMES / wall - 0.05, (shown, wall)


def test_predictor_without_masks_is_refused(clip: Path, tmp_path: Path) -> None:
    def boxes_only(image: np.ndarray) -> Instances:
        return Instances(image.shape[:2], boxes=torch.tensor([[1.0, 1.0, 5.0, 5.0]]), scores=torch.ones(1))

    with pytest.raises(ValueError, match="masks"):
        predict_video(boxes_only, clip, tmp_path, progress=False)


def test_draw_tracks_pixel_by_pixel() -> None:
    frame = np.full((40, 50, 3), 100, np.uint8)
    masks = torch.zeros((3, 40, 50), dtype=torch.bool)
    masks[0, 20:30, 5:15] = True
    masks[1, 20:30, 30:40] = True
    masks[2, 2:6, 2:6] = True  # not tracked (id -1): never drawn
    found = Instances((40, 50), masks=masks, scores=torch.ones(3))
    out = draw_tracks(frame, found, np.array([3, 1, -1]), alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    from instseg.viz.overlay import instance_colors

    colors = instance_colors(4)
    # mask interior: half the frame, half the track's colour (by track id, not by detection index)
    np.testing.assert_allclose(out[24, 9], np.rint(0.5 * 100 + 0.5 * colors[3]), atol=1)
    np.testing.assert_allclose(out[24, 34], np.rint(0.5 * 100 + 0.5 * colors[1]), atol=1)
    np.testing.assert_array_equal(out[21, 5], colors[3].astype(np.uint8))  # the outline in full colour
    np.testing.assert_array_equal(out[2:6, 2:6], frame[2:6, 2:6])  # the untracked one
    np.testing.assert_array_equal(out[32:, :], frame[32:, :])  # below every box and label
    swapped = draw_tracks(frame, found[torch.tensor([1, 0, 2])], np.array([1, 3, -1]), alpha=0.5)
    np.testing.assert_array_equal(swapped, out)  # the same tracks in another order: the same picture
    assert draw_tracks(frame, found, np.array([-1, -1, -1])) is frame
