"""Choose a star-convex model's post-processing thresholds on *training* images (never on the val split).

The network runs once per image; the polygon NMS then runs for every combination of probability threshold and
NMS IoU threshold, each scored with instseg's evaluator (F1@0.5 counting every returned object, COCO mask AP).
Prints the table, best first, and the ``--set`` overrides of the best combination.

    python benchmarks/tune_star_convex.py runs/star_convex/last.pt --data DSB2018_DIR --split train --images 40
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

import instseg
from instseg.data.image_io import read_image
from instseg.eval import evaluate_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--images", type=int, default=40, help="every k-th image so that this many are used")
    parser.add_argument("--prob", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    parser.add_argument("--nms", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    ann = args.data / "annotations" / f"instances_{args.split}.json"
    gt = json.loads(ann.read_text())
    step = max(1, len(gt["images"]) // args.images)
    chosen = sorted(gt["images"], key=lambda im: im["id"])[::step][: args.images]
    ids = {im["id"] for im in chosen}
    subset = {**gt, "images": chosen, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}

    model = instseg.load_model(args.checkpoint)
    post = model.postprocessor
    cached = []
    with torch.inference_mode():
        for im in chosen:
            pixels = read_image(args.data / "images" / im["file_name"])
            batch = model.preprocess([torch.from_numpy(pixels).permute(2, 0, 1)])
            cached.append((im["id"], post.original_maps(model(batch), 0, batch)))

    rows = []
    for prob, nms in itertools.product(args.prob, args.nms):
        post.prob_threshold, post.nms_threshold = prob, nms
        start = time.perf_counter()
        results = []
        for image_id, maps in cached:
            results.extend(post.group(maps).to_coco(image_id, [1]))
        seconds = (time.perf_counter() - start) / len(cached)
        m = evaluate_results(subset, results, max_dets=1000, score_thr=0.0)
        rows.append((m["match/F1@0.5"], m["segm/AP"], prob, nms, seconds))
    rows.sort(reverse=True)
    print(f"{len(chosen)} {args.split} images of {args.data.name}; F1@0.5 counts every returned object")
    print(f"{'F1@0.5':>8}{'segm/AP':>9}{'prob':>6}{'nms':>6}{'NMS s/img':>11}")
    for f1, ap, prob, nms, seconds in rows:
        print(f"{f1:>8.4f}{ap:>9.4f}{prob:>6.2f}{nms:>6.2f}{seconds:>11.3f}")
    f1, ap, prob, nms, _ = rows[0]
    print(f"best: --set model.kwargs.prob_threshold={prob} --set model.kwargs.nms_threshold={nms}")


if __name__ == "__main__":
    main()
