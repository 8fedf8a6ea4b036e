"""Mapping torchvision's Mask R-CNN checkpoints (COCO-trained ResNet-50-FPN) onto instseg's ``MaskRCNN``.

torchvision names the parts ``backbone.body.*`` (ResNet), ``backbone.fpn.*`` (FPN), ``rpn.*`` and ``roi_heads.*``;
instseg keeps the same modules under ``backbone.*``, ``neck.fpn.*``, ``rpn.*`` and ``roi_heads.*``, so the mapping
is a prefix change plus, when the class count differs, a choice of predictor rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn
from torchvision.models.detection.mask_rcnn import MaskRCNN_ResNet50_FPN_Weights

_PREFIXES = (("backbone.body.", "backbone."), ("backbone.fpn.", "neck.fpn."))

# parameters whose first dimension runs over torchvision's 91 classes (0 = background, then COCO ids 1..90)
_CLASS_ROWS = {
    "roi_heads.box_predictor.cls_score.weight": 1,
    "roi_heads.box_predictor.cls_score.bias": 1,
    "roi_heads.box_predictor.bbox_pred.weight": 4,
    "roi_heads.box_predictor.bbox_pred.bias": 4,
    "roi_heads.mask_predictor.mask_fcn_logits.weight": 1,
    "roi_heads.mask_predictor.mask_fcn_logits.bias": 1,
}

COCO_WEIGHTS = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
_TV_CATEGORIES: list[str] = list(COCO_WEIGHTS.meta["categories"])  # 91 entries, "__background__" and "N/A" gaps
COCO_CATEGORY_IDS: list[int] = [i for i, n in enumerate(_TV_CATEGORIES) if n not in ("__background__", "N/A")]
COCO_CLASS_NAMES: list[str] = [_TV_CATEGORIES[i] for i in COCO_CATEGORY_IDS]  # label k <-> COCO_CATEGORY_IDS[k]


def torchvision_to_instseg(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the keys of a torchvision ``maskrcnn_resnet50_fpn`` state dict to instseg's module names."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def select_classes(state_dict: dict[str, Tensor], num_classes: int) -> dict[str, Tensor]:
    """Adapt torchvision's 91-way predictors to ``num_classes`` object classes.

    90 keeps every row (label k is COCO category id k + 1); 80 keeps the background row and the 80 real COCO
    categories (label k is ``COCO_CATEGORY_IDS[k]``, the usual contiguous COCO labelling); any other count drops
    the predictors, which then start from random weights: fine-tuning on a new data set.
    """
    if num_classes == len(_TV_CATEGORIES) - 1:
        return state_dict
    out = dict(state_dict)
    for key, per_class in _CLASS_ROWS.items():
        if key not in out:
            continue
        if num_classes == len(COCO_CATEGORY_IDS):
            rows = [r * per_class + j for r in [0, *COCO_CATEGORY_IDS] for j in range(per_class)]
            out[key] = out[key][rows].clone()
        else:
            del out[key]
    return out


def load_torchvision_weights(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Load a torchvision Mask R-CNN ResNet-50-FPN state dict into ``model``; returns the keys left at their
    initial values (the class predictors when the class count is neither 80 nor 90). Raises ValueError when
    other keys are missing or unexpected, which means the two architectures differ."""
    mapped = select_classes(torchvision_to_instseg(state_dict), int(model.num_classes))  # type: ignore[arg-type]
    own = model.state_dict()
    wrong = [k for k, v in mapped.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if wrong:
        raise ValueError(
            f"torchvision checkpoint does not fit this model: {len(wrong)} tensors differ in "
            f"shape, e.g. {wrong[0]}: {tuple(mapped[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)}"
        )
    result = model.load_state_dict(mapped, strict=False)
    # BatchNorm's step counter is absent from checkpoints trained with frozen BatchNorm and unused in eval
    missing = [k for k in result.missing_keys if k not in _CLASS_ROWS and not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(
            "torchvision checkpoint does not fit this model: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}"
        )
    return [k for k in result.missing_keys if k in _CLASS_ROWS]


def coco_state_dict(progress: bool = True) -> dict[str, Tensor]:
    """torchvision's COCO-trained Mask R-CNN ResNet-50-FPN weights (box AP 37.9, mask AP 34.6 on val2017).

    Downloaded once by torchvision into ``$TORCH_HOME`` (needs internet the first time; tests never call this).
    """
    return dict(COCO_WEIGHTS.get_state_dict(progress=progress, check_hash=True))
