"""Joint image + ``Instances`` augmentation: masks, boxes and labels move together with the image."""

from instseg.transforms.augment import (
    LargeScaleJitter,
    RandomRot90,
    ResizeShortSide,
    build_eval_transforms,
    build_train_transforms,
    short_side_shape,
)
from instseg.transforms.joint import JointPipeline, JointStep, drop_lost_objects, from_sample, to_sample

__all__ = [
    "JointPipeline",
    "JointStep",
    "LargeScaleJitter",
    "RandomRot90",
    "ResizeShortSide",
    "build_eval_transforms",
    "build_train_transforms",
    "drop_lost_objects",
    "from_sample",
    "short_side_shape",
    "to_sample",
]
