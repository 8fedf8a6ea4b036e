"""YOLACT++ ResNet-18-FPN on dsb2018 nuclei, from scratch: YOLACT R18's recipe (``yolact_r18_dsb2018.py``) with
the model swapped, so the two compare at an equal budget.

    instseg train --config configs/yolactpp_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_yolactpp_r18

What YOLACT++ adds over YOLACT (Bolya et al. 2020): deformable 3x3 convs in every third block of C3..C5 (the
ResNet-18 has two blocks per stage, so the first block of each) and a mask re-scoring branch that predicts each
mask's IoU with its ground truth and multiplies it into the class score. The anchor scales (three per level) are
already YOLACT R18's, from ``SMALL_OBJECTS``. Measured: ``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

yolact = load_config(Path(__file__).with_name("yolact_r18_dsb2018.py"))

config = dataclasses.replace(
    yolact,
    name="yolactpp_r18_dsb2018",
    model=dataclasses.replace(yolact.model, name="yolactpp_resnet18"),
)
