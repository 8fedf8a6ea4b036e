"""Batch prediction throughput: the single-process loop (``instseg predict``) vs Ray Data on a local instance.

Both predict the same dsb2018 images (the first N val images, default 64) with the shipped default model and
must give the same ``results.json``; the images/s of each, the Ray start-up time and whether the results agree
are printed. On a cluster, pass ``--ray-address auto`` (run on a node of it) and raise ``--concurrency``.

    python benchmarks/ray_predict.py --data DSB2018_DIR [--images 64] [--concurrency 2] [--ray-address ADDR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=2, help="Ray actors (one CPU each)")
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--ray-address", default=None, help="default: a local Ray instance")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the single process")
    args = parser.parse_args()

    import ray
    import torch

    import instseg
    from instseg.inference.predict_many import predict_many
    from instseg.inference.ray_batch import ray_predict

    gt = json.loads((args.data / "annotations" / "instances_val.json").read_text())
    names = sorted(im["file_name"] for im in gt["images"])[: args.images]
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    listing = work / "images.txt"
    listing.write_text("".join(f"{args.data / 'images' / n}\n" for n in names))

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    predictor = instseg.Predictor(instseg.load_model())
    jobs = [(i, args.data / "images" / n) for i, n in enumerate(names, start=1)]
    predict_many(predictor, jobs, work / "single", label_maps=False, overlays=False)
    single_s = time.perf_counter() - start

    start = time.perf_counter()
    ray.init(address=args.ray_address, log_to_driver=False, include_dashboard=False)
    ray_start_s = time.perf_counter() - start
    cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
    start = time.perf_counter()
    summary = ray_predict(
        [listing], work / "ray", shard_size=args.shard_size, concurrency=args.concurrency, progress=False
    )
    ray_s = time.perf_counter() - start
    ray.shutdown()

    same = json.loads((work / "single" / "results.json").read_text()) == json.loads(summary.results_path.read_text())
    n = len(names)
    print(f"{n} dsb2018 val images, shipped default model")
    print(f"  single process ({args.threads} thread(s)): {n / single_s:.2f} images/s ({single_s:.1f} s)")
    print(
        f"  Ray, {args.concurrency} actors x 1 CPU on {cluster_cpus} CPUs: {n / ray_s:.2f} images/s ({ray_s:.1f} s, "
        f"model loading in each actor included; ray.init {ray_start_s:.1f} s not included)"
    )
    print(f"  results identical: {same}; {summary.instances} instances, {summary.failed} failed images")


if __name__ == "__main__":
    main()
