"""Smoke recipe on ``SyntheticShapes`` (128 px images, a few objects each): a couple of minutes on a CPU.

Used by tests and by the Mask R-CNN smoke test; write the data with
``SyntheticShapes(num_images=64, image_size=128, num_classes=3, seed=0).write_coco(DIR)`` (and a ``val`` split),
then ``instseg train --config configs/synthetic_smoke.py --data DIR --out runs/smoke``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

base = load_config(Path(__file__).with_name("base.py"))

SIZE = 128

config = dataclasses.replace(
    base,
    name="synthetic_smoke",
    model=dataclasses.replace(
        base.model,
        kwargs={
            **base.model.kwargs,
            "min_size": SIZE,
            "max_size": SIZE,
            "anchor_sizes": [16, 32, 64, 128, 256],
            "rpn_post_nms_top_n_train": 500,
            "rpn_post_nms_top_n_test": 300,
            "box_batch_size_per_image": 128,
        },
    ),
    data=dataclasses.replace(base.data, batch_size=4, val_batch_size=4, num_workers=0),
    train=dataclasses.replace(
        base.train,
        lr=0.02,
        max_iters=300,
        warmup_iters=50,
        eval_period=100,
        checkpoint_period=100,
        log_period=10,
    ),
)
