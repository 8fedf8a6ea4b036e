"""Real-time SOLOv2 (``solov2_light_resnet18``) on coco128seg: an 80-class sanity run, not a benchmark.

    instseg train --config configs/solov2_light_coco128.py --data PATH/TO/coco128seg --out runs/coco128_solov2

128 COCO train2017 photographs (102 train / 26 val), 80 classes of which 71 occur: it checks that the 80-way
category branch, the size-dependent level assignment and the evaluation run end to end on natural images.
Short side 448, long side at most 512 (the light model's input size). The backbone starts from scratch so that the
run needs no download; with internet access, ``--set model.kwargs.pretrained_backbone=true`` starts it from
ImageNet weights (frozen BatchNorm, top three stages trained), which is what 102 images really need.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MIN_SIZE = 448
MAX_SIZE = 512

config = dataclasses.replace(
    base,
    name="solov2_light_coco128",
    model=dataclasses.replace(
        base.model,
        name="solov2_light_resnet18",
        kwargs={"min_size": MIN_SIZE, "max_size": MAX_SIZE, "num_classes": 80, "pretrained_backbone": False},
    ),
    data=dataclasses.replace(
        base.data,
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        hflip=True,
        batch_size=4,
        val_batch_size=2,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        lr=0.01,
        max_iters=1000,
        warmup_iters=100,
        clip_grad_norm=10.0,
        eval_period=250,
        checkpoint_period=250,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=100, score_thr=0.3),
)
