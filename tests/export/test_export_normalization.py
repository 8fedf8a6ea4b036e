"""The export wrappers' traceable normalisation equals the models' own (``normalize`` + per-image percentiles)."""

from __future__ import annotations

import pytest
import torch

import instseg
from instseg.export import export_graph
from instseg.ops.intensity import percentile_normalize


@pytest.mark.parametrize("name", ["watershed_unet", "yolact_light_mobilenetv3"])
def test_graph_normalisation_matches_the_model(name: str) -> None:
    torch.manual_seed(0)
    model = instseg.create_model(name, num_classes=1, min_size=96, max_size=128)
    graph = export_graph(model)
    image = torch.rand(3, 70, 100) * 255
    batch = model.preprocess([image])
    assert batch.tensor.shape[-2:] != tuple(batch.image_sizes[0])  # padding present, so zeroing it is tested
    expected = model.normalize(batch)
    percentiles = getattr(model, "percentiles", None)
    if percentiles is not None:
        expected = percentile_normalize(expected, batch.image_sizes, *percentiles)
    h, w = batch.image_sizes[0]
    unpadded = batch.tensor[:, :, :h, :w]  # the graph's input: resized, not padded; it pads itself
    torch.testing.assert_close(graph.normalized(unpadded), expected, atol=1e-5, rtol=1e-5)
