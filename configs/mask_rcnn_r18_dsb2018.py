"""Mask R-CNN ResNet-18-FPN on dsb2018 nuclei (crowded: up to 375 small objects per image), from scratch, sized
for about an hour on a 2-core CPU.

    instseg train --config configs/mask_rcnn_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_r18

Budget: on two free cores the first steps ran at 0.44-0.47 it/s, so 1400 steps (~6 epochs of the 483 training
images) take ~53 min plus two evaluations of the 121 validation images (a few minutes each). On one core a step
takes ~4.3-4.8 s (0.21-0.23 it/s). Longer schedules help a from-scratch model a lot: scale with
``--set train.max_iters=...`` (the cosine schedule follows).

Measured (one core, 1400 steps, ``benchmarks/README.md``): dsb2018 val segm/AP 0.432, AP50 0.779, F1@0.5 0.776.

Choices:
  - Native scale, long side capped at 384 (``min_size=None``): most images are 256-360 px, nuclei have a
    median area of ~300 px, so upscaling only adds cost; the few large images (696-1388 px) are shrunk.
  - Anchors from 16 px (nuclei are small), up to 2000 proposals and 400 detections per image at test time and
    ``eval.max_dets=400`` so COCO AP is not capped below the object count.
  - Flips and 90-degree rotations (microscopy has no orientation), mild colour jitter for the stained images.
  - GroupNorm (base), gradient clipping and a 200-step warmup: from-scratch detectors diverge early otherwise.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="mask_rcnn_r18_dsb2018",
    model=dataclasses.replace(
        base.model,
        kwargs={
            **base.model.kwargs,
            "min_size": None,
            "max_size": MAX_SIZE,
            "anchor_sizes": [16, 32, 64, 128, 256],
            "rpn_pre_nms_top_n_train": 2000,
            "rpn_post_nms_top_n_train": 1500,
            "rpn_pre_nms_top_n_test": 3000,
            "rpn_post_nms_top_n_test": 2000,
            "rpn_batch_size_per_image": 512,
            "box_batch_size_per_image": 256,
            "box_head_dim": 512,
            "box_detections_per_img": 400,
            "mask_roi_size": 14,
        },
    ),
    data=dataclasses.replace(
        base.data,
        hflip=True,
        vflip=True,
        rot90=True,
        color_jitter=0.1,
        batch_size=2,
        val_batch_size=2,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        lr=0.02,
        max_iters=1400,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=700,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
