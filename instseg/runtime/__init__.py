"""The torch-free ONNX runtime, re-exported: ``OnnxPredictor(path)(image) -> RuntimeInstances``.

The code lives in the ``instseg-runtime`` distribution (``runtime/`` in the repository), which installs without
PyTorch on machines that only run exported files; see ``instseg/export/README.md`` for the file layout.
"""

from instseg_runtime import BACKENDS, OnnxPredictor, RuntimeInstances, read_metadata

__all__ = ["BACKENDS", "OnnxPredictor", "RuntimeInstances", "read_metadata"]
