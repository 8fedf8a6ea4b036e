"""Video prediction with tracking: an annotated MP4, per-frame results and a YouTube-VIS-style results json.

Frames are decoded with PyAV (FFmpeg), every ``every``-th frame is segmented by ``predict`` (an
``instseg.Predictor`` or any callable ``[H, W, 3] uint8 -> Instances``) and associated to tracks by
``MaskTracker`` (mask IoU, ByteTrack-style). Files written into ``out`` for a video ``clip.mp4``:

- ``clip_tracks.mp4``: the processed frames with each track's mask, outline, box and ``#id`` in its own colour,
  at the source frame rate divided by ``every``;
- ``clip_frames.jsonl``: one line per processed frame, ``{"frame", "time_s", "instances": [{"track_id",
  "category_id", "bbox" (xywh), "score", "segmentation" (COCO RLE of the frame)}]}``; written as it goes, so
  memory does not grow with the video's length (tracks' RLEs for the VIS file excepted);
- ``clip_vis.json``: a list of ``{"video_id", "category_id", "segmentations", "score"}``, one per track, as the
  YouTube-VIS results format has it: ``segmentations`` holds one entry per *processed* frame (frames
  ``0, every, 2 * every, ...``), a COCO RLE or ``None`` where the track is absent; ``score`` is the mean of the
  track's detection scores and ``category_id`` its most frequent class.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instseg.inference.tracking import MaskTracker
from instseg.structures import Instances

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` names a video by its suffix (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class _TrackRecord:
    """What the VIS results need of one track: its RLE per processed frame, scores and labels."""

    segmentations: dict[int, dict[str, Any]] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


@dataclass
class VideoSummary:
    """What ``predict_video`` did: frames decoded and processed, tracks found, speed and the files written."""

    frames_read: int
    frames_processed: int
    tracks: int
    seconds: float
    files: dict[str, Path]

    @property
    def fps(self) -> float:
        """Processed frames per second of wall time (decoding, prediction, tracking and writing together)."""
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0


def draw_tracks(frame: np.ndarray, instances: Instances, track_ids: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Overlay masks, outlines, boxes and ``#id`` on ``frame`` [H, W, 3] uint8, each track in its own colour.

    Colours follow the track id (not the detection's index), so an object keeps its colour through the video.
    """
    from PIL import Image, ImageDraw, ImageFont
    from skimage.segmentation import find_boundaries

    from instseg.viz.overlay import instance_colors

    keep = np.flatnonzero(track_ids > 0)
    box_masks = instances.box_masks
    if keep.size == 0 or box_masks is None:
        return frame
    colors = instance_colors(int(track_ids.max()) + 1)
    out = frame.astype(np.float32)
    boxes = instances.boxes.cpu().numpy()
    for i in keep:
        color = colors[track_ids[i]]
        x0, y0, x1, y1 = (int(v) for v in box_masks.windows[i].tolist())
        mask = box_masks.crops[i].cpu().numpy()
        region = out[y0:y1, x0:x1]
        region[mask] = (1.0 - alpha) * region[mask] + alpha * color
        region[find_boundaries(mask, mode="inner")] = color
    canvas = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i in keep:
        color = tuple(int(c) for c in colors[track_ids[i]])
        bx0, by0, bx1, by1 = (float(v) for v in boxes[i])
        if bx1 > bx0 and by1 > by0:
            draw.rectangle([bx0, by0, bx1 - 1, by1 - 1], outline=color, width=1)
        draw.text((bx0 + 1, max(by0 - 11, 0)), f"#{int(track_ids[i])}", fill=color, font=font)
    return np.asarray(canvas)


class _Mp4Writer:
    """Encode RGB frames to H.264 MP4 with PyAV (frames padded to even sizes, as yuv420p needs)."""

    def __init__(self, path: Path, rate: Fraction, width: int, height: int) -> None:
        import av

        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"

    def write(self, rgb: np.ndarray) -> None:
        """Encode one frame [H, W, 3] uint8."""
        import av

        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)))
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def read_frames(path: Path) -> tuple[Any, Any]:
    """Open a video with PyAV: ``(container, stream)``; ``ValueError`` naming the file when it cannot be read."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:  # type: ignore[attr-defined]
        raise ValueError(f"{path}: cannot read video ({err})") from err
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream in the file")
    return container, container.streams.video[0]


def predict_video(
    predict: Callable[[np.ndarray], Instances],
    source: str | Path,
    out: str | Path,
    every: int = 1,
    tracker: MaskTracker | None = None,
    category_ids: Sequence[int] | None = None,
    video_id: int = 1,
    write_video: bool = True,
    progress: bool = True,
    max_frames: int | None = None,
    overwrite: bool = False,
) -> VideoSummary:
    """Segment and track the objects of a video, writing the annotated MP4, per-frame JSONL and VIS json.

    ``every`` > 1 processes frames ``0, every, 2 * every, ...`` only (the others are decoded and skipped);
    ``max_frames`` stops after that many decoded frames. ``category_ids[label]`` maps labels to the data set's
    category ids (default ``label + 1``). ``out`` must be new or empty unless ``overwrite`` (then its earlier
    contents are removed first), and may not hold the video.
    """
    import av
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from instseg.data.output_paths import prepare_output_dir
    from instseg.inference.writers import write_json_atomic
    from instseg.structures.masks import box_masks_to_rles

    if every < 1:
        raise ValueError(f"every must be >= 1 (process one frame in N), got {every}")
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise ValueError(f"{source}: cannot read video (no such file)")
    tracker = tracker or MaskTracker()
    prepare_output_dir(out, inputs=[source], overwrite=overwrite)
    files = {"frames": out / f"{source.stem}_frames.jsonl", "vis": out / f"{source.stem}_vis.json"}
    if write_video:
        files["video"] = out / f"{source.stem}_tracks.mp4"
    container, stream = read_frames(source)
    total = int(stream.frames) or None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    rate = Fraction(stream.average_rate or 25) / every
    writer: _Mp4Writer | None = None
    records: dict[int, _TrackRecord] = {}
    frames_read = processed = 0
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]}"))
    bar = Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), disable=not progress)
    try:
        with bar, files["frames"].open("w") as frames_file:
            task = bar.add_task(f"{source.name}", total=total, fps="")
            for frame in container.decode(stream):
                if max_frames is not None and frames_read >= max_frames:
                    break
                index, frames_read = frames_read, frames_read + 1
                if index % every:
                    bar.advance(task)
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                found = predict(rgb).to("cpu")
                track_ids = tracker.update(found).numpy()
                keep = np.flatnonzero(track_ids > 0)
                box_masks = found.box_masks
                if box_masks is None:
                    raise ValueError(f"{source}: frame {index}: the predictor gave instances without masks")
                rles = box_masks_to_rles(box_masks[torch.from_numpy(keep)])
                entries = []
                for k, i in enumerate(keep):
                    label = int(found.labels[i])
                    score = float(found.scores[i]) if found.scores is not None else 1.0
                    x0, y0, x1, y1 = (float(v) for v in found.boxes[i])
                    cat = int(category_ids[label]) if category_ids is not None else label + 1
                    tid = int(track_ids[i])
                    entries.append(
                        {
                            "track_id": tid,
                            "category_id": cat,
                            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                            "score": score,
                            "segmentation": rles[k],
                        }
                    )
                    record = records.setdefault(tid, _TrackRecord())
                    record.segmentations[processed] = rles[k]
                    record.scores.append(score)
                    record.labels.append(cat)
                time_s = float(frame.time) if frame.time is not None else index / float(rate * every)
                frames_file.write(json.dumps({"frame": index, "time_s": time_s, "instances": entries}) + "\n")
                if write_video:
                    if writer is None:
                        writer = _Mp4Writer(files["video"], rate, rgb.shape[1], rgb.shape[0])
                    writer.write(draw_tracks(rgb, found, track_ids))
                processed += 1
                elapsed = time.perf_counter() - start
                bar.update(task, advance=1, fps=f"{processed / elapsed:.1f} fps" if elapsed > 0 else "")
    except av.error.FFmpegError as err:  # type: ignore[attr-defined]  # a corrupt packet mid-stream
        raise ValueError(f"{source}: cannot decode frame {frames_read} ({err})") from err
    finally:
        container.close()
        if writer is not None:
            writer.close()
    if processed == 0:
        raise ValueError(f"{source}: no frame could be decoded")
    vis = [
        {
            "video_id": int(video_id),
            "category_id": Counter(rec.labels).most_common(1)[0][0],
            "segmentations": [rec.segmentations.get(f) for f in range(processed)],
            "score": float(np.mean(rec.scores)),
        }
        for _, rec in sorted(records.items())
    ]
    write_json_atomic(vis, files["vis"])
    seconds = time.perf_counter() - start
    return VideoSummary(frames_read, processed, len(records), seconds, files)
