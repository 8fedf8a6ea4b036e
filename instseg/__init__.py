"""instseg: instance segmentation with top-down, single-shot and bottom-up methods on one toolkit."""

from instseg.engine.checkpoint import load_model
from instseg.inference.predictor import Predictor
from instseg.registry import create_model, list_models, register_model
from instseg.structures import ImageBatch, Instances

__version__ = "0.1.0"

__all__ = [
    "ImageBatch",
    "Instances",
    "Predictor",
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "register_model",
]
