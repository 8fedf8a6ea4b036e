"""An ONNX file of the shipped default model and a sample image, for the runtime tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_IMAGE = sorted((REPO / "examples" / "dsb2018_sample" / "images").glob("*.png"))[0]

# run by a Python that may lack torch: segment the sample image, print the count and which modules were loaded
RUN_SCRIPT = """
import sys
import numpy as np
from PIL import Image
from instseg_runtime import OnnxPredictor

predictor = OnnxPredictor(sys.argv[1], threads=1)
found = predictor(np.asarray(Image.open(sys.argv[2])))
assert found.masks.shape[1:] == found.image_size and found.masks.dtype == bool
print(len(found), int(found.masks.sum()), "torch" in sys.modules, "instseg" in sys.modules)
"""


def export_default(folder: Path) -> Path:
    """The shipped default model written as ``folder/default.onnx``."""
    import instseg
    from instseg.export import to_onnx

    return to_onnx(instseg.load_model(), folder / "default.onnx")  # type: ignore[arg-type]
