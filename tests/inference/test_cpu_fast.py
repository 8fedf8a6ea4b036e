"""``FastCpuPredictor``: BatchNorm folded (+ bfloat16 where native) finds the same nuclei as the plain float32 path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import instseg
from instseg.inference.cpu_fast import FastCpuPredictor, cpu_has_native_bf16
from instseg.structures import Instances

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample" / "images"


def matched_f1(first: Instances, second: Instances, threshold: float = 0.5) -> tuple[float, float]:
    """F1 of one-to-one mask matches at IoU >= ``threshold`` and the mean IoU of those matches."""
    a = first.masks.flatten(1).float()  # type: ignore[union-attr]
    b = second.masks.flatten(1).float()  # type: ignore[union-attr]
    inter = a @ b.T
    iou = inter / (a.sum(1)[:, None] + b.sum(1)[None] - inter).clamp(min=1)
    matched = iou[iou >= threshold]  # above 0.5, a mask has at most one such partner
    f1 = 2 * matched.numel() / max(len(first) + len(second), 1)
    return f1, float(matched.mean()) if matched.numel() else 0.0


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A crowded 360 x 360 fluorescence sample image (HxWx3 uint8)."""
    return np.asarray(Image.open(sorted(SAMPLES.glob("02903040*.png"))[0]).convert("RGB"))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_same_nuclei_as_plain_path(image: np.ndarray, precision: str) -> None:
    if precision == "bfloat16" and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bfloat16 (emulated bf16 is slower than float32 and not used)")
    model = instseg.load_model()
    plain = instseg.Predictor(model, auto_tile_above=None).predict_whole(image)
    fast = FastCpuPredictor(model, precision=precision)
    assert fast.precision == precision
    found = fast(image)
    assert len(plain) > 20 and found.image_size == plain.image_size == image.shape[:2]
    f1, mean_iou = matched_f1(plain, found)
    if precision == "float32":  # folding is exact up to float rounding: the same objects; rounding may move a
        # pixel that sits exactly on a grouping threshold (a clustering bandwidth edge), never an object
        assert f1 == 1.0 and mean_iou >= 0.999
    else:  # bfloat16 maps move a few threshold pixels (the slide benchmark: F1 0.999, mean IoU 0.997)
        assert f1 >= 0.97 and mean_iou >= 0.97
    # the caller's model is left as it was: its BatchNorm layers are still there and it still predicts the same
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.equal(instseg.Predictor(model).predict_whole(image).boxes, plain.boxes)


def test_score_threshold_and_bad_arguments(image: np.ndarray) -> None:
    model = instseg.load_model()
    every = FastCpuPredictor(model, precision="float32")(image)
    confident = FastCpuPredictor(model, precision="float32", score_thr=0.9)(image)
    assert confident.scores is not None and every.scores is not None
    assert len(confident) == int((every.scores >= 0.9).sum()) < len(every)
    assert FastCpuPredictor(model).precision == ("bfloat16" if cpu_has_native_bf16() else "float32")
    with pytest.raises(ValueError, match="precision"):
        FastCpuPredictor(model, precision="float16")
    with pytest.raises(TypeError, match="instseg model"):
        FastCpuPredictor(torch.nn.Conv2d(3, 3, 1))  # type: ignore[arg-type]
