"""Inference for users: numpy in, Instances out; folders, large images and result files."""

from instseg.inference.predictor import Predictor

__all__ = ["Predictor"]
