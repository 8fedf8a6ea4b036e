"""Per-image percentile normalisation of model inputs."""

from __future__ import annotations

import pytest
import torch

from instseg.ops.intensity import percentile_normalize


def test_percentile_normalize_per_image_and_padding() -> None:
    x = torch.zeros(2, 3, 8, 8)
    x[0, :, :6, :5] = torch.linspace(10, 20, 90).view(3, 6, 5)
    x[1] = torch.linspace(0, 1000, 192).view(3, 8, 8)
    y = percentile_normalize(x, [(6, 5), (8, 8)], low=0.0, high=100.0)
    assert y[0, :, :6, :5].min() == pytest.approx(0.0) and y[0, :, :6, :5].max() == pytest.approx(1.0)
    assert (y[0, :, 6:] == 0).all() and (y[0, :, :, 5:] == 0).all()
    assert y[1].min() == pytest.approx(0.0) and y[1].max() == pytest.approx(1.0)
    # a flat image stays finite (gain bounded by eps)
    flat = percentile_normalize(torch.full((1, 3, 4, 4), 7.0), [(4, 4)])
    assert torch.isfinite(flat).all() and (flat == 0).all()
    with pytest.raises(ValueError, match="percentiles"):
        percentile_normalize(x, [(6, 5), (8, 8)], low=50, high=10)
