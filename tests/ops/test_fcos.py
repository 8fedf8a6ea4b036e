"""FCOS geometry against hand-computed cases: points, side distances, centre-ness, assignment."""

from __future__ import annotations

import math

import torch

from instseg.ops.fcos import assign_points, box_centerness, decode_ltrb, level_points, ltrb_targets


def test_points_are_cell_centres_level_by_level_row_major() -> None:
    points, levels = level_points([(2, 3), (1, 2)], [8, 16])
    expected = [(4, 4), (12, 4), (20, 4), (4, 12), (12, 12), (20, 12), (8, 8), (24, 8)]
    assert points.tolist() == [list(map(float, p)) for p in expected]
    assert levels.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]


def test_side_distances_round_trip_and_centreness_by_hand() -> None:
    points = torch.tensor([[10.0, 20.0], [4.0, 4.0]])
    boxes = torch.tensor([[0.0, 10.0, 40.0, 30.0], [0.0, 0.0, 8.0, 8.0]])
    ltrb = ltrb_targets(points, boxes)
    assert ltrb.tolist() == [[10.0, 10.0, 30.0, 10.0], [4.0, 4.0, 4.0, 4.0]]
    assert torch.equal(decode_ltrb(points, ltrb), boxes)
    # (10 / 30) * (10 / 10) under the root; the centre of a box gets 1
    assert torch.allclose(box_centerness(ltrb), torch.tensor([math.sqrt(1 / 3), 1.0]))


def test_assignment_centre_sampling_size_ranges_and_smallest_box() -> None:
    points, levels = level_points([(4, 4), (2, 2)], [8, 16])  # level 0 centres 4, 12, 20, 28
    ranges = [(0.0, 12.0), (12.0, float("inf"))]
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [0.0, 0.0, 32.0, 32.0], [2.0, 2.0, 14.0, 14.0]])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    matched = assign_points(points, levels, [8, 16], ranges, boxes, centres, radius=1.0)
    # level 0: box 2 (12 px, smallest) owns the four points inside it (largest side distance 10 <= 12)
    assert [int(matched[i]) for i in (0, 1, 4, 5)] == [2, 2, 2, 2]
    # level 1: box 1's centre region (16 +- 16) holds all four points and their largest side distances (24) are
    # in its range; box 0 (largest distance 12 at most) is too small for level 1
    assert matched[16:].tolist() == [1, 1, 1, 1]
    # box 0 lost its four level-0 points to the smaller box 2 and the four nearest cells are all taken: untrained
    assert int((matched == 0).sum()) == 0


def test_an_object_smaller_than_a_cell_takes_the_nearest_free_point() -> None:
    points, levels = level_points([(4, 4), (2, 2)], [8, 16])
    boxes = torch.tensor([[13.0, 5.0, 15.0, 7.0]])  # 2 px, between the centres (12, 4) and (12, 12)
    matched = assign_points(points, levels, [8, 16], [(0.0, 64.0), (64.0, 1e9)], boxes, torch.tensor([[14.0, 6.0]]))
    assert torch.nonzero(matched == 0).squeeze(1).tolist() == [1]  # the point (12, 4): nearest to (14, 6)


def test_assignment_respects_the_inside_condition_and_empty_targets() -> None:
    points, levels = level_points([(2, 2)], [8])
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    inside = torch.tensor([[True], [False], [False], [False]])
    matched = assign_points(points, levels, [8], [(0.0, 64.0)], boxes, torch.tensor([[8.0, 8.0]]), 2.0, inside)
    assert matched.tolist() == [0, -1, -1, -1]
    none = assign_points(points, levels, [8], [(0.0, 64.0)], boxes[:0], torch.zeros(0, 2))
    assert none.tolist() == [-1, -1, -1, -1]
