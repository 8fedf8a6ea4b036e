"""SpatialEmbeddings on dsb2018, second stage: a warm restart (a second, lower cosine of 1200 steps) from the
first stage's last weights (``spatial_embedding_dsb2018.py``); data, loss and model unchanged. The first stage
was still improving when its cosine ended (val F1@0.5 0.764 / 0.829 / 0.855 at steps 400 / 800 / 1200).

    instseg train --config configs/spatial_embedding_dsb2018.py --data DSB2018_DIR --out runs/spatial_embedding
    instseg train --config configs/spatial_embedding_dsb2018_stage2.py --data DSB2018_DIR \\
        --out runs/spatial_embedding_stage2 --init runs/spatial_embedding/last.pt
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

stage1 = load_config(Path(__file__).with_name("spatial_embedding_dsb2018.py"))

config = dataclasses.replace(
    stage1,
    name="spatial_embedding_dsb2018_stage2",
    train=dataclasses.replace(stage1.train, lr=1.5e-3, warmup_iters=50, seed=1),
)
