"""SpatialEmbeddings on dsb2018, fourth stage: a warm restart from the third stage's weights
(``spatial_embedding_dsb2018_stage3.py``) that oversamples the rare kinds of image. The shipped model's weakest
kind is colour (H&E / colour brightfield: val F1@0.5 0.756 against 0.915 on fluorescence), and it has 77 of the
483 train images; grey brightfield has 11. Each colour and grey-brightfield image appears three times per epoch
(``data.repeat_by_appearance``), so about a third of the crops are colour instead of a sixth. Model, loss and
augmentation unchanged; a cosine of 1200 steps at lr 1e-3.

    instseg train --config configs/spatial_embedding_dsb2018_stage4.py --data DSB2018_DIR \\
        --out runs/spatial_embedding_stage4 --init runs/spatial_embedding_stage3/last.pt
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

stage3 = load_config(Path(__file__).with_name("spatial_embedding_dsb2018_stage3.py"))

config = dataclasses.replace(
    stage3,
    name="spatial_embedding_dsb2018_stage4",
    data=dataclasses.replace(stage3.data, repeat_by_appearance={"color": 3, "gray_bright": 3}),
    train=dataclasses.replace(stage3.train, lr=1e-3, warmup_iters=50, seed=3),
)
