"""The three frozen encoders, loaded with transformers from a Hugging Face id or a local folder.

| role            | default id                          | what TR2M uses                                   |
|-----------------|-------------------------------------|--------------------------------------------------|
| image encoder   | facebook/dinov2-large               | last layer after the final norm, patch tokens    |
| text encoder    | openai/clip-vit-large-patch14       | projected end-of-text embedding (not normalised) |
| relative depth  | LiheYoung/depth-anything-small-hf   | `predicted_depth` as is (relative inverse depth) |

Frozen means: no parameter requires a gradient, the modules stay in eval mode, and their forward
passes never build an autograd graph, even while the head trains.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import WeightsError
from .config import PATCH_SIZE

DEFAULT_IMAGE_ENCODER = "facebook/dinov2-large"
DEFAULT_TEXT_ENCODER = "openai/clip-vit-large-patch14"
DEFAULT_DEPTH_MODEL = "LiheYoung/depth-anything-small-hf"
CLIP_CONTEXT_LENGTH = 77


def is_offline() -> bool:
    """Offline when the user says so, through Hugging Face's variable or ours."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TR2M_OFFLINE"))


def resolve_source(source: str | Path, base_dir: str | Path | None = None) -> str:
    """A local folder (absolute, or relative to `base_dir` — a model folder — or to the working
    directory) becomes an absolute path; anything else is taken for a Hugging Face id."""
    text = str(source)
    candidates = []
    if base_dir is not None and not Path(text).is_absolute():
        candidates.append(Path(base_dir) / text)
    candidates.append(Path(text).expanduser())
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    if text.startswith((".", "/", "~")) or text.endswith(("/", os.sep)):
        raise WeightsError(f"{text}: no such folder")
    return text


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars for the duration of a load; the
    user's own logging settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


DOWNLOAD_ADVICE = (
    "run `tr2m weights download MODEL` on a connected machine and copy its cache (HF_HOME), "
    "or pass a local folder saved with save_pretrained"
)


def _load_failure(role: str, source: str, exc: BaseException, advice: str = DOWNLOAD_ADVICE) -> WeightsError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if Path(source).is_dir():
        return WeightsError(f"{role} folder {source}: cannot be loaded: {first}")
    from huggingface_hub import constants

    if is_offline():
        return WeightsError(
            f"{role} '{source}' is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"HF_HUB_OFFLINE/TR2M_OFFLINE is set: {advice}"
        )
    return WeightsError(
        f"{role} '{source}' is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and could "
        f"not be fetched ({first}): {advice}"
    )


def _from_pretrained(role: str, source: str, loader, *, advice: str = DOWNLOAD_ADVICE, **kwargs):
    """`loader(source)` (a transformers `from_pretrained`) with the offline rules, its failures
    turned into one line that says what is missing and `advice` on how to get it."""
    with quiet_transformers():
        try:
            return loader(source, local_files_only=is_offline() or Path(source).is_dir(), **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise _load_failure(role, source, exc, advice) from None


def freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class FrozenModule(nn.Module):
    """Stays in eval mode whatever `.train()` is called with (dropout and the like stay off)."""

    def train(self, mode: bool = True) -> "FrozenModule":
        return super().train(False)


class ImageEncoder(FrozenModule):
    """DINOv2: patch tokens of the last layer after the final LayerNorm (class and register
    tokens dropped)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = freeze(model)
        self.skip_tokens = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
        self.patch_size = int(model.config.patch_size)

    @property
    def channels(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = (pixel_values.shape[-2] // self.patch_size, pixel_values.shape[-1] // self.patch_size)
        hidden = self.model(pixel_values=pixel_values).last_hidden_state
        return hidden[:, self.skip_tokens :], grid


class TextEncoder(FrozenModule):
    """CLIP text tower: the projected end-of-text embedding, 77 tokens, truncating longer text."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model = freeze(model)
        self.tokenizer = tokenizer
        self.max_length = min(CLIP_CONTEXT_LENGTH, int(model.config.max_position_embeddings))

    @property
    def channels(self) -> int:
        return int(self.model.config.projection_dim)

    def token_counts(self, captions: Sequence[str]) -> list[int]:
        """Tokens each caption needs, start and end included: above 77 the text is truncated."""
        encoded = self.tokenizer(list(captions), truncation=False, padding=False)
        return [len(ids) for ids in encoded["input_ids"]]

    @torch.no_grad()
    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            list(captions),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return self.model(**tokens).text_embeds


class RelativeDepthModel(FrozenModule):
    """Depth Anything: `predicted_depth`, a relative inverse depth (≥ 0, larger is nearer)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = freeze(model)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        depth = self.model(pixel_values=pixel_values).predicted_depth
        if depth.ndim == 4:
            depth = depth[:, 0]
        return depth


def _check_type(role: str, source: str, config, allowed: tuple[str, ...]) -> None:
    if config.model_type not in allowed:
        raise WeightsError(
            f"{role} '{source}' is a {config.model_type!r} model; TR2M needs one of: {', '.join(allowed)}"
        )


def load_image_encoder(source: str | Path, base_dir: str | Path | None = None) -> ImageEncoder:
    from transformers import AutoConfig, AutoModel

    source = resolve_source(source, base_dir)
    config = _from_pretrained("image encoder", source, AutoConfig.from_pretrained)
    _check_type("image encoder", source, config, ("dinov2", "dinov2_with_registers"))
    if int(config.patch_size) != PATCH_SIZE:
        raise WeightsError(f"image encoder '{source}' uses {config.patch_size}-pixel patches; TR2M needs {PATCH_SIZE}")
    model = _from_pretrained("image encoder", source, AutoModel.from_pretrained, config=config)
    return ImageEncoder(model)


def load_text_encoder(source: str | Path, base_dir: str | Path | None = None) -> TextEncoder:
    from transformers import AutoConfig, AutoTokenizer, CLIPTextModelWithProjection

    source = resolve_source(source, base_dir)
    config = _from_pretrained("text encoder", source, AutoConfig.from_pretrained)
    _check_type("text encoder", source, config, ("clip", "clip_text_model"))
    if config.model_type == "clip":
        # A full CLIP checkpoint (as openai/clip-vit-large-patch14 is): take its text tower, whose
        # projection width is recorded on the outer config.
        projection_dim = config.projection_dim
        config = config.text_config
        config.projection_dim = projection_dim
    model = _from_pretrained("text encoder", source, CLIPTextModelWithProjection.from_pretrained, config=config)
    tokenizer = _from_pretrained("text tokenizer", source, AutoTokenizer.from_pretrained)
    return TextEncoder(model, tokenizer)


def load_depth_model(source: str | Path, base_dir: str | Path | None = None) -> RelativeDepthModel:
    from transformers import AutoConfig, AutoModelForDepthEstimation

    source = resolve_source(source, base_dir)
    config = _from_pretrained("relative depth model", source, AutoConfig.from_pretrained)
    model = _from_pretrained(
        "relative depth model", source, AutoModelForDepthEstimation.from_pretrained, config=config
    )
    return RelativeDepthModel(model)
