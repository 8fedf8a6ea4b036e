"""Real-time SOLOv2 (``solov2_light_mobilenetv3``) on dsb2018 nuclei, from scratch, at the light model's input size.

    instseg train --config configs/solov2_light_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_solov2_light

Choices:
  - Short side 448, long side at most 512: the light model's input size. Most images are 256-360 px, so nuclei
    are enlarged ~1.5x, which helps at the 1/4-scale mask resolution.
  - The light model: MobileNetV3-Large, 64-channel FPN, 2 head convs of 96 channels with GroupNorm (the head is
    shared by the levels), E = 64, BatchNorm everywhere else (folded into the convs by ``fuse_for_inference``),
    batches of four images.
  - A fine first grid (64 cells at 512 px, 8 px a cell) for the smallest level, where nearly every nucleus
    lands: with the default 32, neighbouring nuclei of crowded images compete for one cell and one is lost.
  - Up to 400 detections per image and ``eval.max_dets=400`` (crowded images).

Measured (one CPU core, 45 min for the 1200 steps with two evaluations): dsb2018 val segm/AP 0.215, AP50 0.498,
F1@0.5 0.517 (precision 0.85, recall 0.37; ``instseg eval --max-dets 1000 --batch-size 1``). YOLACT's light recipe
(``configs/yolact_light_dsb2018.py``) learns faster on this CPU budget. An earlier run of this recipe scored 0.009
after 474 steps: the light head then used BatchNorm, shared by all levels, which predicts differently in eval
mode (see ``instseg.backbones.norm.check_shared_head_norm``).
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MIN_SIZE = 448
MAX_SIZE = 512

config = dataclasses.replace(
    base,
    name="solov2_light_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="solov2_light_mobilenetv3",
        kwargs={
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
            "norm": "bn",
            "num_grids": (64, 36, 24, 16, 12),
            "pre_nms_top_k": 600,
            "max_per_image": 400,
            "score_threshold": 0.1,
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
        lr=0.01,
        max_iters=1200,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=600,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
