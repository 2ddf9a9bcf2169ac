"""The pieces of a network input (spec §2); `inference.prepare_photo` puts them together.

All three frozen encoders see one tensor: RGB in [0, 1], ImageNet-normalised, resized bilinearly
with align_corners=True to a size whose sides are multiples of 14. Two size policies:

- a patch-token budget that keeps the aspect ratio (ours, the default for photos);
- a fixed size such as 434×560, which is what the reference release and the paper's tables use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .config import DEFAULT_TOKEN_BUDGET, IMAGENET_MEAN, IMAGENET_STD, PATCH_SIZE

UNIT_RANGE_SLACK = 1e-3  # resampling overshoot a float photo may carry
ImageLike = Union[str, Path, np.ndarray, torch.Tensor, "PIL.Image.Image"]  # noqa: F821


@dataclass(frozen=True)
class SizePolicy:
    """How a photo of any size becomes a network input size.

    `fixed_size` (H, W) wins when set; otherwise the aspect ratio is kept and the patch-token count
    is brought close to `token_budget` (memory and time grow with it; accuracy saturates near the
    training budget of 1240).
    """

    token_budget: int = DEFAULT_TOKEN_BUDGET
    fixed_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.fixed_size is not None:
            h, w = self.fixed_size
            if h <= 0 or w <= 0 or h % PATCH_SIZE or w % PATCH_SIZE:
                raise InputError(
                    f"network size {h}x{w}: both sides must be positive multiples of {PATCH_SIZE}"
                )
        elif self.token_budget < 1:
            raise InputError(f"token budget {self.token_budget}: must be at least 1")

    @classmethod
    def fixed(cls, height: int, width: int) -> "SizePolicy":
        return cls(fixed_size=(int(height), int(width)))

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        scale = math.sqrt(self.token_budget / (height * width)) * PATCH_SIZE
        rows = max(1, round(height * scale / PATCH_SIZE))
        cols = max(1, round(width * scale / PATCH_SIZE))
        return rows * PATCH_SIZE, cols * PATCH_SIZE

    def describe(self) -> str:
        if self.fixed_size is not None:
            return f"fixed {self.fixed_size[0]}x{self.fixed_size[1]}"
        return f"aspect-keeping, ~{self.token_budget} patch tokens"


def as_size_policy(size: SizePolicy | int | tuple[int, int] | None, default: SizePolicy) -> SizePolicy:
    """None → `default`; an int → a token budget; (H, W) → a fixed network size."""
    if size is None:
        return default
    if isinstance(size, SizePolicy):
        return size
    if isinstance(size, int):
        return SizePolicy(token_budget=size)
    height, width = size
    return SizePolicy.fixed(height, width)


def load_image_any(image: ImageLike) -> np.ndarray | torch.Tensor:
    """Paths and PIL images become HxWx3 uint8 arrays; arrays and tensors pass through."""
    if isinstance(image, (str, Path)):
        from ..io.images import read_rgb

        return read_rgb(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image, without importing PIL
        from ..io.images import pil_to_rgb

        return pil_to_rgb(image)
    return image


def to_float_tensor(image: ImageLike) -> torch.Tensor:
    """Any supported image → float32 [3, H, W] in [0, 1].

    Arrays: HxWx3 (or HxW grey, HxWx4 with alpha dropped); uint8 and uint16 are scaled by their
    range, floats must be in [0, 1] (`check_unit_range`). Tensors: [3, H, W] (or [1, 3, H, W])
    floats in [0, 1], or uint8.
    """
    image = load_image_any(image)
    if isinstance(image, torch.Tensor):
        tensor = image.detach()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] != 3:
            raise InputError(f"image tensor of shape {tuple(tensor.shape)}: expected [3, H, W]")
        if not tensor.is_floating_point():
            if tensor.dtype != torch.uint8:
                raise InputError(f"image tensor of dtype {tensor.dtype}: expected uint8 or floats in [0, 1]")
            return tensor.float() / 255.0
        return check_unit_range(tensor.float(), "image tensor")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"image array of shape {array.shape}: expected HxWx3")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise InputError(f"image array of dtype {array.dtype}: expected uint8, uint16 or float")
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch wants to own a writable array (PIL's are read-only)
        array = array.copy()
    tensor = torch.from_numpy(array).permute(2, 0, 1).float()
    return tensor / scale if scale != 1.0 else check_unit_range(tensor, "image array")


def check_unit_range(tensor: torch.Tensor, what: str) -> torch.Tensor:
    """Float photos must be in [0, 1]: a float array holding 0–255 values (np.asarray(pil) * 1.0,
    cv2 after .astype(float)) is refused rather than guessed at, since dividing or not are both
    plausible and one of them is silently wrong."""
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{what} holds NaN or infinite values")
    low, high = float(tensor.min()), float(tensor.max())
    if low < -UNIT_RANGE_SLACK or high > 1 + UNIT_RANGE_SLACK:
        hint = " (it looks like 0–255: divide by 255, or pass uint8)" if high <= 255 + UNIT_RANGE_SLACK and low >= 0 else ""
        raise InputError(f"{what} of floats in [{low:g}, {high:g}]: float photos must be in [0, 1]{hint}")
    return tensor.clamp_(0.0, 1.0)


def normalize_and_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] → ImageNet-normalised [B, 3, size] (bilinear, align_corners=True).

    Normalisation is per-channel affine, so doing it before or after the resize gives the same
    numbers; doing it first lets the resize run once on the device."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images = (images - mean) / std
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=True)
    return images


def resize_to(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H', W'] → [B, H, W] with bilinear align_corners=True (the reference's choice for
    bringing predictions back to the image or ground-truth size)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=True)[:, 0]
