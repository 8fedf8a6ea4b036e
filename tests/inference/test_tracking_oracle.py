"""Mask tracking against hand-computed cases and brute force: crop IoU == full-frame IoU on random boxes, the
Hungarian step == the best permutation, every threshold at its exact boundary (high/low scores, match IoU, the
stricter low-score IoU, new-track score), birth ids, death after exactly ``max_age`` missed frames, the velocity
model, and ID-switch counting.

Rectangles make the IoUs exact: a 10 x 10 square against the same square moved right by ``d`` px has IoU
(10 - d) / (10 + d), e.g. d = 6 -> 0.25, d = 5 -> 1/3, d = 2 -> 2/3.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from instseg.inference.tracking import MaskTracker, Track, _assign, count_id_switches, crop_mask_iou
from instseg.structures import Instances

SIZE = (64, 96)


def rects(items: list[tuple[int, int, int, int]], scores: list[float] | None = None, labels: list[int] | None = None
          ) -> Instances:  # fmt: skip
    """Instances of rectangles (y0, y1, x0, x1) with ``scores``."""
    masks = torch.zeros((len(items), *SIZE), dtype=torch.bool)
    for i, (y0, y1, x0, x1) in enumerate(items):
        masks[i, y0:y1, x0:x1] = True
    return Instances(
        SIZE,
        masks=masks,
        scores=None if scores is None else torch.tensor(scores, dtype=torch.float32),
        labels=None if labels is None else torch.tensor(labels),
    )


def square(x: int, y: int = 10) -> tuple[int, int, int, int]:
    return (y, y + 10, x, x + 10)


@st.composite
def cropped_masks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A random box inside a 12 x 14 frame and a random crop for it."""
    x0, x1 = sorted(draw(st.lists(st.integers(0, 14), min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(st.integers(0, 12), min_size=2, max_size=2, unique=True)))
    crop = draw(arrays(np.bool_, (y1 - y0, x1 - x0)))
    return np.array([x0, y0, x1, y1]), crop


@settings(max_examples=150, deadline=None)
@given(a=st.lists(cropped_masks(), min_size=1, max_size=3), b=st.lists(cropped_masks(), min_size=1, max_size=3))
def test_crop_iou_equals_full_frame_iou(
    a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    def full(box: np.ndarray, crop: np.ndarray) -> np.ndarray:
        m = np.zeros((12, 14), dtype=bool)
        m[box[1] : box[3], box[0] : box[2]] = crop
        return m

    iou = crop_mask_iou([x[0] for x in a], [x[1] for x in a], [x[0] for x in b], [x[1] for x in b])
    assert iou.shape == (len(a), len(b))
    for i, j in itertools.product(range(len(a)), range(len(b))):
        fa, fb = full(*a[i]), full(*b[j])
        union = int((fa | fb).sum())
        expected = (fa & fb).sum() / union if union else 0.0
        assert iou[i, j] == pytest.approx(expected), (i, j)


@settings(max_examples=150, deadline=None)
@given(
    matrix=arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.9, 1.0]),
    ),
    min_iou=st.sampled_from([0.0, 0.25, 0.5, 0.6]),
)
def test_assignment_is_the_best_permutation_then_thresholded(matrix: np.ndarray, min_iou: float) -> None:
    rows, cols = matrix.shape
    k = min(rows, cols)
    best = max(
        sum(matrix[r, c] for r, c in zip(rs, cs, strict=True))
        for rs in itertools.permutations(range(rows), k)
        for cs in itertools.combinations(range(cols), k)
    )
    everything = _assign(matrix, 0.0)  # IoU >= 0 keeps every pair of the assignment
    assert len(everything) == k
    assert len({r for r, _ in everything}) == k and len({c for _, c in everything}) == k
    assert sum(matrix[r, c] for r, c in everything) == pytest.approx(best)
    assert _assign(matrix, min_iou) == [(r, c) for r, c in everything if matrix[r, c] >= min_iou]
    assert _assign(np.zeros((0, 3)), 0.5) == []


@pytest.mark.parametrize(("shift", "matched"), [(6, True), (7, False)])  # IoU 0.25 (== match_iou) and 0.176
def test_match_iou_boundary_is_inclusive(shift: int, matched: bool) -> None:
    tracker = MaskTracker(match_iou=0.25)
    assert tracker.update(rects([square(20)], [0.9])).tolist() == [1]
    ids = tracker.update(rects([square(20 + shift)], [0.9])).tolist()
    assert ids == ([1] if matched else [2])


@pytest.mark.parametrize(
    ("shift", "score", "expected"),
    [
        (5, 0.9, 1),  # IoU 1/3 >= match_iou 0.2: a confident detection continues the track
        (5, 0.3, -1),  # the same overlap at a low score is below low_match_iou 0.5: dropped
        (2, 0.3, 1),  # IoU 2/3 >= 0.5: a low-score detection continues the track
        (2, 0.1, 1),  # a score of exactly low_thr is a low-score detection
        (2, 0.0999, -1),  # below low_thr: ignored
        (2, 0.5, 1),  # a score of exactly high_thr is confident
    ],
)
def test_high_and_low_rounds(shift: int, score: float, expected: int) -> None:
    tracker = MaskTracker(high_thr=0.5, low_thr=0.1, match_iou=0.2, low_match_iou=0.5)
    tracker.update(rects([square(20)], [0.9]))
    assert tracker.update(rects([square(20 + shift)], [score])).tolist() == [expected]
    assert tracker.next_id == 2  # no new track: a low-score detection starts none, a matched one neither


def test_low_match_iou_boundary_is_inclusive() -> None:
    tracker = MaskTracker(low_match_iou=0.25)
    tracker.update(rects([square(20)], [0.9]))
    assert tracker.update(rects([square(26)], [0.3])).tolist() == [1]  # IoU exactly 0.25


def test_confident_round_goes_first() -> None:
    """A track overlapped by a confident detection (IoU 1/3) and a low-score one (IoU 1) takes the confident one."""
    tracker = MaskTracker()
    tracker.update(rects([square(20)], [0.9]))
    ids = tracker.update(rects([square(20), square(25)], [0.3, 0.9])).tolist()
    assert ids == [-1, 1]


def test_a_detection_continues_one_track_only() -> None:
    """A detection scoring exactly ``high_thr`` is confident only: once matched in the first round it is not offered
    to a second track in the low-score round."""
    tracker = MaskTracker(high_thr=0.5, low_thr=0.1, low_match_iou=0.5)
    assert tracker.update(rects([square(20), square(22)], [0.9, 0.9])).tolist() == [1, 2]  # overlapping objects
    ids = tracker.update(rects([square(21)], [0.5])).tolist()  # IoU 9/11 with both
    assert len(ids) == 1 and ids[0] in (1, 2)
    assert sorted(t.missed for t in tracker.tracks) == [0, 1]
    assert sorted(len(t.scores) for t in tracker.tracks) == [1, 2]


def test_births_get_consecutive_ids_and_new_track_thr() -> None:
    tracker = MaskTracker(high_thr=0.5, new_track_thr=0.8)
    # confident but below new_track_thr: starts no track; the others start tracks 1, 2 in detection order
    ids = tracker.update(rects([square(5), square(30), square(55), square(80, 40)], [0.85, 0.6, 0.8, 0.95],
                               labels=[2, 0, 1, 3])).tolist()  # fmt: skip
    assert ids == [1, -1, 2, 3]
    assert [t.label for t in tracker.tracks] == [2, 1, 3]
    assert [t.scores for t in tracker.tracks] == [[pytest.approx(0.85)], [pytest.approx(0.8)], [pytest.approx(0.95)]]
    # a detection between high_thr and new_track_thr continues a live track
    ids = tracker.update(rects([square(6), square(56)], [0.6, 0.6])).tolist()
    assert ids == [1, 2] and tracker.next_id == 4
    assert [len(t.scores) for t in tracker.tracks] == [2, 2, 1]


def test_default_thresholds_and_scores_none() -> None:
    tracker = MaskTracker()
    assert (tracker.high_thr, tracker.low_thr, tracker.new_track_thr) == (0.5, 0.1, 0.5)
    assert (tracker.match_iou, tracker.low_match_iou, tracker.max_age) == (0.2, 0.5, 30)
    # without scores every detection counts as confident (score 1): they start tracks
    assert tracker.update(rects([square(5), square(40)])).tolist() == [1, 2]
    # an empty mask can be matched to nothing and starts nothing
    found = rects([square(5), square(40), (0, 0, 0, 0)], [0.9, 0.9, 0.9])
    assert tracker.update(found).tolist() == [1, 2, -1] and tracker.next_id == 3


@pytest.mark.parametrize(("max_age", "gap", "same"), [(2, 2, True), (2, 3, False), (0, 0, True), (0, 1, False)])
def test_death_after_exactly_max_age_missed_frames(max_age: int, gap: int, same: bool) -> None:
    tracker = MaskTracker(max_age=max_age)
    assert tracker.update(rects([square(20)], [0.9])).tolist() == [1]
    for k in range(gap):
        tracker.update(rects([], []))
        assert [t.missed for t in tracker.tracks] == ([k + 1] if k + 1 <= max_age else [])
    ids = tracker.update(rects([square(20)], [0.9])).tolist()
    assert ids == ([1] if same else [2])  # a dead track's id is never reused
    assert len(tracker.tracks) == 1


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_age"):
        MaskTracker(max_age=-1)
    for low, high in [(0.6, 0.5), (-0.1, 0.5), (0.2, 1.1)]:
        with pytest.raises(ValueError, match="low_thr"):
            MaskTracker(high_thr=high, low_thr=low)
    MaskTracker(high_thr=0.3, low_thr=0.3)  # equal thresholds: no low-score round, allowed


def test_track_velocity_model() -> None:
    box = np.array([10, 20, 30, 40])
    mask = np.ones((20, 20), bool)
    track = Track(7, box, mask, label=1)
    assert track.velocity.tolist() == [0.0, 0.0] and not track.matched_once and track.missed == 0
    np.testing.assert_array_equal(track.predicted_box(), box)
    track.observe(box + np.array([4, -2, 4, -2]), mask, 0.8)  # the first step is the velocity as seen
    assert track.velocity.tolist() == [4.0, -2.0] and track.matched_once and track.scores == [0.8]
    track.missed = 2  # two frames unseen: the prediction moves three steps
    np.testing.assert_array_equal(track.predicted_box(), box + np.array([4 + 12, -2 - 6, 4 + 12, -2 - 6]))
    # seen again 3 frames later, 9 px further right and 3 px up: step (3, -1), averaged half and half
    track.observe(box + np.array([13, -5, 13, -5]), mask, 0.6)
    assert track.velocity.tolist() == [3.5, -1.5] and track.missed == 0 and track.scores == [0.8, 0.6]
    track.observe(box + np.array([13, -5, 13, -5]), mask, 0.6, smoothing=0.75)
    assert track.velocity.tolist() == [0.75 * 3.5, 0.75 * -1.5]
    np.testing.assert_array_equal(track.predicted_box(), box + np.array([16, -6, 16, -6]))  # rint(2.625) = 3


def test_matching_follows_the_predicted_position() -> None:
    """A square moving 8 px per frame overlaps its next position by IoU 1/9 only: below match_iou, so it stays one
    track only because the tracker predicts where it goes (also across a missed frame)."""
    tracker = MaskTracker()
    assert tracker.update(rects([square(0)], [0.9])).tolist() == [1]
    assert tracker.update(rects([square(8)], [0.9])).tolist() == [2]  # no velocity yet: a new track
    tracker = MaskTracker()
    tracker.update(rects([square(0), square(0, 40)], [0.9, 0.9]))
    tracker.update(rects([square(3), square(3, 40)], [0.9, 0.9]))  # both seen to move 3 px
    assert [t.velocity.tolist() for t in tracker.tracks] == [[3.0, 0.0], [3.0, 0.0]]
    tracker.update(rects([square(6, 40)], [0.9]))  # the first is missed once
    assert tracker.update(rects([square(12), square(9, 40)], [0.9, 0.9])).tolist() == [1, 2]


def test_newborn_moves_with_the_median_scene_motion() -> None:
    tracker = MaskTracker()
    tracker.update(rects([square(0, 0), square(0, 20), square(0, 40)], [0.9] * 3))
    assert [t.velocity.tolist() for t in tracker.tracks] == [[0.0, 0.0]] * 3  # born in a still scene
    tracker.update(rects([square(1, 0), square(2, 20), square(6, 40)], [0.9] * 3))  # steps 1, 2, 6
    # a detection born now starts with the median step of the tracks matched now (2), not their mean (3)
    ids = tracker.update(rects([square(2, 0), square(4, 20), square(12, 40), square(60, 50)], [0.9] * 4)).tolist()
    assert ids == [1, 2, 3, 4]
    newborn = tracker.tracks[-1]
    assert newborn.track_id == 4 and newborn.velocity.tolist() == [2.0, 0.0] and not newborn.matched_once
    # its first match then takes the step it is seen to make (not averaged with the scene's)
    tracker.update(rects([square(3, 0), square(6, 20), square(18, 40), square(65, 50)], [0.9] * 4))
    assert tracker.tracks[-1].velocity.tolist() == [5.0, 0.0]


def test_count_id_switches_by_hand() -> None:
    true_ids = [np.array([1, 2]), np.array([1, 2]), np.array([2]), np.array([1, 2]), np.array([1])]
    pred_ids = [np.array([5, 6]), np.array([6, 5]), np.array([5]), np.array([6, 9]), np.array([6])]
    # frame 1: both swap (2); frame 2: object 2 keeps 5; frame 3: object 1 keeps 6, object 2 -> 9 (1); frame 4: 0
    assert count_id_switches(true_ids, pred_ids) == 3
    assert count_id_switches([], []) == 0
    with pytest.raises(ValueError):
        count_id_switches([np.array([1])], [])
