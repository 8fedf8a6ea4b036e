"""YOLACT ResNet-18-FPN on dsb2018 nuclei (crowded: up to 375 small objects per image), from scratch, CPU-sized.

    instseg train --config configs/yolact_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_yolact_r18

Choices:
  - Native scale, long side capped at 384 (``min_size=None``), as the Mask R-CNN recipe: nuclei have a median
    area of ~300 px, so upscaling only adds cost.
  - ``SMALL_OBJECTS`` settings: anchors from 12 px with three scales per level (the smallest nuclei are ~8 px
    across and P3 has a stride of 8), up to 300 masks per image in the mask loss and 400 detections per image.
  - 128-wide FPN, head and protonet (the paper's 256 costs ~3x more per step on a CPU for little gain on nuclei).
  - GroupNorm in the backbone and the FPN: batches of two images are too small for BatchNorm statistics.
  - AdamW with warmup and gradient clipping: the from-scratch softmax/OHEM loss is unstable with plain SGD early.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config
from instseg.methods.yolact import SMALL_OBJECTS

base = load_config(Path(__file__).with_name("base.py"))

MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="yolact_r18_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="yolact_resnet18",
        kwargs={
            **SMALL_OBJECTS,
            "min_size": None,
            "max_size": MAX_SIZE,
            "norm": "gn",
            "fpn_norm": "gn",
            "fpn_channels": 128,
            "head_channels": 128,
            "proto_channels": 128,
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
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        max_iters=1400,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=700,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
