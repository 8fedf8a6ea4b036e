"""How many nuclei SOLOv2's grid assignment can learn at all: objects that own no grid cell (an analysis).

SOLOv2 assigns each object to the grid cells under its centre region on the levels whose scale range holds it;
objects are written largest first, so a smaller object takes a shared cell and the larger one may end up owning
none. An object that owns no cell is never a positive: it adds to the masks only as background, and a
prediction for it can come only from a neighbour's cell. This script counts, for a recipe's input size and grids,
the share of training objects that own no cell (the ceiling it puts on recall), with each image padded alone
(test time, ``--batch-size 1``) and padded inside shuffled training batches (the grid then covers the padded
batch, so cells are larger in image pixels).

    python benchmarks/solov2_assignment.py --data DSB2018_DIR --config configs/solov2_light_dsb2018.py
"""

from __future__ import annotations

import argparse
import math
import random

import torch

from instseg.data.coco import CocoDataset
from instseg.data.paths import resolve_annotations
from instseg.engine.checkpoint import build_model
from instseg.engine.config_io import load_config
from instseg.methods.solov2.loss import SOLOv2Loss, assign_grid_cells
from instseg.ops.resize import resized_shape
from instseg.structures import Instances


def padded(size: tuple[int, int], divisor: int) -> tuple[int, int]:
    """``size`` rounded up to a multiple of ``divisor`` (``ImageBatch.from_tensors``' padding)."""
    return (math.ceil(size[0] / divisor) * divisor, math.ceil(size[1] / divisor) * divisor)


def owned_counts(target: Instances, pad: tuple[int, int], criterion: SOLOv2Loss) -> tuple[int, int, int]:
    """``(objects, objects owning no cell, positive cells)`` of one resized target on a padded canvas."""
    _, gt_index = assign_grid_cells(target, pad, criterion.num_grids, criterion.scale_ranges, criterion.center_sampling)
    nonempty = int(target.masks.flatten(1).any(dim=1).sum()) if len(target) else 0
    owned = set(gt_index[gt_index >= 0].tolist())
    return nonempty, nonempty - len(owned), int((gt_index >= 0).sum())


def main() -> None:
    """Print the share of objects without a cell, alone and in shuffled batches, for one recipe."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dsb2018 folder (annotations/instances_{split}.json)")
    parser.add_argument("--config", required=True, help="a SOLOv2 recipe (its sizes, grids and batch size)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--grids", default=None, help="override the recipe's grids, e.g. 40,36,24,16,12")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = load_config(args.config)
    if args.grids:
        config.model.kwargs["num_grids"] = tuple(int(g) for g in args.grids.split(","))
    # the built model holds the builder's resolved sizes, grids, scale ranges and centre sampling
    model = build_model(config)
    criterion, divisor = model.criterion, model.size_divisibility
    min_size, max_size = model.min_size, model.max_size
    ann_file, images_dir = resolve_annotations(args.data, split=args.split)
    dataset = CocoDataset(ann_file, images_dir)
    targets = []
    for i in range(len(dataset)):
        target = dataset.load_target(i)
        targets.append(target.resized(resized_shape(*target.image_size, min_size, max_size)))

    alone = [owned_counts(t, padded(t.image_size, divisor), criterion) for t in targets]
    order = list(range(len(targets)))
    random.Random(args.seed).shuffle(order)
    batch = config.data.batch_size
    in_batch = []
    for start in range(0, len(order), batch):
        members = [targets[k] for k in order[start : start + batch]]
        pad = padded((max(t.image_size[0] for t in members), max(t.image_size[1] for t in members)), divisor)
        in_batch += [owned_counts(t, pad, criterion) for t in members]

    grids, ranges = tuple(criterion.num_grids), criterion.scale_ranges
    print(f"{args.config}: sizes min {min_size} / max {max_size}, grids {grids}, batch {batch}, {args.split} split")
    print(f"scale ranges: {[(round(lo, 1), round(hi, 1)) for lo, hi in ranges]}")
    for name, rows in (("padded alone (test time)", alone), (f"padded in batches of {batch} (training)", in_batch)):
        objects = sum(r[0] for r in rows)
        lost = sum(r[1] for r in rows)
        cells = sum(r[2] for r in rows)
        worst = max(r[1] / max(r[0], 1) for r in rows)
        print(
            f"{name}: {objects} objects, {lost} own no cell ({lost / objects:.1%}; worst image {worst:.1%}), "
            f"{cells / max(objects - lost, 1):.2f} positive cells per owning object"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
