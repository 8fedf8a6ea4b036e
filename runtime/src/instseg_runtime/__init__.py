"""instseg-runtime: run models exported by ``instseg export`` with onnxruntime and numpy, without PyTorch."""

from instseg_runtime.instances import RuntimeInstances
from instseg_runtime.predictor import BACKENDS, OnnxPredictor, read_metadata

__version__ = "0.1.0"

__all__ = ["BACKENDS", "OnnxPredictor", "RuntimeInstances", "__version__", "read_metadata"]
