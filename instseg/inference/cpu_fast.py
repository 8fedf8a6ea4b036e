"""``FastCpuPredictor``: one-pass prediction with BatchNorm folded and the network in bfloat16 where the CPU has it.

For the many same-size tiles of a slide or the frames of a video the network is nearly all the time (89 % of an
8192 x 8192 slide with the default U-Net). Two changes cut it without touching the post-processing:

- BatchNorm folded into the convolutions (``InstanceSegmenter.fuse_for_inference``, exact up to rounding);
- the forward pass under ``torch.autocast("cpu", torch.bfloat16)`` when the CPU runs bfloat16 convolutions
  natively (oneDNN on AMX or AVX-512 BF16); the outputs go back to float32 *before* ``postprocess``, so
  thresholds, watersheds, boxes and NMS are computed exactly as before, on maps rounded to bfloat16's 8 bits.

bfloat16 moves a few pixels that sit on a threshold, so results agree with the float32 path to a tolerance, not
bit for bit; ``benchmarks/slide.py --compare`` measures that agreement (objects matched at IoU >= 0.5 and their
IoU). Where the CPU lacks native bfloat16 (emulated, slower than float32) the float32 path is kept.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import Instances

PRECISIONS = ("auto", "bfloat16", "float32")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 kernels natively on this CPU (AMX / AVX-512 BF16), where bf16 pays off."""
    is_supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # private torch op: the only probe
    return bool(torch.backends.mkldnn.is_available() and is_supported is not None and is_supported())


class FastCpuPredictor:
    """``predictor(image) -> Instances`` for one image or tile ([h, w, 3] uint8 or grey) in a single pass on the CPU.

    ``model`` is copied before its norms are folded, so the caller's model stays trainable. ``precision``:
    ``"auto"`` (bfloat16 where native, else float32), ``"bfloat16"`` or ``"float32"`` (only the folding).
    ``score_thr`` drops instances below it, as ``instseg.Predictor`` does.
    """

    def __init__(
        self,
        model: InstanceSegmenter,
        precision: str = "auto",
        score_thr: float | None = None,
        fuse: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not isinstance(model, InstanceSegmenter):
            raise TypeError(f"FastCpuPredictor needs an instseg model, got {type(model).__name__}")
        model = copy.deepcopy(model).to("cpu").eval()
        self.model = model.fuse_for_inference() if fuse else model
        self.bf16 = precision == "bfloat16" or (precision == "auto" and cpu_has_native_bf16())
        self.score_thr = score_thr
        self.class_names = model.class_names
        self.category_ids = model.category_ids

    @property
    def precision(self) -> str:
        """The precision the network runs in: ``"bfloat16"`` or ``"float32"``."""
        return "bfloat16" if self.bf16 else "float32"

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Instances:
        """Objects of one image at its own size (CPU tensors; masks as the model's postprocessor gives them)."""
        from instseg.data.image_io import to_rgb_uint8  # the one documented conversion rule

        batch = self.model.preprocess([torch.from_numpy(to_rgb_uint8(image)).permute(2, 0, 1)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            outputs = self.model(batch)
        outputs = {key: _as_float32(value) for key, value in outputs.items()}
        instances = self.model.postprocess(outputs, batch)[0].to("cpu")
        if self.score_thr is not None and instances.scores is not None:
            instances = instances[instances.scores >= self.score_thr]
        return instances

    predict = __call__


def _as_float32(value: Tensor) -> Tensor:
    """A floating output in float32 (post-processing never sees bfloat16); other tensors as they are."""
    return value.float() if isinstance(value, Tensor) and value.is_floating_point() else value
