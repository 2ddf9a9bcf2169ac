"""Training augmentation: a horizontal flip (image and depth together) and photometric changes
(image only): gamma, brightness and per-channel colour, or a colour jitter for endoscopy (C3VD).

The paper gives no values. Ours are the authors' release's data loaders' (docs/training.md):
gamma, brightness and per-channel colour factors in [0.9, 1.1] applied half of the time (BTS's),
brightness in [0.75, 1.25] for NYUv2, and for C3VD a colour jitter of brightness, contrast and
saturation ±0.2 and hue ±0.1 of a turn. Every random draw comes from the generator passed in,
which the sampler seeds per sample: a sample is augmented the same way whichever worker loads it,
and a resumed run repeats exactly what an uninterrupted one does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch


@dataclass(frozen=True)
class AugmentOptions:
    flip_probability: float = 0.5  # release (its data loaders; the paper names flips, no value)
    photometric_probability: float = 0.5  # release
    gamma: tuple[float, float] = (0.9, 1.1)  # release (BTS's)
    brightness: tuple[float, float] = (0.9, 1.1)  # release, KITTI and every set not listed below
    colour: tuple[float, float] = (0.9, 1.1)  # release
    dataset_brightness: tuple[tuple[str, float, float], ...] = (("nyu", 0.75, 1.25),)  # release: NYUv2's range
    jitter_datasets: tuple[str, ...] = ("c3vd",)  # release: C3VD gets a colour jitter instead
    jitter_brightness: float = 0.2  # release: factors in [1 − x, 1 + x]
    jitter_contrast: float = 0.2  # release
    jitter_saturation: float = 0.2  # release
    jitter_hue: float = 0.1  # release: hue turned by up to ±x of a full turn

    def __post_init__(self) -> None:
        for name in ("flip_probability", "photometric_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} = {getattr(self, name)}: a probability in [0, 1]")
        ranges = [(name, *getattr(self, name)) for name in ("gamma", "brightness", "colour")]
        for name, low, high in ranges + [(f"{n} brightness", lo, hi) for n, lo, hi in self.dataset_brightness]:
            if not 0 < low <= high:
                raise ValueError(f"{name} range {low}..{high}: need 0 < low ≤ high")

    def brightness_for(self, dataset: str | None) -> tuple[float, float]:
        """The brightness range of one dataset (NYUv2's is wider in the release)."""
        return next(((low, high) for name, low, high in self.dataset_brightness if name == dataset), self.brightness)

    @property
    def changes_encoder_inputs(self) -> bool:
        """Photometric changes alter what the frozen encoders see; a flip only selects one of two
        fixed variants (so cached encoder outputs stay valid with flips alone)."""
        return self.photometric_probability > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AugmentOptions":
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        if "dataset_brightness" in values:
            values["dataset_brightness"] = tuple(tuple(item) for item in values["dataset_brightness"])
        return cls(**values)

    @classmethod
    def off(cls) -> "AugmentOptions":
        return cls(flip_probability=0.0, photometric_probability=0.0)


@dataclass
class Augmented:
    image: torch.Tensor  # [3, H, W] in [0, 1]
    depth: torch.Tensor  # [H, W] metres
    valid: torch.Tensor  # [H, W] bool
    flipped: bool


def _uniform(generator: torch.Generator, low: float, high: float, size: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator)


def augment(
    image: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    generator: torch.Generator,
    settings: AugmentOptions,
    *,
    colour_jitter: bool = False,
    dataset: str | None = None,
) -> Augmented:
    """One sample's augmentation (`dataset`: its name, for a dataset's own brightness range). The
    draws happen in a fixed order whatever is enabled, so switching one change off does not
    reshuffle the others."""
    flip = bool(torch.rand(1, generator=generator) < settings.flip_probability)
    photometric = bool(torch.rand(1, generator=generator) < settings.photometric_probability)
    if flip:
        image, depth, valid = image.flip(-1), depth.flip(-1), valid.flip(-1)
    if photometric:
        if colour_jitter:
            image = colour_jittered(image, generator, settings)
        else:
            image = bts_photometric(image, generator, settings, settings.brightness_for(dataset))
    return Augmented(image=image, depth=depth, valid=valid, flipped=flip)


def bts_photometric(
    image: torch.Tensor, generator: torch.Generator, settings: AugmentOptions, brightness: tuple[float, float] | None = None
) -> torch.Tensor:
    """Gamma, then brightness, then a factor per colour channel, clipped to [0, 1]."""
    gamma = _uniform(generator, *settings.gamma).item()
    brightness = _uniform(generator, *(brightness or settings.brightness)).item()
    colour = _uniform(generator, *settings.colour, size=3).view(3, 1, 1)
    out = image.clamp(0, 1) ** gamma * brightness * colour
    return out.clamp(0, 1)


# YIQ separates luma from chroma; turning the (I, Q) plane turns the hue.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def colour_jittered(image: torch.Tensor, generator: torch.Generator, settings: AugmentOptions) -> torch.Tensor:
    """Brightness, contrast, saturation and hue changes, each by a random factor (torchvision's
    ColorJitter in spirit; torchvision is not a dependency here)."""

    def factor(amount: float) -> float:
        return _uniform(generator, max(0.0, 1.0 - amount), 1.0 + amount).item()

    brightness, contrast = factor(settings.jitter_brightness), factor(settings.jitter_contrast)
    saturation = factor(settings.jitter_saturation)
    hue = _uniform(generator, -settings.jitter_hue, settings.jitter_hue).item()
    out = (image * brightness).clamp(0, 1)
    grey = (_RGB_TO_YIQ[0].to(out) @ out.flatten(1)).view(1, *out.shape[1:])
    out = ((out - grey.mean()) * contrast + grey.mean()).clamp(0, 1)
    grey = (_RGB_TO_YIQ[0].to(out) @ out.flatten(1)).view(1, *out.shape[1:])
    out = ((out - grey) * saturation + grey).clamp(0, 1)
    return rotate_hue(out, hue).clamp(0, 1)


def rotate_hue(image: torch.Tensor, turns: float) -> torch.Tensor:
    """Turn the hue of [3, H, W] RGB by `turns` of a full circle (luma unchanged)."""
    if turns == 0:
        return image
    angle = 2 * math.pi * turns
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    matrix = torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    return (matrix.to(image) @ image.flatten(1)).view_as(image)


# The name before option classes took one suffix (Options); kept so existing code keeps working.
AugmentSettings = AugmentOptions
