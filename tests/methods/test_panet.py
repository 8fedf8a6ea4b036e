"""PANet's heads: the level fusion by max after a per-level first layer, and the fused mask branch."""

from __future__ import annotations

import torch

from instseg.methods.panet.head import AdaptiveBoxHead, FusedMaskHead


def test_box_head_fuses_the_levels_by_max_after_their_first_layer() -> None:
    torch.manual_seed(0)
    head = AdaptiveBoxHead(num_levels=3, in_channels=2, roi_size=3, dim=5)
    x = torch.randn(4, 6, 3, 3)
    levels = x.chunk(3, dim=1)
    first = torch.stack([fc(level.flatten(1)) for fc, level in zip(head.fc1, levels, strict=True)])
    expected = torch.relu(head.fc2(torch.relu(first.amax(0))))
    torch.testing.assert_close(head(x), expected)
    # a level whose first-layer output is below the others everywhere does not change the result
    with torch.no_grad():
        head.fc1[2].bias.fill_(-1e4)
    y = x.clone()
    y[:, 4:] = torch.randn(4, 2, 3, 3)
    torch.testing.assert_close(head(x), head(y))


def test_mask_head_adds_one_class_agnostic_map_to_every_class() -> None:
    torch.manual_seed(0)
    head = FusedMaskHead(num_levels=2, in_channels=4, num_classes=3, roi_size=5, channels=8, num_convs=4)
    x = torch.randn(2, 8, 5, 5)
    out = head(x)
    assert out.shape == (2, 4, 10, 10)
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.zero_()
    fcn_only = head(x)
    assert not torch.allclose(out, fcn_only)
    # the fully-connected branch shifts every class by the same map: differences between classes stay
    torch.testing.assert_close(out[:, 1:] - out[:, :1], fcn_only[:, 1:] - fcn_only[:, :1], atol=1e-5, rtol=1e-5)
