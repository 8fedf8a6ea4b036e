"""Light YOLACT (MobileNetV3-Large) on coco128seg: an 80-class sanity run of the whole pipeline on real photographs.

    instseg train --config configs/yolact_light_coco128.py --data PATH/TO/coco128seg --out runs/coco128_yolact

102 training images are far too few to learn 80 classes from scratch: expect the loss to fall and AP to stay
near zero unless ``--set model.kwargs.pretrained_backbone=True`` (ImageNet weights, downloaded by torchvision).
Images at short side 384 (long side <= 512), the light builder's CPU default; anchors scaled to that size. GroupNorm
replaces the light head's foldable BatchNorm here because batches of four are too small for its statistics.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MIN_SIZE = 384
MAX_SIZE = 512

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
            "anchor_sizes": (16, 32, 64, 128, 256),
        },
    ),
    data=dataclasses.replace(
        base.data,
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        hflip=True,
        color_jitter=0.2,
        batch_size=4,
        val_batch_size=4,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        max_iters=600,
        warmup_iters=100,
        clip_grad_norm=10.0,
        eval_period=300,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=100, score_thr=0.3),
)
