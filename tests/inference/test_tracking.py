"""ByteTrack-style mask tracking: known true tracks give no ID switch; births, deaths and low-score recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.draw import disk

from instseg.inference.tracking import MaskTracker, count_id_switches, crop_mask_iou
from instseg.structures import Instances

SIZE = (96, 128)


def frame_instances(centres: list[tuple[float, float]], scores: list[float], radius: int = 9) -> Instances:
    """Instances of discs at ``centres`` (y, x) with ``scores``, in the order given."""
    masks = np.zeros((len(centres), *SIZE), dtype=bool)
    for i, (cy, cx) in enumerate(centres):
        rr, cc = disk((cy, cx), radius, shape=SIZE)
        masks[i, rr, cc] = True
    return Instances(SIZE, masks=torch.from_numpy(masks), scores=torch.tensor(scores, dtype=torch.float32))


def lanes(frame: int) -> list[tuple[float, float]]:
    """Three discs in their own lanes, moving 3 px per frame (one of them right to left)."""
    return [(20.0, 15.0 + 3 * frame), (48.0, 110.0 - 3 * frame), (76.0, 30.0 + 2 * frame)]


def test_crop_mask_iou_equals_full_frame_iou() -> None:
    rng = np.random.default_rng(0)
    full_a = rng.random((3, *SIZE)) > 0.7
    full_b = rng.random((4, *SIZE)) > 0.7
    full_b[0] = full_a[1]
    box = np.array([0, 0, SIZE[1], SIZE[0]])
    iou = crop_mask_iou([box] * 3, list(full_a), [box] * 4, list(full_b))
    inter = (full_a[:, None] & full_b[None]).sum((2, 3))
    union = (full_a[:, None] | full_b[None]).sum((2, 3))
    np.testing.assert_allclose(iou, inter / union)
    assert iou[1, 0] == pytest.approx(1.0)


def test_shuffled_detections_keep_their_ids() -> None:
    tracker = MaskTracker()
    rng = np.random.default_rng(1)
    true_ids, pred_ids = [], []
    for f in range(25):
        order = rng.permutation(3)
        found = frame_instances([lanes(f)[i] for i in order], [0.9, 0.8, 0.95])
        ids = tracker.update(found).numpy()
        assert (ids > 0).all()
        true_ids.append(order)
        pred_ids.append(ids)
    assert count_id_switches(true_ids, pred_ids) == 0
    assert tracker.next_id == 4  # exactly three tracks were ever born


def test_low_score_detection_continues_its_track_but_starts_none() -> None:
    tracker = MaskTracker(high_thr=0.5, low_thr=0.1)
    first = tracker.update(frame_instances(lanes(0)[:2], [0.9, 0.9])).tolist()
    # object 0 is blurred (low score), a new low-score blob appears: the first continues, the second is dropped
    second = tracker.update(frame_instances([lanes(1)[0], lanes(1)[1], (80.0, 100.0)], [0.3, 0.9, 0.3])).tolist()
    assert second[:2] == first and second[2] == -1
    # below low_thr a detection is ignored even when it overlaps a track
    third = tracker.update(frame_instances([lanes(2)[0], lanes(2)[1]], [0.05, 0.9])).tolist()
    assert third == [-1, first[1]]


@pytest.mark.parametrize(("gap", "same_id"), [(3, True), (6, False)])
def test_track_survives_a_gap_up_to_max_age(gap: int, same_id: bool) -> None:
    tracker = MaskTracker(max_age=4)
    before = tracker.update(frame_instances([(40.0, 40.0)], [0.9])).tolist()
    for _ in range(gap):
        tracker.update(frame_instances([], []))
    after = tracker.update(frame_instances([(40.0, 41.0)], [0.9])).tolist()
    assert (after == before) is same_id
    assert after[0] > 0


def test_no_masks_is_refused() -> None:
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match="masks"):
        MaskTracker().update(Instances(SIZE, boxes=boxes, labels=torch.zeros(1, dtype=torch.long)))
    with pytest.raises(ValueError, match="low_thr"):
        MaskTracker(high_thr=0.2, low_thr=0.5)


def test_newborn_track_moves_with_the_scene() -> None:
    # a pan: every object moves 6 px per frame; a small disc (r=4) that appears at frame 3 overlaps its next
    # position by IoU 0.08 only, so it is matched only because a new track starts with the scene's motion
    tracker = MaskTracker()
    true_ids, pred_ids = [], []
    for f in range(10):
        centres = [(20.0, 10.0 + 6 * f), (48.0, 14.0 + 6 * f), (76.0, 8.0 + 6 * f)]
        radii = [6, 6, 6]
        if f >= 3:
            centres.append((60.0, 4.0 + 6 * f))
            radii.append(4)
        masks = np.zeros((len(centres), *SIZE), dtype=bool)
        for i, ((cy, cx), r) in enumerate(zip(centres, radii, strict=True)):
            rr, cc = disk((cy, cx), r, shape=SIZE)
            masks[i, rr, cc] = True
        found = Instances(SIZE, masks=torch.from_numpy(masks), scores=torch.full((len(centres),), 0.9))
        ids = tracker.update(found).numpy()
        true_ids.append(np.arange(len(centres)))
        pred_ids.append(ids)
    assert count_id_switches(true_ids, pred_ids) == 0
    assert tracker.next_id == 5
