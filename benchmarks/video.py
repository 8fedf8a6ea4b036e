"""Video prediction with tracking: fps and ID switches on a camera pan over a real dsb2018 image.

A window of ``--window`` px pans diagonally over a 1024 x 1024 dsb2018 val image, ``--step`` px per frame, and is
encoded to H.264 (PyAV). Every nucleus is a true track: its annotated mask moves with the pan. The clip is then
predicted by ``instseg.inference.video.predict_video`` with the shipped default model, once per ``--every``; each
true object visible (>= 30 px) in a processed frame is matched to the predicted object of highest mask IoU
(>= 0.5), and the ID switches (CLEAR MOT: a true object matched to a different track id than the last time),
matched share, tracks and fps are printed.

    python benchmarks/video.py --data DSB2018_DIR [--frames 60] [--every 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--window", type=int, default=384)
    parser.add_argument("--step", type=int, default=6)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import av
    import torch

    import instseg
    from instseg.data.image_io import read_image
    from instseg.inference.tracking import count_id_switches
    from instseg.inference.video import predict_video
    from instseg.structures.masks import rle_to_mask, segmentation_to_mask

    torch.set_num_threads(args.threads)
    gt = json.loads((args.data / "annotations" / "instances_val.json").read_text())
    image_info = max((im for im in gt["images"] if im["width"] == im["height"] == 1024), key=lambda im: im["id"])
    anns = [a for a in gt["annotations"] if a["image_id"] == image_info["id"]]
    image = read_image(args.data / "images" / image_info["file_name"])
    h, w = image.shape[:2]
    true_masks = np.stack([segmentation_to_mask(a["segmentation"], h, w) for a in anns])  # [K, H, W]
    size, step = args.window, args.step
    if (args.frames - 1) * step + size > min(h, w):
        raise SystemExit(f"{args.frames} frames of {step} px do not fit a {size} px window in {w}x{h}")

    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    clip = work / "pan.mp4"
    with av.open(str(clip), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for f in range(args.frames):
            frame = np.ascontiguousarray(image[f * step : f * step + size, f * step : f * step + size])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    predictor = instseg.Predictor(instseg.load_model())
    print(f"{args.frames}-frame {size}x{size} pan ({step} px/frame) over dsb2018 val image {image_info['id']}")
    print(f"({len(anns)} annotated nuclei), shipped default model, {args.threads} threads")
    for every in args.every:
        out = work / f"every{every}"
        summary = predict_video(predictor, clip, out, every=every, progress=False, overwrite=True)
        true_ids, pred_ids, visible, matched = [], [], 0, 0
        for line in summary.files["frames"].read_text().splitlines():
            record = json.loads(line)
            f = record["frame"]
            window = true_masks[:, f * step : f * step + size, f * step : f * step + size]  # [K, s, s]
            pred = [(e["track_id"], rle_to_mask(e["segmentation"])) for e in record["instances"]]
            t_f, p_f = [], []
            for k in np.flatnonzero(window.sum((1, 2)) >= 30):
                visible += 1
                ious = [float((window[k] & m).sum() / (window[k] | m).sum()) for _, m in pred]
                if ious and max(ious) >= 0.5:
                    matched += 1
                    t_f.append(int(k))
                    p_f.append(pred[int(np.argmax(ious))][0])
            true_ids.append(np.array(t_f))
            pred_ids.append(np.array(p_f))
        switches = count_id_switches(true_ids, pred_ids)
        print(
            f"  every {every}: {summary.frames_processed} frames at {summary.fps:.2f} fps, {summary.tracks} tracks, "
            f"{matched / max(visible, 1):.1%} of visible true objects matched, {switches} ID switches"
        )


if __name__ == "__main__":
    main()
