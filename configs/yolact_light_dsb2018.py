"""Real-time YOLACT (``yolact_light_mobilenetv3``) on dsb2018 nuclei, from scratch: instseg's light CPU model.

    instseg train --config configs/yolact_light_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_yolact_light

Choices:
  - Short side 512, long side at most 512 (most images are 256-360 px, so nuclei are enlarged ~1.5x, which
    helps the 1/4-scale prototypes).
  - MobileNetV3-Large with BatchNorm (folded into its convs by ``fuse_for_inference``), batches of four images;
    GroupNorm in the prediction head, which sees every pyramid level (BatchNorm would mix their statistics), and
    in the protonet, as measured below (the builder's default there is the foldable BatchNorm).
  - ``SMALL_OBJECTS``: anchors from 12 px with three scales per level, up to 300 masks per image in the mask loss
    and 400 detections per image (``eval.max_dets=400``).
  - AdamW with warmup and gradient clipping, as ``yolact_r18_dsb2018.py``: it learned in a few hundred steps.

Measured on one CPU core from scratch: the full 1000 steps (45 min) give dsb2018 val segm/AP 0.432, AP50 0.726,
F1@0.5 0.792; stopped at 490 steps (the 20-minute budget of ``benchmarks/vs_yolo.py``) 0.390, 0.673, 0.753.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config
from instseg.methods.yolact import SMALL_OBJECTS

base = load_config(Path(__file__).with_name("base.py"))

SIZE = 512

config = dataclasses.replace(
    base,
    name="yolact_light_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="yolact_light_mobilenetv3",
        kwargs={
            **SMALL_OBJECTS,
            "min_size": SIZE,
            "max_size": SIZE,
            "norm": "bn",
            "head_norm": "gn",
            "proto_norm": "gn",
        },
    ),
    data=dataclasses.replace(
        base.data,
        hflip=True,
        vflip=True,
        rot90=True,
        color_jitter=0.1,
        batch_size=4,
        val_batch_size=2,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        max_iters=1000,
        warmup_iters=100,
        clip_grad_norm=10.0,
        eval_period=500,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
