"""CenterMask ResNet-18-FPN on dsb2018 nuclei, from scratch: Mask R-CNN R18's recipe (``mask_rcnn_r18_dsb2018.py``:
native scale with the long side capped at 384, flips and 90-degree rotations, warmup + cosine, 1400 steps of two
images, GroupNorm) with the model swapped, so the two compare at an equal budget, and one change: AdamW at 1e-3,
the optimizer of the other FCOS-based recipes. With Mask R-CNN's SGD at 0.02 the FCOS box branch died during the
warmup of a 350-step run (every side distance ``relu(...)`` at 0 from step ~40: ``loss_box`` exactly 1.0 to the
end, val AP 0.000); AdamW at 1e-3 trains.

    instseg train --config configs/centermask_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_centermask_r18

The detector is FCOS on P3-P6 with the small-object size ranges (``SMALL_OBJECTS``: nuclei are 5-60 px), up to
400 detections per image; the mask head learns on at most 100 regions per image (``max_masks_per_image``).
Measured: ``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config
from instseg.methods.centermask import SMALL_OBJECTS

base = load_config(Path(__file__).with_name("base.py"))

MAX_SIZE = 384

config = dataclasses.replace(
    base,
    name="centermask_r18_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="centermask_resnet18_fpn",
        kwargs={
            **base.model.kwargs,
            **SMALL_OBJECTS,
            "min_size": None,
            "max_size": MAX_SIZE,
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
        max_iters=1400,
        warmup_iters=200,
        clip_grad_norm=10.0,
        eval_period=700,
        checkpoint_period=100,
        log_period=10,
    ),
    eval=dataclasses.replace(base.eval, max_dets=400, score_thr=0.5),
)
