"""Polar rays against small hand-computed cases: a square, a disc, a one-pixel object, objects touching the border
or each other; polygons back to masks; polar IoU and centre-ness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from instseg.ops.polar_rays import (
    polar_centerness,
    polar_iou,
    polar_iou_loss,
    polygon_masks,
    polygon_vertices,
    rasterize_polygon,
    ray_angles,
    ray_directions,
    ray_distances,
)


def _square(size: int = 9, lo: int = 2, hi: int = 7) -> torch.Tensor:
    label_map = torch.zeros(size, size, dtype=torch.int64)
    label_map[lo:hi, lo:hi] = 1
    return label_map


def test_angles_and_directions() -> None:
    angles = ray_angles(4)
    assert torch.allclose(angles, torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64) * math.pi)
    directions = ray_directions(4)  # (dy, dx): right, down, left, up
    assert torch.allclose(
        directions, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]], dtype=torch.float64), atol=1e-12
    )
    with pytest.raises(ValueError, match="3 rays"):
        ray_angles(2)


def test_square_centre_reaches_the_outer_pixel_edges() -> None:
    # 5 x 5 square, rows/columns 2..6, centre pixel (4, 4): its outer edges are 2.5 away along the axes and the
    # corners (1.5, 1.5) etc. 2.5 * sqrt(2) away along the diagonals; ray k at angle a meets the side 2.5 / cos
    d = ray_distances(_square(), 32)[:, 4, 4]
    angles = ray_angles(32)
    expected = 2.5 / torch.maximum(angles.cos().abs(), angles.sin().abs())
    assert torch.allclose(d.double(), expected, atol=1e-5)
    assert d[0] == 2.5 and d[8] == 2.5 and abs(float(d[4]) - 2.5 * math.sqrt(2)) < 1e-5


def test_square_off_centre_pixel() -> None:
    d = ray_distances(_square(), 8)[:, 2, 3]  # top row, second column
    # right: to x = 6.5 (3.5); down: to y = 6.5 (4.5); left: to x = 1.5 (1.5); up: to y = 1.5 (0.5)
    assert d[0::2].tolist() == [3.5, 4.5, 1.5, 0.5]
    # diagonals: down-right ends at the bottom edge (4.5 rows before 3.5 columns? no: columns run out first)
    assert abs(float(d[1]) - 3.5 * math.sqrt(2)) < 1e-5  # (2, 3) -> (5.5, 6.5): leaves at x = 6.5
    assert abs(float(d[3]) - 1.5 * math.sqrt(2)) < 1e-5  # down-left: leaves at x = 1.5
    assert abs(float(d[7]) - 0.5 * math.sqrt(2)) < 1e-5  # up-right: leaves at y = 1.5


def test_disc_of_radius_three() -> None:
    yy, xx = np.mgrid[:15, :15]
    disc = torch.from_numpy((((yy - 7) ** 2 + (xx - 7) ** 2) <= 9).astype(np.int64))
    d = ray_distances(disc, 8)[:, 7, 7]
    # along the axes the pixels 1..3 away are inside, the 4th is not: 3.5; along the diagonals (2, 2) is inside
    # (8 <= 9) and (3, 3) is not, and the ray enters it through the corner at 2.5 * sqrt(2)
    assert d[0::2].tolist() == [3.5, 3.5, 3.5, 3.5]
    assert torch.allclose(d[1::2].double(), torch.full((4,), 2.5 * math.sqrt(2), dtype=torch.float64), atol=1e-5)
    assert (ray_distances(disc, 8)[:, disc == 0] == 0).all()  # background pixels get no rays


def test_one_pixel_object() -> None:
    label_map = torch.zeros(5, 5, dtype=torch.int32)
    label_map[2, 2] = 7
    d = ray_distances(label_map, 32)[:, 2, 2]
    angles = ray_angles(32)
    expected = 0.5 / torch.maximum(angles.cos().abs(), angles.sin().abs())
    assert torch.allclose(d.double(), expected, atol=1e-6)
    assert ray_distances(label_map, 32).count_nonzero() == 32


def test_object_touching_the_border_ends_at_the_image_edge() -> None:
    label_map = torch.zeros(6, 6, dtype=torch.int64)
    label_map[:, :3] = 1  # the left half, touching three borders
    d = ray_distances(label_map, 4)
    assert d[:, 0, 0].tolist() == [2.5, 5.5, 0.5, 0.5]  # right, down, left (image edge), up (image edge)
    assert d[:, 5, 2].tolist() == [0.5, 0.5, 2.5, 5.5]


def test_touching_objects_end_at_each_other() -> None:
    label_map = torch.zeros(3, 6, dtype=torch.int64)
    label_map[:, :3], label_map[:, 3:] = 1, 2
    d = ray_distances(label_map, 4)
    assert d[0, 1, 2] == 0.5 and d[2, 1, 3] == 0.5  # right of object 1, left of object 2: their shared edge
    assert d[0, 1, 0] == 2.5 and d[2, 1, 5] == 2.5


def test_stride_samples_the_full_map() -> None:
    rng = np.random.default_rng(0)
    label_map = torch.from_numpy(rng.integers(0, 4, (13, 11)))
    full = ray_distances(label_map, 16)
    assert torch.equal(ray_distances(label_map, 16, stride=3), full[:, ::3, ::3])
    with pytest.raises(ValueError, match="stride"):
        ray_distances(label_map, 16, stride=0)


def test_bad_label_maps_raise() -> None:
    with pytest.raises(TypeError, match="integer"):
        ray_distances(torch.zeros(4, 4), 8)
    with pytest.raises(TypeError, match="2-D"):
        ray_distances(torch.zeros(1, 4, 4, dtype=torch.int64), 8)


def test_polygon_vertices() -> None:
    v = polygon_vertices(torch.tensor([[4.0, 5.0]]), torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert torch.allclose(v[0], torch.tensor([[4.0, 6.0], [6.0, 5.0], [4.0, 2.0], [0.0, 5.0]]), atol=1e-6)


def test_square_polygon_rasterises_back_to_the_square() -> None:
    label_map = _square()
    d = ray_distances(label_map, 32)[:, 4, 4]
    masks = polygon_masks(torch.tensor([[4.0, 4.0]]), d[None], (9, 9))
    assert torch.equal(masks[0], label_map > 0)


def test_one_pixel_polygon_rasterises_to_its_pixel() -> None:
    label_map = torch.zeros(5, 5, dtype=torch.int64)
    label_map[0, 4] = 1  # a corner pixel
    d = ray_distances(label_map, 32)[:, 0, 4]
    window, crop = rasterize_polygon(polygon_vertices(torch.tensor([[0.0, 4.0]]), d[None].double())[0].numpy(), (5, 5))
    assert window == (4, 0, 5, 1) and crop.tolist() == [[True]]


def test_disc_polygon_is_close_to_the_disc() -> None:
    yy, xx = np.mgrid[:41, :41]
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2) <= 12**2
    d = ray_distances(torch.from_numpy(disc.astype(np.int64)), 32)[:, 20, 20]
    mask = polygon_masks(torch.tensor([[20.0, 20.0]]), d[None], (41, 41))[0].numpy()
    iou = (mask & disc).sum() / (mask | disc).sum()
    assert iou > 0.95
    # its vertices lie on the pixels' outer edges, so chords across the staircase may take in a few pixels only
    assert (mask & ~disc).sum() <= 0.02 * disc.sum()


def test_empty_polygon_has_an_empty_window() -> None:
    window, crop = rasterize_polygon(np.array([[2.2, 2.2], [2.3, 2.2], [2.3, 2.3]]), (5, 5))
    assert window == (0, 0, 0, 0) and crop.shape == (0, 0)


def test_polar_iou_and_loss() -> None:
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    target = torch.tensor([[2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]])
    iou = polar_iou(pred, target)
    # sum(min) = 1 + 2 + 2 + 2 = 7, sum(max) = 2 + 2 + 3 + 4 = 11
    assert torch.allclose(iou, torch.tensor([7.0 / 11.0, 1.0]))
    assert torch.allclose(polar_iou_loss(pred, target), torch.tensor([math.log(11.0 / 7.0), 0.0]))
    with pytest.raises(ValueError, match="same shape"):
        polar_iou(pred, target[:, :3])


def test_polar_centerness() -> None:
    c = polar_centerness(torch.tensor([[2.0, 2.0, 2.0], [1.0, 4.0, 2.0], [0.0, 3.0, 3.0]]))
    assert torch.allclose(c, torch.tensor([1.0, 0.5, 0.0]))


def test_rasterisation_equals_scikit_image() -> None:
    from skimage.draw import polygon as draw_polygon

    rng = np.random.default_rng(0)
    directions = ray_directions(32).numpy()
    shape = (40, 50)
    for trial in range(60):
        centre = rng.uniform(-5, 55, 2)  # some polygons stick out of the image
        rays = rng.uniform(0.2, 15, 32) if trial % 3 else np.full(32, rng.integers(1, 8) + 0.5)
        vertices = centre[None] + rays[:, None] * directions
        on_grid = trial % 5 == 0
        if on_grid:
            vertices = np.round(vertices)  # vertices and edges through pixel centres
        expected = np.zeros(shape, bool)
        rr, cc = draw_polygon(vertices[:, 0], vertices[:, 1], shape)
        expected[rr, cc] = True
        (x0, y0, x1, y1), crop = rasterize_polygon(vertices, shape)
        got = np.zeros(shape, bool)
        got[y0:y1, x0:x1] = crop
        if on_grid:  # scikit-image also counts centres on an edge; the half-open rule keeps only some of them
            assert not (got & ~expected).any(), trial
        else:
            assert np.array_equal(got, expected), trial
        if crop.size:
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()  # tight window


def test_batched_rasterisation_equals_one_by_one() -> None:
    from instseg.ops.polar_rays import rasterize_polygons

    rng = np.random.default_rng(1)
    directions = ray_directions(16).numpy()
    shape = (30, 40)
    centres = rng.uniform(-5, 45, (25, 2))
    vertices = centres[:, None, :] + rng.uniform(0.1, 12, (25, 16))[:, :, None] * directions[None]
    windows, masks = rasterize_polygons(vertices, shape)
    for i in range(25):
        one = np.zeros(shape, bool)
        (x0, y0, x1, y1), crop = rasterize_polygon(vertices[i], shape)
        one[y0:y1, x0:x1] = crop
        many = np.zeros(shape, bool)
        a, b, c, d = windows[i]
        many[b:d, a:c] = masks[i, : d - b, : c - a]
        assert np.array_equal(one, many), i
        assert not masks[i, d - b :].any() and not masks[i, :, c - a :].any()
    assert rasterize_polygons(np.zeros((0, 16, 2)), shape)[1].shape[0] == 0
