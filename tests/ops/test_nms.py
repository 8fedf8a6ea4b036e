"""Matrix NMS and Fast NMS against small cases computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import nms

from instseg.ops.nms import fast_nms, mask_iou_matrix, matrix_nms


def _masks() -> torch.Tensor:
    """Three 1x4 masks: A covers all 4 pixels, B the first 2 (IoU(A,B)=0.5), C the third (IoU(A,C)=0.25, (B,C)=0)."""
    a = [1, 1, 1, 1]
    b = [1, 1, 0, 0]
    c = [0, 0, 1, 0]
    return torch.tensor([[a], [b], [c]], dtype=torch.bool)


def test_mask_iou_matrix() -> None:
    iou = mask_iou_matrix(_masks())
    expected = torch.tensor([[1.0, 0.5, 0.25], [0.5, 1.0, 0.0], [0.25, 0.0, 1.0]])
    torch.testing.assert_close(iou, expected)
    assert mask_iou_matrix(torch.zeros(2, 3, 3, dtype=torch.bool)).eq(0).all()  # empty masks: no NaN


def test_matrix_nms_gaussian_by_hand() -> None:
    scores = torch.tensor([0.9, 0.8, 0.7])
    decayed = matrix_nms(_masks(), torch.zeros(3, dtype=torch.int64), scores, kernel="gaussian", sigma=0.5)
    # A: nothing above it. B: exp(-(0.5^2 - 0^2) / 0.5). C: min over A (exp(-(0.25^2 - 0) / 0.5)) and
    # B (iou 0, compensated by B's own 0.5: exp(+0.5) > 1), so A's term wins.
    expected = torch.tensor([0.9, 0.8 * math.exp(-0.5), 0.7 * math.exp(-0.125)])
    torch.testing.assert_close(decayed, expected)


def test_matrix_nms_linear_by_hand() -> None:
    scores = torch.tensor([0.9, 0.8, 0.7])
    decayed = matrix_nms(_masks(), torch.zeros(3, dtype=torch.int64), scores, kernel="linear")
    # B: (1 - 0.5) / (1 - 0) = 0.5. C: min((1 - 0.25) / 1, (1 - 0) / (1 - 0.5)) = 0.75.
    torch.testing.assert_close(decayed, torch.tensor([0.9, 0.4, 0.525]))


def test_matrix_nms_keeps_input_order_and_classes_apart() -> None:
    masks = _masks()[[2, 0, 1]]  # C, A, B: not sorted by score
    scores = torch.tensor([0.7, 0.9, 0.8])
    labels = torch.tensor([1, 0, 0])  # C is another class: A cannot decay it
    decayed = matrix_nms(masks, labels, scores, kernel="linear")
    torch.testing.assert_close(decayed, torch.tensor([0.7, 0.9, 0.4]))


def test_matrix_nms_empty_and_bad_kernel() -> None:
    empty = matrix_nms(torch.zeros(0, 4, 4, dtype=torch.bool), torch.zeros(0, dtype=torch.int64), torch.zeros(0))
    assert empty.shape == (0,)
    with pytest.raises(ValueError, match="kernel"):
        matrix_nms(_masks(), torch.zeros(3, dtype=torch.int64), torch.ones(3), kernel="box")


def test_fast_nms_by_hand() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 5], [0, 5, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    labels = torch.zeros(4, dtype=torch.int64)
    scores = torch.tensor([0.6, 0.8, 0.7, 0.9])
    # IoU(A, B) = IoU(A, C) = 0.5, IoU(B, C) = 0, D is apart; order by score: D, B, C, A
    assert fast_nms(boxes, labels, scores, 0.5).tolist() == [3, 1, 2, 0]  # 0.5 is not above the threshold
    assert fast_nms(boxes, labels, scores, 0.4).tolist() == [3, 1, 2]  # A is overlapped by B (and C)
    assert fast_nms(boxes, torch.tensor([1, 0, 0, 0]), scores, 0.4).tolist() == [3, 1, 2, 0]  # A: other class


def test_fast_nms_suppressed_boxes_still_suppress() -> None:
    # A-B IoU 70/130 = 0.54, B-C 0.54, A-C 40/160 = 0.25: greedy NMS keeps A and C, Fast NMS only A
    boxes = torch.tensor([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert fast_nms(boxes, torch.zeros(3, dtype=torch.int64), scores, 0.5).tolist() == [0]
    assert fast_nms(boxes[:0], torch.zeros(0, dtype=torch.int64), scores[:0]).shape == (0,)
