"""Inference for users: numpy in, Instances out; folders, large images and result files."""

from instseg.inference.predict_many import (
    ImagePrediction,
    PredictionWriter,
    PredictManySummary,
    image_jobs,
    iter_predictions,
    predict_many,
)
from instseg.inference.predictor import Predictor

__all__ = [
    "ImagePrediction",
    "PredictManySummary",
    "PredictionWriter",
    "Predictor",
    "image_jobs",
    "iter_predictions",
    "predict_many",
]
