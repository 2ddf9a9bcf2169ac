"""TR2M: frozen encoders + the trainable head, and a prediction API that speaks numpy and metres."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError, WeightsError
from .config import ModelSpec
from .encoders import ImageEncoder, RelativeDepthModel, TextEncoder
from .head import ScaleShiftHead, metric_from_relative
from .preprocess import ImageLike, SizePolicy, normalize_and_resize, resize_to, to_float_tensor


@dataclass
class Tr2mOutput:
    """All maps at the network input size, [B, H, W]."""

    metric_depth: torch.Tensor  # model output unit (metres, see ModelSpec.domain_units)
    relative_depth: torch.Tensor  # the frozen model's relative inverse depth D_r
    scale_map: torch.Tensor  # A > 0
    shift_map: torch.Tensor  # B > 0
    fused_features: torch.Tensor  # [B, C, h, w]


@dataclass
class Prediction:
    """One photo's result at its original size, as float32 numpy arrays. `intrinsics` is the
    camera (`io.intrinsics.Intrinsics`, pixels of `depth`) and `image` the photo as uint8 RGB:
    with them `points()` and the `tr2m_cli.save_*` helpers need nothing else."""

    depth: np.ndarray  # metres
    relative_depth: np.ndarray
    scale_map: np.ndarray
    shift_map: np.ndarray
    intrinsics: Any = None
    image: np.ndarray | None = None

    def points(self, colors: bool = False, options: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The point cloud in metres, camera frame (x right, y down, z forward): [N, 3] float32,
        with `colors=True` also [N, 3] uint8 from the photo. Flying pixels at depth edges are
        dropped, and `options` (`io.pointcloud.PointCloudOptions`: stride, max points, voxels,
        outliers) applies, exactly as `tr2m_cli.save_ply` and `tr2m convert` write it."""
        from ..io.pointcloud import PointCloudOptions
        from ..io.save import points

        return points(self, colors=colors, options=options or PointCloudOptions())


def check_domain(spec: ModelSpec, domain: str | None) -> None:
    """A domain the captions know or the model's folder names (`domain_units`); anything else is
    a typo that would silently leave the units unconverted."""
    from ..io.captions import DOMAINS

    known = dict.fromkeys([*DOMAINS, *spec.domain_units])
    if domain is not None and domain not in known:
        raise InputError(f"domain {domain!r}: expected one of {', '.join(known)} (or None)")


def _is_matrix(value: Any) -> bool:
    """A 3×3 K given as nested lists (one camera), not a list of cameras."""
    return len(value) == 3 and all(
        isinstance(row, (list, tuple)) and len(row) == 3 and all(isinstance(v, (int, float)) for v in row) for row in value
    )


def _exif_focal(image: Any) -> float | None:
    """The EXIF 35 mm-equivalent focal length of a photo file or PIL image, else None."""
    from ..io.intrinsics import exif_focal_35mm

    if hasattr(image, "getexif"):
        return exif_focal_35mm(image)
    if isinstance(image, (str, Path)):
        from PIL import Image

        try:
            with Image.open(image) as pil:
                return exif_focal_35mm(pil)
        except (OSError, ValueError):
            return None
    return None


def as_size_policy(size: SizePolicy | int | tuple[int, int] | None, default: SizePolicy) -> SizePolicy:
    """None → the model's default; an int → a token budget; (H, W) → a fixed network size."""
    if size is None:
        return default
    if isinstance(size, SizePolicy):
        return size
    if isinstance(size, int):
        return SizePolicy(token_budget=size)
    height, width = size
    return SizePolicy.fixed(height, width)


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
        image_tokens, grid = self.encode_image(pixel_values)
        relative_depth = self.estimate_relative_depth(pixel_values)
        return self.decode(image_tokens, grid, relative_depth, text_embeds)

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
        caption for all, or a list of B).

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
        """Many photos (a list, or a [B, 3, H, W] tensor), one caption each. Photos that share a
        network size run together, so mixed sizes still batch; each caption is encoded once.
        `intrinsics`: one camera for every photo, or a list with one per photo (see `predict`)."""
        from ..io.intrinsics import camera_for_photo

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
        if batch_size < 1:
            raise InputError(f"batch size {batch_size}: must be at least 1")
        check_domain(self.spec, domain)
        cameras = [None] * len(images)
        if return_maps:
            per_photo = isinstance(intrinsics, (list, tuple)) and not _is_matrix(intrinsics)
            cameras = list(intrinsics) if per_photo else [intrinsics] * len(images)
            if len(cameras) != len(images):
                raise InputError(f"{len(images)} images but {len(cameras)} cameras: give one camera per image")
        policy = as_size_policy(size, self.size_policy)
        factor = self.spec.metres_per_output_unit(domain)
        tensors = [to_float_tensor(image) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, tensor in enumerate(tensors):
            groups.setdefault(policy.network_size(*tensor.shape[-2:]), []).append(i)
        text = self.encode_text(captions)
        results: list = [None] * len(tensors)
        for network_size, members in groups.items():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                pixels = torch.cat(
                    [normalize_and_resize(tensors[i][None].to(self.device), network_size) for i in chunk]
                )
                out = self(pixels, text[chunk])
                for row, i in enumerate(chunk):
                    original = tuple(tensors[i].shape[-2:])
                    depth = resize_to(out.metric_depth[row : row + 1], original)[0] * factor
                    if not return_maps:
                        results[i] = depth.cpu().numpy().astype(np.float32)
                        continue
                    results[i] = Prediction(
                        depth=depth.cpu().numpy().astype(np.float32),
                        **{
                            name: resize_to(getattr(out, name)[row : row + 1], original)[0]
                            .cpu()
                            .numpy()
                            .astype(np.float32)
                            for name in ("relative_depth", "scale_map", "shift_map")
                        },
                        intrinsics=camera_for_photo(cameras[i], *original, _exif_focal(images[i])),
                        image=(tensors[i] * 255).round().byte().permute(1, 2, 0).cpu().numpy(),
                    )
        return results
