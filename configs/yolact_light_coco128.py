"""Light YOLACT (MobileNetV3-Large) on coco128seg: an 80-class sanity run of the whole pipeline on real photographs.

    instseg train --config configs/yolact_light_coco128.py --data PATH/TO/coco128seg --out runs/coco128_yolact

Measured (one CPU core, 45 min, 3000 steps): on its own 102 training images 60 of the 68 categories present reach
mask AP > 0 (segm/AP 0.132, ``instseg eval --split train --per-class``); val AP stays 0: 102 images are far too
few to learn 80 classes from scratch. With ImageNet weights (``--set model.kwargs.pretrained_backbone=True``,
downloaded by torchvision) it is a real sanity check. Short side 320 (long side <= 384) for speed; anchors scaled
to that size; no colour jitter (this is a memorisation check). GroupNorm replaces the light builder's BatchNorm
everywhere here because batches of four are too small for its statistics.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MIN_SIZE = 320
MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="yolact_light_coco128",
    model=dataclasses.replace(
        base.model,
        name="yolact_light_mobilenetv3",
        kwargs={
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
            "norm": "gn",
            "fpn_norm": "gn",
            "head_norm": "gn",
            "proto_norm": "gn",
            "anchor_sizes": (16, 32, 64, 128, 256),
        },
    ),
    data=dataclasses.replace(
        base.data,
        hflip=True,
        color_jitter=0.0,
        batch_size=4,
        val_batch_size=4,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        max_iters=3000,
        warmup_iters=100,
        clip_grad_norm=10.0,
        eval_period=1000,
        checkpoint_period=250,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=100, score_thr=0.3),
)
