"""Hybrid Task Cascade ResNet-18-FPN on dsb2018 nuclei, from scratch: Mask R-CNN R18's recipe
(``mask_rcnn_r18_dsb2018.py``) with the model swapped, so the two compare at an equal budget of 1400 steps of two
images.

    instseg train --config configs/htc_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_htc_r18

What HTC adds over the cascade: a mask head at every stage, run on that stage's regressed boxes and fed the
previous stage's mask features (the information flow), and a semantic branch over all FPN levels, trained on the
union of the instance masks (dsb2018 has no stuff labels), whose features are added to every region's box and mask
features. Measured: ``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="htc_r18_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="htc_resnet18_fpn",
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
