"""The TR2M model: frozen encoders, the trainable scale/shift head, and the inference core.

Loading from names, folders and the hub is `tr2m_cli.weights` (`tr2m_cli.load_model`)."""

from .config import EncoderSources, HeadConfig, ModelSpec
from .head import ScaleShiftHead, metric_from_relative
from .inference import DepthPredictor, DepthRequest, DepthResult, Prediction, prepare_image, prepare_photo
from .preprocess import SizePolicy
from .tr2m import TR2M, Tr2mOutput

__all__ = [
    "DepthPredictor",
    "DepthRequest",
    "DepthResult",
    "EncoderSources",
    "HeadConfig",
    "ModelSpec",
    "Prediction",
    "ScaleShiftHead",
    "SizePolicy",
    "TR2M",
    "Tr2mOutput",
    "metric_from_relative",
    "prepare_image",
    "prepare_photo",
]
