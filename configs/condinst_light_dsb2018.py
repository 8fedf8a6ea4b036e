"""Light CondInst (``condinst_light_mobilenetv3``) on dsb2018 nuclei, from scratch, with YOLACT's light data recipe.

    instseg train --config configs/condinst_light_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_condinst_light

Choices (as ``configs/yolact_light_dsb2018.py``, so the two compare on one recipe):
  - Short side 512, long side at most 512 (most images are 256-360 px, so nuclei are enlarged ~1.5x, which helps
    the stride-8 mask features and the stride-4 masks).
  - MobileNetV3-Large with BatchNorm and BatchNorm in the mask branch (one level: both fold into their convs with
    ``fuse_for_inference``), GroupNorm in the FCOS head, which sees every pyramid level; batches of four images.
  - ``SMALL_OBJECTS``: size ranges 0-32, 32-64, 64-128, 128+ px for P3..P6 (nuclei land on the finest levels),
    up to 100 masks per image in the mask loss and 400 detections per image (``eval.max_dets=400``).
  - AdamW with warmup and gradient clipping, 1000 steps.

Measured on one CPU core from scratch (the other core busy): the 1000 steps took 95 min; dsb2018 val
(``instseg eval ... --max-dets 1000``, last checkpoint) segm/AP 0.442, AP50 0.765, AP75 0.468, F1@0.5 0.790.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config
from instseg.methods.condinst import SMALL_OBJECTS

base = load_config(Path(__file__).with_name("base.py"))

SIZE = 512

config = dataclasses.replace(
    base,
    name="condinst_light_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="condinst_light_mobilenetv3",
        kwargs={**SMALL_OBJECTS, "min_size": SIZE, "max_size": SIZE, "norm": "bn"},
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
