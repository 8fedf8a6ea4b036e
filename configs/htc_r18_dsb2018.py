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

mask_rcnn = load_config(Path(__file__).with_name("mask_rcnn_r18_dsb2018.py"))

config = dataclasses.replace(
    mask_rcnn,
    name="htc_r18_dsb2018",
    model=dataclasses.replace(mask_rcnn.model, name="htc_resnet18_fpn"),
)
