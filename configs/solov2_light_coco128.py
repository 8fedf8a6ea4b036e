"""Real-time SOLOv2 (``solov2_light_mobilenetv3``) on coco128seg: an 80-class sanity run, not a benchmark.

    instseg train --config configs/solov2_light_coco128.py --data PATH/TO/coco128seg --out runs/coco128_solov2

128 COCO train2017 photographs (102 train / 26 val), 80 classes of which 71 occur: it checks that the 80-way
category branch, the size-dependent level assignment and the evaluation run end to end on natural images.
Short side 384, long side at most 448, AdamW, 400 steps of 4 images (~16 epochs of the 102 images) on one CPU
core: the run shows that the model fits many classes (score it on the train split too), not that 102 images
teach a from-scratch network to generalise. The backbone starts from scratch so that the run needs no download;
with internet access, ``--set model.kwargs.pretrained_backbone=true`` starts it from ImageNet weights (frozen
BatchNorm, top three stages trained), which is what 102 images really need.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MIN_SIZE = 384
MAX_SIZE = 448

config = dataclasses.replace(
    base,
    name="solov2_light_coco128",
    model=dataclasses.replace(
        base.model,
        name="solov2_light_mobilenetv3",
        kwargs={"min_size": MIN_SIZE, "max_size": MAX_SIZE, "num_classes": 80, "pretrained_backbone": False},
    ),
    data=dataclasses.replace(
        base.data,
        hflip=True,
        batch_size=4,
        val_batch_size=2,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=0.05,
        max_iters=400,
        warmup_iters=50,
        clip_grad_norm=10.0,
        eval_period=400,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=100, score_thr=0.3),
)
