"""The TR2M model: frozen encoders, the trainable scale/shift head, and loading."""

from .config import EncoderSources, HeadConfig, ModelSpec
from .head import ScaleShiftHead, metric_from_relative
from .load import load_model
from .preprocess import SizePolicy, prepare_image
from .tr2m import TR2M, Prediction, Tr2mOutput

__all__ = [
    "EncoderSources",
    "HeadConfig",
    "ModelSpec",
    "Prediction",
    "ScaleShiftHead",
    "SizePolicy",
    "TR2M",
    "Tr2mOutput",
    "load_model",
    "metric_from_relative",
    "prepare_image",
]
