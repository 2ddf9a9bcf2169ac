"""Sizes and constants of the TR2M head, in one place.

The defaults are the released model's (spec §3: DINOv2 ViT-L image tokens, CLIP ViT-L/14 text
embedding, 18,959,746 parameters). Every width can be read back from a state dict, so heads of
other widths load without code changes; the number of attention heads is the one size a state dict
cannot reveal, so it is recorded in the model folder's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

PATCH_SIZE = 14
"""DINOv2 and Depth Anything both use 14-pixel patches; network inputs are multiples of it."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEFAULT_TOKEN_BUDGET = 1240
"""Patch tokens per image for aspect-keeping inputs: the budget of the reference's 434×560 (31×40)."""

REFERENCE_SIZE = (434, 560)
"""The reference release's fixed network input for 480×640 images (spec §2)."""


@dataclass(frozen=True)
class HeadConfig:
    """Widths of the trainable scale/shift network (spec §3)."""

    image_channels: int = 1024  # DINOv2 ViT-L hidden size
    text_channels: int = 768  # CLIP ViT-L/14 projection size
    attention_heads: int = 8
    mlp_channels: int = 4096  # 4 × image_channels
    projection_channels: int = 192  # `projects` 1×1 conv output
    trunk_channels: int = 128  # `layer1_rn` output, residual units
    head_channels: int = 64  # first conv of each output head
    head_hidden_channels: int = 32  # second conv of each output head
    scale_coefficient: float = 0.01  # A = 0.01·exp(a)
    shift_coefficient: float = 0.01  # B = 0.01·exp(b)

    def __post_init__(self) -> None:
        if self.image_channels % self.attention_heads:
            raise ValueError(
                f"image_channels={self.image_channels} is not divisible by "
                f"attention_heads={self.attention_heads}"
            )

    @property
    def aligns_text(self) -> bool:
        """The reference adds a text→image projection only when the widths differ."""
        return self.image_channels != self.text_channels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HeadConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown head settings: {', '.join(sorted(unknown))}")
        return cls(**dict(data))


@dataclass(frozen=True)
class EncoderSources:
    """Where the frozen encoders come from: Hugging Face ids, or folders (absolute, or relative
    to the model folder)."""

    image: str = "facebook/dinov2-large"
    text: str = "openai/clip-vit-large-patch14"
    relative_depth: str = "LiheYoung/depth-anything-small-hf"


@dataclass(frozen=True)
class ModelSpec:
    """Everything a model folder's `tr2m.json` says: what to build and how to use it."""

    name: str
    head: HeadConfig = HeadConfig()
    encoders: EncoderSources = EncoderSources()
    head_weights: str = "head.safetensors"
    token_budget: int = DEFAULT_TOKEN_BUDGET
    units: str = "metres"
    # Scene domains on which this model's output is in another unit. The authors trained their
    # released weights with colonoscopy depth in millimetres (spec §4), so on such scenes its raw
    # output is millimetres; callers that know the domain convert with `metres_per_output_unit`.
    domain_units: Mapping[str, str] = None  # type: ignore[assignment]
    provenance: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain_units", dict(self.domain_units or {}))
        object.__setattr__(self, "provenance", dict(self.provenance or {}))

    def metres_per_output_unit(self, domain: str | None) -> float:
        unit = self.domain_units.get(domain or "", self.units)
        return UNIT_TO_METRES[unit]


UNIT_TO_METRES = {"metres": 1.0, "millimetres": 0.001, "centimetres": 0.01}
