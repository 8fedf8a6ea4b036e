"""Where a nucleus model fails: COCO mask AP and F1@0.5 per image type of dsb2018 (an analysis, not a tuning step).

dsb2018 mixes three kinds of microscopy, told apart by the data set's own split rule (its README;
``instseg.data.appearance``): ``color`` (non-grey RGB: H&E tissue and colour brightfield), ``gray_bright`` (grey
with a mean above 100: brightfield) and ``gray_dark`` (grey on a dark background: fluorescence). Each checkpoint
(or ``default``, the shipped model) runs once over the split through ``model.predict`` (what ``instseg predict``
runs); the results are then scored per type with instseg's evaluator (max-dets 1000, matching at score >=
``--score-thr``, as ``instseg eval``).

    python benchmarks/per_modality.py default runs/new/last.pt --data DSB2018_DIR --split val
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import instseg
from instseg.data.appearance import APPEARANCES, image_appearance
from instseg.data.image_io import read_image
from instseg.eval import evaluate_results


def predict_split(checkpoint: str, gt: dict[str, Any], images: Path) -> list[dict[str, Any]]:
    """COCO results of ``checkpoint`` on every image of ``gt``."""
    model: Any = instseg.load_model(None if checkpoint == "default" else checkpoint)
    results: list[dict[str, Any]] = []
    with torch.inference_mode():
        for im in gt["images"]:
            instances = model.predict(read_image(images / im["file_name"]))
            results.extend(instances.to_coco(im["id"], [c["id"] for c in gt["categories"]]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files, or 'default' for the shipped model")
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--score-thr", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    gt = json.loads((args.data / "annotations" / f"instances_{args.split}.json").read_text())
    types = {im["id"]: image_appearance(read_image(args.data / "images" / im["file_name"])) for im in gt["images"]}
    subsets = {}
    for kind in (*APPEARANCES, "all"):
        ids = {i for i, t in types.items() if kind in (t, "all")}
        subsets[kind] = {
            **gt,
            "images": [im for im in gt["images"] if im["id"] in ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in ids],
        }
    print(f"dsb2018 {args.split}: max-dets 1000, matching at score >= {args.score_thr:g}")
    print("| model | type | images | nuclei | segm/AP | AP50 | P / R @0.5 | F1@0.5 |")
    print("|---|---|---|---|---|---|---|---|")
    for checkpoint in args.checkpoints:
        results = predict_split(checkpoint, gt, args.data / "images")
        for kind, subset in subsets.items():
            ids = {im["id"] for im in subset["images"]}
            mine = [r for r in results if r["image_id"] in ids]
            m = evaluate_results(subset, mine, max_dets=1000, score_thr=args.score_thr)
            print(
                f"| {checkpoint} | {kind} | {len(ids)} | {len(subset['annotations'])} | {m['segm/AP']:.3f} | "
                f"{m['segm/AP50']:.3f} | {m['match/precision@0.5']:.3f} / {m['match/recall@0.5']:.3f} | "
                f"{m['match/F1@0.5']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
