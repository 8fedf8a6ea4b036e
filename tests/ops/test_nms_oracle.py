"""Matrix NMS against hand-computed chains (a suppressor that is itself overlapped) and a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg.ops.nms import matrix_nms


def _runs(*spans: tuple[int, int], width: int = 8) -> torch.Tensor:
    """1 x width masks (Tensor[N, 1, width]), mask k covering pixels spans[k][0] .. spans[k][1] - 1."""
    masks = torch.zeros(len(spans), 1, width, dtype=torch.bool)
    for k, (a, b) in enumerate(spans):
        masks[k, 0, a:b] = True
    return masks


# A = 0..3, B = 2..5, C = 3..6: IoU(A, B) = 2/6, IoU(B, C) = 3/5, IoU(A, C) = 1/7. B is itself overlapped by A, so
# C's decay by B is compensated by B's own overlap; C's strongest suppression comes from B, not from A.
CHAIN = _runs((0, 4), (2, 6), (3, 7))
IOU_AB, IOU_BC, IOU_AC = 1 / 3, 3 / 5, 1 / 7


def test_gaussian_compensation_by_hand() -> None:
    scores = torch.tensor([0.9, 0.8, 0.7])
    decayed = matrix_nms(CHAIN, torch.zeros(3, dtype=torch.int64), scores, kernel="gaussian", sigma=0.5)
    decay_b = math.exp(-(IOU_AB**2) / 0.5)
    decay_c_by_a = math.exp(-(IOU_AC**2) / 0.5)  # A has nothing above it: no compensation
    decay_c_by_b = math.exp(-(IOU_BC**2 - IOU_AB**2) / 0.5)  # compensated by how much A overlaps B
    assert decay_c_by_b < decay_c_by_a  # the compensated term is the one that decides
    expected = torch.tensor([0.9, 0.8 * decay_b, 0.7 * min(decay_c_by_a, decay_c_by_b)])
    torch.testing.assert_close(decayed, expected)


def test_linear_compensation_by_hand() -> None:
    masks = CHAIN[[2, 0, 1]]  # C, A, B: the input is not sorted by score
    scores = torch.tensor([0.7, 0.9, 0.8])
    decayed = matrix_nms(masks, torch.zeros(3, dtype=torch.int64), scores, kernel="linear")
    decay_b = 1 - IOU_AB
    decay_c = min(1 - IOU_AC, (1 - IOU_BC) / (1 - IOU_AB))  # = 0.6 through B, 6/7 through A
    torch.testing.assert_close(decayed, torch.tensor([0.7 * decay_c, 0.9, 0.8 * decay_b]))


def test_compensation_only_counts_the_same_class() -> None:
    # B is overlapped by A, but A is another class: B is not compensated, and C (B's class) is decayed fully by B
    labels = torch.tensor([1, 0, 0])
    scores = torch.tensor([0.9, 0.8, 0.7])
    decayed = matrix_nms(CHAIN, labels, scores, kernel="linear")
    torch.testing.assert_close(decayed, torch.tensor([0.9, 0.8, 0.7 * (1 - IOU_BC)]))


def _reference(masks: np.ndarray, labels: np.ndarray, scores: np.ndarray, kernel: str, sigma: float) -> np.ndarray:
    """Matrix NMS written from the paper one pair at a time: decay_j = min(1, min_i f(iou_ij) / f(comp_i))."""
    n = len(scores)
    flat = masks.reshape(n, -1).astype(bool)

    def iou(a: int, b: int) -> float:
        union = np.logical_or(flat[a], flat[b]).sum()
        return float(np.logical_and(flat[a], flat[b]).sum() / union) if union else 0.0

    def f(x: float) -> float:
        return math.exp(-(x**2) / sigma) if kernel == "gaussian" else 1.0 - x

    def above(j: int) -> list[int]:
        return [i for i in range(n) if scores[i] > scores[j] and labels[i] == labels[j]]

    out = np.empty(n)
    for j in range(n):
        decay = 1.0
        for i in above(j):
            compensation = max((iou(k, i) for k in above(i)), default=0.0)
            decay = min(decay, f(iou(i, j)) / max(f(compensation), 1e-6))
        out[j] = scores[j] * decay
    return out


@settings(max_examples=60, deadline=None, database=None)
@given(
    n=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1),
    kernel=st.sampled_from(["gaussian", "linear"]),
    sigma=st.sampled_from([0.5, 2.0]),
    classes=st.integers(1, 2),
)
def test_matches_brute_force_reference(n: int, seed: int, kernel: str, sigma: float, classes: int) -> None:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 6, 6), dtype=bool)
    for k in range(n):  # random rectangles on a small grid: many partial overlaps, chains included
        y0, x0 = rng.integers(0, 5, size=2)
        y1, x1 = y0 + rng.integers(1, 4), x0 + rng.integers(1, 4)
        masks[k, y0:y1, x0:x1] = True
    labels = rng.integers(0, classes, size=n)
    scores = (rng.permutation(n) + 1) / (n + 1) + rng.uniform(0, 0.01, size=n)  # distinct scores, random order
    decayed = matrix_nms(
        torch.from_numpy(masks), torch.from_numpy(labels), torch.from_numpy(scores), kernel=kernel, sigma=sigma
    )
    np.testing.assert_allclose(decayed.numpy(), _reference(masks, labels, scores, kernel, sigma), rtol=1e-5, atol=1e-6)
