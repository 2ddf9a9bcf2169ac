"""TR2M: frozen encoders + the trainable head, and a prediction API that speaks numpy and metres."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError, WeightsError
from .config import ModelSpec
from .encoders import ImageEncoder, RelativeDepthModel, TextEncoder
from .head import ScaleShiftHead, metric_from_relative
from .inference import DepthPredictor, Prediction, encoder_outputs
from .preprocess import ImageLike, SizePolicy


@dataclass
class Tr2mOutput:
    """All maps at the network input size, [B, H, W]."""

    metric_depth: torch.Tensor  # model output unit (metres, see ModelSpec.domain_units)
    relative_depth: torch.Tensor  # the frozen model's relative inverse depth D_r
    scale_map: torch.Tensor  # A > 0
    shift_map: torch.Tensor  # B > 0
    fused_features: torch.Tensor  # [B, C, h, w]


class TR2M(nn.Module):
    """Metric depth = 1 / (A ⊙ D_r + B), with A and B predicted from the photo and its caption."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        depth_model: RelativeDepthModel,
        head: ScaleShiftHead,
        spec: ModelSpec | None = None,
    ) -> None:
        super().__init__()
        cfg = head.config
        if image_encoder.channels != cfg.image_channels:
            raise WeightsError(
                f"the image encoder gives {image_encoder.channels}-channel features but the head "
                f"expects {cfg.image_channels}: pair the head with the encoder it was trained with"
            )
        if text_encoder.channels != cfg.text_channels:
            raise WeightsError(
                f"the text encoder gives {text_encoder.channels}-d embeddings but the head "
                f"expects {cfg.text_channels}: pair the head with the encoder it was trained with"
            )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.depth_model = depth_model
        self.head = head
        self.spec = spec or ModelSpec(name="unnamed", head=cfg)
        self.size_policy = SizePolicy(token_budget=self.spec.token_budget)
        self.precision = torch.float32

    # -- housekeeping -------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def set_precision(self, dtype: torch.dtype) -> "TR2M":
        """Run the frozen encoders in `dtype` (halving their memory in fp16/bf16) and the head
        under autocast; the head's own weights stay float32 so it can be trained."""
        for encoder in (self.image_encoder, self.text_encoder, self.depth_model):
            encoder.to(dtype)
        self.precision = dtype
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.precision)

    def _encoder_dtype(self) -> torch.dtype:
        return next(self.image_encoder.parameters()).dtype

    # -- the steps, separately callable (training may cache the frozen ones) ---------------------

    def encode_text(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions → [N, T] float32 embeddings. Repeated captions are encoded once; callers that
        see the same caption across calls can keep the result."""
        captions = [str(c) for c in captions]
        unique = list(dict.fromkeys(captions))
        embeds = self.text_encoder(unique).float()
        if len(unique) == len(captions):
            return embeds
        index = {caption: i for i, caption in enumerate(unique)}
        return embeds[torch.tensor([index[c] for c in captions], device=embeds.device)]

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        return self.image_encoder(pixel_values.to(self.device, self._encoder_dtype()))

    def estimate_relative_depth(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.depth_model(pixel_values.to(self.device, self._encoder_dtype())).float()

    def decode(
        self,
        image_tokens: torch.Tensor,
        grid: tuple[int, int],
        relative_depth: torch.Tensor,
        text_embeds: torch.Tensor,
    ) -> Tr2mOutput:
        """The trainable part: fuse, predict A and B at the relative depth's size, transfer."""
        with self._autocast():
            maps = self.head(
                image_tokens, text_embeds.to(self.device), grid, output_size=tuple(relative_depth.shape[-2:])
            )
        scale_map, shift_map = maps.scale_map[:, 0], maps.shift_map[:, 0]
        return Tr2mOutput(
            metric_depth=metric_from_relative(relative_depth, scale_map, shift_map),
            relative_depth=relative_depth,
            scale_map=scale_map,
            shift_map=shift_map,
            fused_features=maps.fused_features,
        )

    def forward(self, pixel_values: torch.Tensor, text_embeds: torch.Tensor) -> Tr2mOutput:
        """pixel_values: ImageNet-normalised [B, 3, H, W], H and W multiples of 14."""
        encoded = encoder_outputs(self, pixel_values)
        return self.decode(encoded.image_tokens, encoded.grid, encoded.relative_depth, text_embeds)

    # -- prediction on photos -----------------------------------------------------------------

    @torch.inference_mode()
    def predict(
        self,
        image: ImageLike,
        caption: str | Sequence[str],
        *,
        size: SizePolicy | int | tuple[int, int] | None = None,
        domain: str | None = None,
        return_maps: bool = False,
        intrinsics: Any = None,
    ) -> np.ndarray | Prediction | list:
        """One photo (path, PIL image, HxWx3 array — uint8, uint16, or floats in [0, 1] — or a
        [3, H, W] tensor) and its caption → metric depth in metres as float32 [H, W] at the
        photo's own size. A [B, 3, H, W] tensor is B photos: the result is a list of B (one
        caption for all, or a list of B). Photos four or more times the network size are reduced
        before the network resize (`model.inference`), as by every path.

        `size`: a token budget, a fixed (H, W) network size, or a SizePolicy. `domain`: "indoor",
        "outdoor" or "surgical" (colonoscopy: models trained in millimetres there answer in
        metres). `return_maps`: a Prediction with the maps, the camera (`intrinsics`: a 3×3 K, an
        Intrinsics, a mapping with fx fy cx cy, or CameraOptions; default: the photo's EXIF focal
        length, else a 60° field of view) and the photo's colours, so `result.points()` and
        `tr2m_cli.save_ply(path, result)` work from it.
        """
        if isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[0] != 1:
            captions = [caption] * image.shape[0] if isinstance(caption, str) else list(caption)
            return self.predict_batch(
                image, captions, size=size, domain=domain, return_maps=return_maps, intrinsics=intrinsics
            )
        if not isinstance(caption, str):
            raise InputError(f"caption of type {type(caption).__name__}: give one sentence (a str) for the photo")
        return self.predict_batch(
            [image], [caption], size=size, domain=domain, return_maps=return_maps, intrinsics=[intrinsics]
        )[0]

    @torch.inference_mode()
    def predict_batch(
        self,
        images: Sequence[ImageLike] | torch.Tensor,
        captions: Sequence[str],
        *,
        batch_size: int = 4,
        size: SizePolicy | int | tuple[int, int] | None = None,
        domain: str | None = None,
        return_maps: bool = False,
        intrinsics: Any = None,
    ) -> list[np.ndarray] | list[Prediction]:
        """Many photos (a list, or a [B, 3, H, W] tensor), one caption each, through the
        inference core (`model.inference`): photos that share a network size run together, so
        mixed sizes still batch; each caption is encoded once; photos are read as batches need
        them; a batch that runs out of memory is halved. `predict`, `predict_batch`, `tr2m
        convert` and `tr2m eval` give one photo the same depth. `intrinsics`: one camera for
        every photo, or a list with one per photo (see `predict`)."""
        if isinstance(images, torch.Tensor):
            if images.ndim != 4:
                raise InputError(f"image tensor of shape {tuple(images.shape)}: a batch is [B, 3, H, W]")
            images = list(images.unbind(0))
        if isinstance(captions, str):
            raise InputError("captions must be a list with one caption per image, not one string")
        captions = list(captions)
        if len(images) != len(captions):
            raise InputError(f"{len(images)} images but {len(captions)} captions: give one caption per image")
        wrong = [c for c in captions if not isinstance(c, str)]
        if wrong:
            raise InputError(f"caption of type {type(wrong[0]).__name__}: each caption must be one sentence (a str)")
        cameras = None
        if return_maps:
            per_photo = isinstance(intrinsics, (list, tuple)) and not _is_matrix(intrinsics)
            cameras = list(intrinsics) if per_photo else [intrinsics] * len(images)
            if len(cameras) != len(images):
                raise InputError(f"{len(images)} images but {len(cameras)} cameras: give one camera per image")
        predictor = DepthPredictor(self, batch_size=batch_size, size=size, domain=domain, return_maps=return_maps)
        predictions = predictor.predict(images, captions, cameras)
        return predictions if return_maps else [p.depth for p in predictions]

    def predict_video(self, clip, caption: str, **options):
        """Depth in metres for each frame of a clip, as a generator of FramePrediction (index,
        time_s, depth, …): a video file, a ROS bag, a folder of numbered frames or frames in
        memory, with one caption. Scale and shift are smoothed over time unless
        `stabilize=False`. Options: see `tr2m_cli.sequences.predict.predict_video`."""
        from ..sequences.predict import predict_video

        return predict_video(self, clip, caption, **options)


def _is_matrix(value: Any) -> bool:
    """A 3×3 K given as nested lists (one camera), not a list of cameras."""
    return len(value) == 3 and all(
        isinstance(row, (list, tuple)) and len(row) == 3 and all(isinstance(v, (int, float)) for v in row) for row in value
    )
