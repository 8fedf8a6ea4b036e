"""Video prediction on a synthetic clip of moving shapes with known tracks: outputs, ID switches, frame skipping."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.draw import disk, rectangle
from skimage.measure import label as connected_components

from instseg.inference.tracking import count_id_switches
from instseg.inference.video import predict_video, read_frames
from instseg.structures import Instances
from instseg.structures.masks import rle_to_mask

av = pytest.importorskip("av", reason="PyAV (the 'video' extra) is not installed")

H, W, FRAMES = 96, 128, 24


def true_label_maps() -> list[np.ndarray]:
    """Per frame, a label map whose value k is true object k: a disc, a square and a disc in their own lanes."""
    maps = []
    for f in range(FRAMES):
        lm = np.zeros((H, W), dtype=np.int32)
        rr, cc = disk((18, 12 + 2 * f), 9, shape=(H, W))
        lm[rr, cc] = 1
        rr, cc = rectangle((40, 100 - 2 * f), extent=(16, 16), shape=(H, W))
        lm[rr, cc] = 2
        if f >= 6:  # the third object enters the scene later
            rr, cc = disk((78, 20 + 2 * (f - 6)), 10, shape=(H, W))
            lm[rr, cc] = 3
        maps.append(lm)
    return maps


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A 24-frame H.264 clip of the true label maps drawn white on black (lossy, as real videos are)."""
    path = tmp_path_factory.mktemp("video") / "shapes.mp4"
    maps = true_label_maps()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for lm in maps:
            rgb = np.repeat(((lm > 0) * 255).astype(np.uint8)[..., None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path, maps


def blobs(image: np.ndarray) -> Instances:
    """A perfect stand-in model: every bright connected blob is one object, listed in raster order."""
    labels = connected_components(image[..., 0] > 127)
    n = int(labels.max())
    masks = torch.from_numpy(labels[None] == np.arange(1, n + 1)[:, None, None])
    return Instances(labels.shape, masks=masks, scores=torch.full((n,), 0.9))


def noisy_blobs(seed: int) -> Callable[[np.ndarray], Instances]:
    """``blobs`` with misses, low scores and a flickering false positive, for a tracker under noise."""
    rng = np.random.default_rng(seed)

    def predict(image: np.ndarray) -> Instances:
        found = blobs(image)
        keep = rng.random(len(found)) > 0.15  # 15% of detections missed
        found = found[torch.from_numpy(keep)]
        scores = torch.from_numpy(np.where(rng.random(len(found)) < 0.3, 0.3, 0.9).astype(np.float32))
        masks = found.masks
        if rng.random() < 0.3:  # a false positive blob in an empty corner
            extra = torch.zeros((1, H, W), dtype=torch.bool)
            extra[0, 88:94, 2:8] = True
            masks = torch.cat([masks, extra])
            scores = torch.cat([scores, torch.tensor([0.6])])
        return Instances((H, W), masks=masks, scores=scores)

    return predict


def id_switches(frames_file: Path, maps: list[np.ndarray], every: int) -> tuple[int, int]:
    """ID switches of the predicted tracks against the true objects (IoU >= 0.5), and true objects never matched."""
    true_ids, pred_ids, missed = [], [], 0
    for line in frames_file.read_text().splitlines():
        record = json.loads(line)
        lm = maps[record["frame"]]
        t_f, p_f = [], []
        for k in range(1, int(lm.max()) + 1):
            truth = lm == k
            best = [
                (float((truth & m).sum() / (truth | m).sum()), e["track_id"])
                for e, m in ((e, rle_to_mask(e["segmentation"])) for e in record["instances"])
            ]
            iou, track = max(best, default=(0.0, -1))
            if iou >= 0.5:
                t_f.append(k)
                p_f.append(track)
            else:
                missed += 1
        true_ids.append(np.array(t_f))
        pred_ids.append(np.array(p_f))
    assert len(true_ids) == len(range(0, FRAMES, every))
    return count_id_switches(true_ids, pred_ids), missed


def test_perfect_predictor_gives_true_tracks(clip: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    path, maps = clip
    summary = predict_video(blobs, path, tmp_path, progress=False)
    assert summary.frames_read == summary.frames_processed == FRAMES
    assert summary.tracks == 3
    switches, missed = id_switches(summary.files["frames"], maps, every=1)
    assert switches == 0 and missed == 0

    vis = json.loads(summary.files["vis"].read_text())
    assert len(vis) == 3
    assert all(set(v) == {"video_id", "category_id", "segmentations", "score"} for v in vis)
    assert all(len(v["segmentations"]) == FRAMES for v in vis)
    late = [v for v in vis if v["segmentations"][0] is None]  # the object entering at frame 6
    assert len(late) == 1 and all(s is None for s in late[0]["segmentations"][:6])
    assert all(s is not None for s in late[0]["segmentations"][6:])

    container, stream = read_frames(summary.files["video"])
    with container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == FRAMES and decoded[0].shape == (H, W, 3)
    assert decoded[10][..., 0].astype(int).sum() != decoded[10][..., 1].astype(int).sum()  # coloured masks drawn


def test_noisy_predictor_few_id_switches(clip: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    path, maps = clip
    summary = predict_video(noisy_blobs(0), path, tmp_path, write_video=False, progress=False)
    switches, _ = id_switches(summary.files["frames"], maps, every=1)
    assert switches <= 1
    assert "video" not in summary.files and not (tmp_path / "shapes_tracks.mp4").exists()


def test_every_n_frames(clip: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    path, maps = clip
    summary = predict_video(blobs, path, tmp_path, every=3, progress=False)
    assert summary.frames_read == FRAMES and summary.frames_processed == FRAMES // 3
    frames = [json.loads(line)["frame"] for line in summary.files["frames"].read_text().splitlines()]
    assert frames == list(range(0, FRAMES, 3))
    assert id_switches(summary.files["frames"], maps, every=3)[0] == 0
    vis = json.loads(summary.files["vis"].read_text())
    assert all(len(v["segmentations"]) == FRAMES // 3 for v in vis)


def test_output_folder_is_checked(clip: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    path, _ = clip
    with pytest.raises(ValueError):
        predict_video(blobs, path, path.parent, progress=False)  # the video's own folder: refused
    (tmp_path / "old.txt").write_text("stale")
    with pytest.raises(ValueError):
        predict_video(blobs, path, tmp_path, progress=False)  # holds earlier files: refused without overwrite
    predict_video(blobs, path, tmp_path, progress=False, write_video=False, overwrite=True, max_frames=2)
    assert not (tmp_path / "old.txt").exists() and (tmp_path / "shapes_vis.json").is_file()


def test_bad_inputs(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=r"broken\.mp4"):
        predict_video(blobs, broken, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="every"):
        predict_video(blobs, broken, tmp_path / "out", every=0, progress=False)
