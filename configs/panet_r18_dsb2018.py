"""PANet ResNet-18-FPN on dsb2018 nuclei, from scratch: Mask R-CNN R18's recipe (``mask_rcnn_r18_dsb2018.py``)
with the model swapped, so the two compare at an equal budget of 1400 steps of two images.

    instseg train --config configs/panet_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_panet_r18

What PANet adds: the bottom-up path in the neck (GroupNorm, as the FPN), every region pooled from all four levels
and fused by a max, and the mask head's fully-connected branch. Measured: ``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

mask_rcnn = load_config(Path(__file__).with_name("mask_rcnn_r18_dsb2018.py"))

config = dataclasses.replace(
    mask_rcnn,
    name="panet_r18_dsb2018",
    model=dataclasses.replace(mask_rcnn.model, name="panet_resnet18_fpn"),
)
