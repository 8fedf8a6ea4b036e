"""Tracking instances through a video by mask IoU: a ByteTrack-style association giving each object a track id.

After ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box", ECCV 2022):
every detection is used, not only the confident ones. Each frame,

1. detections scoring at least ``high_thr`` are matched to every live track (seen within ``max_age`` frames)
   by mask IoU with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``); a pair is accepted
   when its IoU is at least ``match_iou``;
2. detections scoring in ``[low_thr, high_thr)`` are matched the same way to the tracks left over, with the
   stricter ``low_match_iou`` (a low score is often an occluded or blurred object, which is where this second
   round recovers tracks that a single threshold would lose); unmatched low-score detections are dropped;
3. unmatched confident detections scoring at least ``new_track_thr`` start new tracks (birth);
4. a track not matched for more than ``max_age`` consecutive frames ends (death) and its id is never reused.

ByteTrack compares a Kalman-predicted box with each detection box. Here objects come with masks, so the
association compares the track's last mask, moved by a constant-velocity prediction, with each detection's
mask. The velocity (box-centre pixels per processed frame) is an exponential average of the observed steps: a
light stand-in for ByteTrack's Kalman filter that keeps a track matchable through a few missed frames. A new
track starts with the median velocity of the tracks matched in its frame (the scene's motion: a camera pan moves
every object alike), so small objects in a moving scene are matched from their second frame on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from instseg.structures import Instances


@dataclass
class Track:
    """One tracked object: its id, its last mask (box-cropped) and how long ago it was matched."""

    track_id: int
    box: np.ndarray  # [4] int xyxy of ``mask`` inside the frame
    mask: np.ndarray  # [y1 - y0, x1 - x0] bool crop at ``box``
    label: int
    scores: list[float] = field(default_factory=list)
    missed: int = 0  # processed frames since it was last matched
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # [2] (dx, dy) box-centre px per frame
    matched_once: bool = False  # whether ``velocity`` has been observed yet

    def predicted_box(self) -> np.ndarray:
        """The box moved by the velocity over the frames since the last match (xyxy ints)."""
        dx, dy = np.rint(self.velocity * (self.missed + 1)).astype(np.int64)
        return self.box + np.array([dx, dy, dx, dy])

    def observe(self, box: np.ndarray, mask: np.ndarray, score: float, smoothing: float = 0.5) -> None:
        """Take a matched detection: new mask and box, velocity updated from the centre's step."""
        step = (_centre(box) - _centre(self.box)) / (self.missed + 1)
        self.velocity = step if not self.matched_once else smoothing * self.velocity + (1 - smoothing) * step
        self.matched_once = True
        self.box, self.mask = box, mask
        self.scores.append(score)
        self.missed = 0


def _centre(box: np.ndarray) -> np.ndarray:
    """Centre (x, y) of an xyxy box."""
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float64)


def crop_mask_iou(
    boxes_a: list[np.ndarray], masks_a: list[np.ndarray], boxes_b: list[np.ndarray], masks_b: list[np.ndarray]
) -> np.ndarray:
    """Mask IoU matrix [len(a), len(b)] of box-cropped masks, computed only where the boxes intersect.

    Written by hand rather than with a full-frame matrix product because crops keep the cost at the objects'
    own sizes (a frame of small objects costs little, whatever its resolution).
    """
    iou = np.zeros((len(masks_a), len(masks_b)), dtype=np.float64)
    areas_a = [int(m.sum()) for m in masks_a]
    areas_b = [int(m.sum()) for m in masks_b]
    for i, (ba, ma) in enumerate(zip(boxes_a, masks_a, strict=True)):
        for j, (bb, mb) in enumerate(zip(boxes_b, masks_b, strict=True)):
            x0, y0 = max(ba[0], bb[0]), max(ba[1], bb[1])
            x1, y1 = min(ba[2], bb[2]), min(ba[3], bb[3])
            if x1 <= x0 or y1 <= y0:
                continue
            pa = ma[y0 - ba[1] : y1 - ba[1], x0 - ba[0] : x1 - ba[0]]
            pb = mb[y0 - bb[1] : y1 - bb[1], x0 - bb[0] : x1 - bb[0]]
            inter = int(np.count_nonzero(pa & pb))
            union = areas_a[i] + areas_b[j] - inter
            iou[i, j] = inter / union if union > 0 else 0.0
    return iou


def _assign(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Hungarian assignment maximising total IoU; pairs below ``min_iou`` are left unmatched."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(1.0 - iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]


class MaskTracker:
    """Give each detection of a frame a track id (``-1`` for detections that start or continue no track)."""

    def __init__(
        self,
        high_thr: float = 0.5,
        low_thr: float = 0.1,
        new_track_thr: float | None = None,
        match_iou: float = 0.2,
        low_match_iou: float = 0.5,
        max_age: int = 30,
    ) -> None:
        if not 0.0 <= low_thr <= high_thr <= 1.0:
            raise ValueError(f"need 0 <= low_thr <= high_thr <= 1, got low_thr={low_thr}, high_thr={high_thr}")
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.high_thr = high_thr
        self.low_thr = low_thr
        self.new_track_thr = high_thr if new_track_thr is None else new_track_thr
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.max_age = max_age
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(self, instances: Instances) -> torch.Tensor:
        """Associate one frame's ``instances`` (with masks) to the live tracks; returns track ids Tensor[N] int64."""
        box_masks = instances.box_masks  # crops in their windows: association costs the objects' sizes only
        if box_masks is None:
            raise ValueError("tracking by mask IoU needs instances with masks")
        n = len(instances)
        ids = np.full(n, -1, dtype=np.int64)
        scores = instances.scores.cpu().numpy() if instances.scores is not None else np.ones(n, dtype=np.float32)
        windows = box_masks.windows.cpu().numpy()
        crops = [(windows[i], box_masks.crops[i].cpu().numpy()) for i in range(n)]
        valid = np.array([c[1].any() for c in crops], dtype=bool).reshape(n)
        high = np.flatnonzero(valid & (scores >= self.high_thr))
        low = np.flatnonzero(valid & (scores >= self.low_thr) & (scores < self.high_thr))

        free_tracks = list(range(len(self.tracks)))
        for det_idx, min_iou in ((high, self.match_iou), (low, self.low_match_iou)):
            if det_idx.size == 0 or not free_tracks:
                continue
            iou = crop_mask_iou(
                [self.tracks[t].predicted_box() for t in free_tracks],
                [self.tracks[t].mask for t in free_tracks],
                [crops[d][0] for d in det_idx],
                [crops[d][1] for d in det_idx],
            )
            taken = set()
            for r, c in _assign(iou, min_iou):
                track, d = self.tracks[free_tracks[r]], int(det_idx[c])
                track.observe(*crops[d], float(scores[d]))
                ids[d] = track.track_id
                taken.add(free_tracks[r])
            free_tracks = [t for t in free_tracks if t not in taken]

        matched_now = set(range(len(self.tracks))) - set(free_tracks)
        steps = [self.tracks[t].velocity for t in matched_now if len(self.tracks[t].scores) > 1]
        scene_motion = np.median(np.stack(steps), axis=0) if steps else np.zeros(2)
        for t in free_tracks:
            self.tracks[t].missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_age]
        for d in high.tolist():
            if ids[d] == -1 and scores[d] >= self.new_track_thr:
                box, mask = crops[d]
                track = Track(self.next_id, box, mask, int(instances.labels[d]), [float(scores[d])])
                track.velocity = scene_motion.copy()  # a newborn moves as the scene does until it is seen again
                self.tracks.append(track)
                ids[d] = self.next_id
                self.next_id += 1
        return torch.from_numpy(ids)


def count_id_switches(true_ids: list[np.ndarray], pred_ids: list[np.ndarray]) -> int:
    """ID switches (CLEAR MOT): how often a true object is matched to a different track id than the last time.

    ``true_ids[f]`` and ``pred_ids[f]`` give, for frame ``f``, the true object id and the predicted track id of
    the same matched pairs (matching is the caller's: e.g. mask IoU >= 0.5); unmatched frames are skipped.
    """
    last: dict[int, int] = {}
    switches = 0
    for true_f, pred_f in zip(true_ids, pred_ids, strict=True):
        for t, p in zip(np.asarray(true_f).tolist(), np.asarray(pred_f).tolist(), strict=True):
            if t in last and last[t] != p:
                switches += 1
            last[t] = p
    return switches
