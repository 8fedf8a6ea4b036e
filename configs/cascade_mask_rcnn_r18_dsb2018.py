"""Cascade Mask R-CNN ResNet-18-FPN on dsb2018 nuclei, from scratch: Mask R-CNN R18's recipe
(``mask_rcnn_r18_dsb2018.py``) with the model swapped, so the two compare at an equal budget of 1400 steps of two
images.

    instseg train --config configs/cascade_mask_rcnn_r18_dsb2018.py --data PATH/TO/dsb2018 --out runs/dsb_cascade_r18

What the cascade adds: three box stages trained at IoU 0.5 / 0.6 / 0.7 on the boxes the stage before regressed
(``box_batch_size_per_image`` regions sampled per stage), class scores averaged over the stages, the mask head on
the last stage's regions. Measured: ``benchmarks/README.md``.
"""

import dataclasses
from pathlib import Path

from instseg.engine.config_io import load_config

mask_rcnn = load_config(Path(__file__).with_name("mask_rcnn_r18_dsb2018.py"))

config = dataclasses.replace(
    mask_rcnn,
    name="cascade_mask_rcnn_r18_dsb2018",
    model=dataclasses.replace(mask_rcnn.model, name="cascade_mask_rcnn_resnet18_fpn"),
)
