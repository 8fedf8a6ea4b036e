"""PyTorch latency of trained checkpoints at one post-processing score threshold, so that models are compared
with similar detection counts (what the network and post-processing cost, not how many masks a low default
threshold lets through): the 640 x 640 crop of ``export_speed.py``, one thread, median of 10 after a warm-up.

    python benchmarks/score_threshold_latency.py --data DSB2018_DIR --threshold 0.3 CKPT [CKPT ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from export_speed import nuclei_image

import instseg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    image, _ = nuclei_image(args.data)
    for checkpoint in args.checkpoints:
        model = instseg.load_model(checkpoint).eval()
        post = model.postprocessor
        getattr(post, "selector", post).score_threshold = args.threshold  # the FCOS models hold it in a selector
        with torch.inference_mode():
            found = model.predict(image)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                found = model.predict(image)
                times.append(time.perf_counter() - start)
        row = {"model": str(checkpoint), "score_threshold": args.threshold, "torch_ms": 1000 * statistics.median(times)}
        print(json.dumps({**row, "instances": len(found)}), flush=True)


if __name__ == "__main__":
    main()
