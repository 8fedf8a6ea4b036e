"""Can the exported graph hold the antialiased resize? PyTorch's antialiased bilinear resize against ONNX ``Resize``
(opset 18, ``antialias = 1``, ``exclude_outside = 1``, ``half_pixel``) in onnxruntime and OpenVINO.

The TorchScript exporter has no conversion for ``aten::_upsample_bilinear2d_aa``; this script registers one, exports
a one-op graph with a free input size, and prints the largest difference (grey levels of 0..255 images) of each
backend from PyTorch on a few down- and upscales. The answer decides where the resize runs (see
``instseg/export/README.md``).

    python benchmarks/onnx_resize_check.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CASES = [((300, 200), (150, 100)), ((517, 333), (256, 165)), ((1000, 1000), (512, 512)), ((100, 90), (200, 180))]


def antialiased_resize_symbolic(g, x, output_size, align_corners, scale_factors):  # type: ignore[no-untyped-def]
    """``aten::_upsample_bilinear2d_aa`` as ONNX ``Resize`` with ``antialias``: sizes = (N, C) of ``x`` + output."""
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    batch_channels = g.op(
        "Slice",
        g.op("Shape", x),
        g.op("Constant", value_t=torch.tensor([0])),
        g.op("Constant", value_t=torch.tensor([2])),
    )
    sizes = g.op("Concat", batch_channels, g.op("Cast", output_size, to_i=7), axis_i=0)  # 7: int64
    return g.op(
        "Resize",
        x,
        empty,
        empty,
        sizes,
        mode_s="linear",
        antialias_i=1,
        exclude_outside_i=1,
        coordinate_transformation_mode_s="half_pixel",
    )


class Resize(torch.nn.Module):
    def forward(self, x: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(size[0], size[1]), mode="bilinear", antialias=True, align_corners=False)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder for the .onnx file (default: a temporary one)")
    args = parser.parse_args()
    import onnxruntime as ort
    import openvino as ov

    torch.onnx.register_custom_op_symbolic("aten::_upsample_bilinear2d_aa", antialiased_resize_symbolic, 18)
    folder = args.out or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "antialiased_resize.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = torch.rand(1, 3, 300, 200) * 255
        axes = {"x": {2: "height", 3: "width"}}
        torch.onnx.export(
            Resize(), (x, torch.tensor([150, 100])), str(path), opset_version=18, dynamo=False,
            input_names=["x", "size"], dynamic_axes=axes,
        )  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compiled = ov.Core().compile_model(str(path), "CPU")
    print(f"onnxruntime {ort.__version__}, OpenVINO {ov.__version__}, torch {torch.__version__}")
    g = torch.Generator().manual_seed(0)
    for shape, out in CASES:
        x = torch.rand(1, 3, *shape, generator=g) * 255
        ref = F.interpolate(x, size=out, mode="bilinear", antialias=True, align_corners=False).numpy()
        feed = {"x": x.numpy(), "size": np.array(out, dtype=np.int64)}
        ort_diff = np.abs(session.run(None, feed)[0] - ref).max()
        ov_diff = np.abs(compiled(feed)[compiled.output(0)] - ref).max()
        print(f"{shape} -> {out}: max |onnxruntime - torch| {ort_diff:.4f}, max |OpenVINO - torch| {ov_diff:.4f}")


if __name__ == "__main__":
    main()
