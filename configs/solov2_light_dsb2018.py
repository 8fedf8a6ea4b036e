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
  - AdamW at 1e-3 (YOLACT light's optimiser): with SGD at 0.01 this model from scratch barely started (val
    segm/AP 0.005 after 300 steps against 0.139 with AdamW; 0.215 after the full 1200 steps).

Measured (one pinned CPU core, 45 min for the 1200 steps and the final evaluation, run with
``--set train.eval_period=1200``): dsb2018 val segm/AP 0.368, AP50 0.701, AP75 0.358, F1@0.5 0.676 (precision 0.94,
recall 0.53), PQ 0.538 (``instseg eval --max-dets 1000 --batch-size 1``). The SGD recipe before it (lr 0.01)
scored 0.215 / 0.498 / F1 0.517. An earlier run of the SGD recipe scored 0.009 after 474 steps: the light head
then used BatchNorm, shared by all levels, which predicts differently in eval mode (see
``instseg.backbones.norm.check_shared_head_norm``).
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
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        max_iters=1200,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=600,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
