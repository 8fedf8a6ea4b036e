"""SpatialEmbeddings on dsb2018, third stage: one more warm restart (a cosine of 1200 steps at a lower peak) from
the second stage's last weights (``spatial_embedding_dsb2018_stage2.py``), which were still improving (val F1@0.5
0.808 / 0.868 / 0.872 at steps 400 / 800 / 1200); data, loss and model unchanged.

    instseg train --config configs/spatial_embedding_dsb2018_stage3.py --data DSB2018_DIR \\
        --out runs/spatial_embedding_stage3 --init runs/spatial_embedding_stage2/last.pt
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

stage2 = load_config(Path(__file__).with_name("spatial_embedding_dsb2018_stage2.py"))

config = dataclasses.replace(
    stage2,
    name="spatial_embedding_dsb2018_stage3",
    train=dataclasses.replace(stage2.train, lr=1e-3, warmup_iters=50, seed=2),
)
