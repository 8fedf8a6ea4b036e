"""SOLOv2 ResNet-18-FPN on dsb2018 nuclei (crowded: up to 375 small objects per image), trained from scratch.

    instseg train --config configs/solov2_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_solov2_r18

Choices:
  - Native scale, long side capped at 384 (as ``mask_rcnn_r18_dsb2018``): nuclei have a median area of ~300 px.
  - The paper's grids (40, 36, 24, 16, 12); scale ranges by ``default_scale_ranges`` for this input size
    (short side ~230 px: level P2 takes objects up to ~28 px, P3 14-55 px, ...), so most nuclei fall on the two
    finest, densest grids.
  - A 256-channel GroupNorm head (``solov2_resnet18``), GroupNorm in backbone and FPN: batches of two images
    are too small for BatchNorm statistics from scratch.
  - Up to 400 detections per image after Matrix NMS and ``eval.max_dets=400`` so that AP is not capped.

Measured (the full 1400 steps with ``--set train.eval_period=1400``, one pinned CPU core, 83 min): dsb2018 val
segm/AP 0.215, AP50 0.513, AP75 0.147, F1@0.5 0.563 (precision 0.81, recall 0.43), PQ 0.421
(``instseg eval --max-dets 1000``). SGD from scratch learns slowly here: see the light recipe's optimiser study in
``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="solov2_r18_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="solov2_resnet18",
        kwargs={
            "min_size": None,
            "max_size": MAX_SIZE,
            "norm": "gn",
            "fpn_norm": "gn",
            "head_channels": 256,
            "head_convs": 4,
            "pre_nms_top_k": 800,
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
        batch_size=2,
        val_batch_size=2,
        num_workers=1,
    ),
    train=dataclasses.replace(
        base.train,
        lr=0.01,
        max_iters=1400,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=700,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
