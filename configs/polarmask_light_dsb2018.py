"""PolarMask (``polarmask_light_mobilenetv3``) on dsb2018 nuclei, from scratch, with the data and optimiser recipe
of ``configs/yolact_light_dsb2018.py`` (short side 512, flips, 90-degree rotations, batches of four, AdamW 1e-3,
1000 steps with warmup), so that the two single-shot rows of the benchmark table compare at one budget.

    instseg train --config configs/polarmask_light_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_polarmask_light

Choices: ``SMALL_OBJECTS`` (levels P3-P6 take objects up to 32, 64, 128 px and beyond; 2000 candidates and 400
detections per image), 36 rays as the paper, BatchNorm in the backbone (folded for inference), GroupNorm in the
head shared by the levels.

Measured on one CPU core from scratch (the other core busy): the 1000 steps took 64 min; dsb2018 val
(``instseg eval ... --max-dets 1000``, last checkpoint) segm/AP 0.434, AP50 0.763, AP75 0.453, F1@0.5 0.758.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config
from instseg.methods.polarmask import SMALL_OBJECTS

base = load_config(Path(__file__).with_name("base.py"))

config = dataclasses.replace(
    base,
    name="polarmask_light_dsb2018",
    model=dataclasses.replace(
        base.model,
        name="polarmask_light_mobilenetv3",
        kwargs={**SMALL_OBJECTS, "min_size": 512, "max_size": 512, "norm": "bn", "head_norm": "gn"},
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
