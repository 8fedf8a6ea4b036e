"""Does test-time flipping lift a SpatialEmbeddings model? COCO mask AP and F1@0.5 with the maps averaged over flips.

An analysis of one lever of the default-model goal, not a feature: the model runs once per flip of the (normalised)
input, each output is flipped back (offsets negated along the flipped axis), offsets, bandwidths and seeds are
averaged, and the model's own clustering runs on the mean. ``--flips`` lists the flips as ``vh`` bit pairs
(``00`` none, ``01`` horizontal, ``10`` vertical, ``11`` both); ``00`` alone reproduces ``instseg eval``.

    python benchmarks/flip_tta.py default --data DSB2018_DIR --split val --flips 00 01 10 11
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

import instseg.engine.checkpoint as checkpoint_module
from instseg.engine.evaluate import evaluate_checkpoint
from instseg.methods.spatial_embedding.head import SpatialEmbeddingHead, pixel_coordinates
from instseg.methods.spatial_embedding.model import SpatialEmbeddingSegmenter
from instseg.structures import ImageBatch

KEYS = ("segm/AP", "segm/AP50", "segm/AP75", "match/precision@0.5", "match/recall@0.5", "match/F1@0.5", "match/PQ@0.5")


def flip_averaged_forward(model: SpatialEmbeddingSegmenter, flips: list[tuple[bool, bool]]) -> Any:
    """A ``forward`` for ``model`` whose maps are the mean over ``flips`` ((vertical, horizontal) pairs)."""
    head = model.head
    assert isinstance(head, SpatialEmbeddingHead)

    def forward(images: ImageBatch, targets: Any = None) -> dict[str, torch.Tensor]:
        x = model.network_input(images)
        total: list[torch.Tensor] | None = None
        for vertical, horizontal in flips:
            dims = [d for d, on in ((2, vertical), (3, horizontal)) if on]
            out = head(model.network(x.flip(dims) if dims else x))
            offsets = out["embedding"] - pixel_coordinates(out["embedding"], head.coord_scale)  # [B, 2, H, W]
            maps = [offsets, out["sigma"], out["seed"]]
            if dims:
                maps = [m.flip(dims) for m in maps]  # flip returns copies: the in-place negations below are safe
                for channel, on in ((0, vertical), (1, horizontal)):  # a flipped axis reverses its offsets
                    if on:
                        maps[0][:, channel].neg_()
            total = maps if total is None else [a + b for a, b in zip(total, maps, strict=True)]
        assert total is not None
        offsets, sigma, seed = (m / len(flips) for m in total)
        return {"embedding": pixel_coordinates(offsets, head.coord_scale) + offsets, "sigma": sigma, "seed": seed}

    return forward


def main() -> None:
    """Evaluate one checkpoint with its maps averaged over the given flips; print the figures as json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a SpatialEmbeddings checkpoint, or 'default' (the shipped model)")
    parser.add_argument("--data", required=True, help="COCO data set folder (annotations/, images/)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--flips", nargs="+", default=["00", "01", "10", "11"])
    args = parser.parse_args()
    flips = [(f[0] == "1", f[1] == "1") for f in args.flips]
    rebuild = checkpoint_module.model_from_state

    def with_flips(*a: Any, **k: Any) -> Any:
        model = rebuild(*a, **k)
        if not isinstance(model, SpatialEmbeddingSegmenter):
            raise SystemExit(f"{args.checkpoint}: {type(model).__name__} is not a SpatialEmbeddings model")
        model.forward = flip_averaged_forward(model, flips)  # type: ignore[method-assign]
        return model

    checkpoint_module.model_from_state = with_flips  # evaluate_checkpoint rebuilds through it
    path = checkpoint_module.default_weights_path() if args.checkpoint == "default" else args.checkpoint
    ann = f"{args.data}/annotations/instances_{args.split}.json"
    figures = evaluate_checkpoint(path, ann, max_dets=1000, batch_size=1)
    print(json.dumps({"flips": args.flips, **{k: round(figures[k], 4) for k in KEYS}}))


if __name__ == "__main__":
    main()
