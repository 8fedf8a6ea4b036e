"""Load test of ``instseg serve``: many concurrent clients posting real nuclei images to a loopback server.

Starts ``instseg serve`` (the shipped model unless ``--model``) as its own process on 127.0.0.1 and a free port,
runs ``--clients`` concurrent clients that together send ``--requests`` multipart uploads of dsb2018 images
(bounded by ``--max-seconds``), and prints throughput, latency percentiles of the answered requests, the 503s
(the intended refusals of a full queue; a refused client waits ``Retry-After`` and goes on), any other error,
and the server's resident memory over the run and at its peak. Then the same with ``--compare-batch``
(default: ``--max-batch 1``, no dynamic batching). Finally the RLE-vs-dense response size and encoding time
for the most crowded image of the set (dense: every mask as a full-frame 0/1 list, what a naive API returns).

    python benchmarks/serve_load.py --requests 2000 --clients 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    """dsb2018 in the shared data folder beside the repository (or under ``$INSTSEG_SHARED_DATA``)."""
    env = os.environ.get("INSTSEG_SHARED_DATA")
    return (Path(env) if env else ROOT.parent / "shared" / "data") / "dsb2018"


def pick_images(data: Path, max_side: int, count: int, seed: int) -> list[tuple[str, bytes]]:
    """Up to ``count`` (name, file bytes) of the data set's images whose long side is at most ``max_side``."""
    gt = json.loads((data / "annotations" / "instances_train.json").read_text())
    names = sorted(im["file_name"] for im in gt["images"] if max(im["height"], im["width"]) <= max_side)
    random.Random(seed).shuffle(names)
    return [(n, (data / "images" / n).read_bytes()) for n in names[:count]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of process ``pid`` in MiB (``VmHWM`` for its peak), from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args: argparse.Namespace, max_batch: int, log: Path | None) -> tuple[subprocess.Popen[bytes], str]:
    """``instseg serve`` in its own process (torch pinned to ``--threads``); returns it and its URL when ready."""
    port = free_port()
    cmd = [sys.executable, "-m", "instseg", "serve", *([args.model] if args.model else [])]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--max-batch", str(max_batch)]
    cmd += ["--batch-timeout-ms", str(args.batch_timeout_ms), "--queue-size", str(args.queue_size)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if log is None:
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    else:
        with open(log, "ab") as out:
            process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}); rerun with --log FILE to see why")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server was not ready after 180 s; rerun with --log FILE to see why")


async def load(url: str, images: list[tuple[str, bytes]], args: argparse.Namespace, pid: int) -> dict[str, Any]:
    """Run the clients; latencies of answered requests, status counts and RSS samples."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    rss: list[tuple[int, float]] = [(0, rss_mb(pid))]
    batch_sizes: list[int] = []
    issued = 0
    stop_at = time.monotonic() + args.max_seconds
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.max_seconds) as client:

        async def one_client(k: int) -> None:
            nonlocal issued
            rng = random.Random(k)
            while issued < args.requests and time.monotonic() < stop_at:
                issued += 1
                name, data = images[rng.randrange(len(images))]
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", files={"file": (name, data, "image/png")})
                    key = str(r.status_code)
                except httpx.HTTPError as err:
                    r, key = None, type(err).__name__
                statuses[key] = statuses.get(key, 0) + 1
                done = sum(statuses.values())
                if done % max(1, args.requests // 10) == 0:
                    rss.append((done, rss_mb(pid)))
                if r is not None and r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                    batch_sizes.append(int(r.json()["batch_size"]))
                elif r is not None and r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))

        start = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(args.clients)))
        wall = time.perf_counter() - start
    rss.append((sum(statuses.values()), rss_mb(pid)))
    return {"wall": wall, "latencies": latencies, "statuses": statuses, "rss": rss, "batch_sizes": batch_sizes}


def run_config(
    args: argparse.Namespace, images: list[tuple[str, bytes]], max_batch: int, log: Path | None
) -> dict[str, Any]:
    """One server, warmed up, under the full load; the figures of the run."""
    process, url = start_server(args, max_batch, log)
    try:
        for name, data in images[:3]:  # warm-up: first-call allocations are not part of the figures
            httpx.post(f"{url}/v1/predict", files={"file": (name, data, "image/png")}, timeout=120)
        result = asyncio.run(load(url, images, args, process.pid))
        result["peak_rss"] = rss_mb(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=30)
    lat = np.asarray(result["latencies"]) * 1000
    ok = int(result["statuses"].get("200", 0))
    errors = sum(v for k, v in result["statuses"].items() if k not in ("200", "503"))
    summary = {
        "max_batch": max_batch,
        "sent": sum(result["statuses"].values()),
        "ok": ok,
        "refused_503": int(result["statuses"].get("503", 0)),
        "errors": errors,
        "statuses": result["statuses"],
        "wall_s": round(result["wall"], 1),
        "throughput_rps": round(ok / result["wall"], 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if ok else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if ok else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if ok else None,
        "mean_batch": round(float(np.mean(result["batch_sizes"])), 2) if ok else None,
        "rss_mb": [(n, round(v, 1)) for n, v in result["rss"]],
        "peak_rss_mb": round(result["peak_rss"], 1),
    }
    print(json.dumps(summary), flush=True)
    return summary


def rle_vs_dense(data: Path) -> dict[str, Any]:
    """Response size and encoding time of the most crowded image: RLE / polygon / PNG against dense masks."""
    import instseg
    from instseg.data.image_io import read_image
    from instseg.serve.backend import PredictorBackend
    from instseg.serve.responses import encode_prediction

    gt = json.loads((data / "annotations" / "instances_train.json").read_text())
    counts: dict[int, int] = {}
    for ann in gt["annotations"]:
        counts[ann["image_id"]] = counts.get(ann["image_id"], 0) + 1
    crowded = max(gt["images"], key=lambda im: counts.get(im["id"], 0))
    backend = PredictorBackend(instseg.Predictor(instseg.load_model()))
    found = backend.predict_batch([read_image(data / "images" / crowded["file_name"])])[0]
    out: dict[str, Any] = {"image": f"{crowded['width']}x{crowded['height']}", "instances": len(found)}
    for fmt in ("rle", "polygon", "png"):
        start = time.perf_counter()
        body = json.dumps(encode_prediction(found, backend.class_names, None, fmt, None, 100_000))
        out[fmt] = {"bytes": len(body), "ms": round((time.perf_counter() - start) * 1000, 1)}
    start = time.perf_counter()
    masks = found.masks.numpy().astype(np.uint8)  # [N, H, W]
    body = json.dumps({"instances": [{"mask": m.tolist()} for m in masks]})
    out["dense"] = {"bytes": len(body), "ms": round((time.perf_counter() - start) * 1000, 1)}
    print(json.dumps({"rle_vs_dense": out}), flush=True)
    return out


def batch_gain(images: list[tuple[str, bytes]], batch: int, repeats: int = 5) -> dict[str, Any]:
    """Model time of ``batch`` same-size images as one batch against one by one, in this process (alternating
    runs, medians): what dynamic batching can buy at most, free of the load generator's noise."""
    import instseg
    from instseg.data.image_io import to_rgb_uint8
    from instseg.serve.backend import PredictorBackend
    from instseg.serve.decode import decode_image

    backend = PredictorBackend(instseg.Predictor(instseg.load_model()))
    arrays = [to_rgb_uint8(decode_image(data, name, 10**9)) for name, data in images]
    shape = arrays[0].shape
    group = [a for a in arrays if a.shape == shape][:batch]
    together, alone = [], []
    backend.predict_batch(group[:2])  # warm-up
    for _ in range(repeats):
        start = time.perf_counter()
        backend.predict_batch(group)
        together.append(time.perf_counter() - start)
        start = time.perf_counter()
        for a in group:
            backend.predict_batch([a])
        alone.append(time.perf_counter() - start)
    out = {
        "images": len(group),
        "size": f"{shape[1]}x{shape[0]}",
        "batched_ms_per_image": round(float(np.median(together)) / len(group) * 1000, 1),
        "alone_ms_per_image": round(float(np.median(alone)) / len(group) * 1000, 1),
    }
    print(json.dumps({"batch_gain": out}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="dsb2018 folder (images/ + annotations/).")
    parser.add_argument("--model", default=None, help="Checkpoint or .onnx file (default: the shipped model).")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="Stop issuing requests after this.")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--compare-batch", type=int, default=1, help="Second run's --max-batch (0: skip it).")
    parser.add_argument("--batch-timeout-ms", type=float, default=10.0)
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="Torch threads of the server (OMP_NUM_THREADS).")
    parser.add_argument("--max-side", type=int, default=320, help="Only images with a long side up to this.")
    parser.add_argument("--images", type=int, default=64, help="Distinct images the clients choose from.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures to this json file.")
    parser.add_argument("--log", type=Path, default=None, help="Append the servers' output to this file.")
    parser.add_argument("--skip-load", action="store_true", help="Only the in-process figures (batching, RLE).")
    parser.add_argument("--skip-inprocess", action="store_true", help="Only the load runs.")
    args = parser.parse_args()
    data = args.data or default_data()
    if not (data / "annotations").is_dir():
        parser.error(f"no dsb2018 data set at {data} (give --data)")
    images = pick_images(data, args.max_side, args.images, seed=0)
    log = args.log
    print(
        f"{len(images)} images (long side <= {args.max_side}), {args.clients} clients, {args.requests} requests",
        flush=True,
    )
    figures: dict[str, Any] = {"runs": []}
    if not args.skip_load:
        figures["runs"].append(run_config(args, images, args.max_batch, log))
        if args.compare_batch:
            figures["runs"].append(run_config(args, images, args.compare_batch, log))
    if not args.skip_inprocess:
        figures["batch_gain"] = batch_gain(images, args.max_batch)
        figures["rle_vs_dense"] = rle_vs_dense(data)
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
