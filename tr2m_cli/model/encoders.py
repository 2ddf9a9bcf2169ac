"""The three frozen encoders, wrapped so they compute what the authors' pipeline computes.

| role            | default id                          | what TR2M uses                                   |
|-----------------|-------------------------------------|--------------------------------------------------|
| image encoder   | facebook/dinov2-large               | last layer after the final norm, patch tokens    |
| text encoder    | openai/clip-vit-large-patch14       | projected end-of-text embedding (not normalised) |
| relative depth  | LiheYoung/depth-anything-small-hf   | `predicted_depth` as is (relative inverse depth) |

Frozen means: no parameter requires a gradient, the modules stay in eval mode, and their forward
passes never build an autograd graph, even while the head trains.

The Hugging Face ports hold the authors' weights but compute two things differently from the code
the released head was trained with (spec §2); the wrappers put the reference computation back:

- **Position embeddings.** The reference DINOv2 (torch.hub, and the copy inside Depth Anything
  v1) resizes its N×N position grid bicubically by `scale_factor=((h/14 + 0.1)/N, (w/14 + 0.1)/N)`;
  transformers' `Dinov2Embeddings` asks for the output *size* instead, which samples the grid at
  other places at every input size but the stored one. `use_reference_position_embeddings`
  patches the embeddings modules of the models we load (never the transformers class).
  DINOv2 *with registers* is left alone: its reference (`dinov2_vit*14_reg`) uses the size and
  antialiasing, which is what transformers does.
- **Caption cleaning.** OpenAI's tokenizer runs ftfy, unescapes HTML twice and collapses
  whitespace before BPE; transformers' CLIPTokenizer does not (`clean_for_clip`).

Loading from hub ids or folders lives in `tr2m_cli.weights.load`; this module only builds modules.
"""

from __future__ import annotations

import html
import math
import re
import types
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_IMAGE_ENCODER = "facebook/dinov2-large"
DEFAULT_TEXT_ENCODER = "openai/clip-vit-large-patch14"
DEFAULT_DEPTH_MODEL = "LiheYoung/depth-anything-small-hf"
CLIP_CONTEXT_LENGTH = 77

# The reference adds 0.1 patch to the target grid before turning it into a scale factor (DINO's
# old guard against floating-point error in the output size); the sampling positions follow it.
POSITION_GRID_OFFSET = 0.1
_WHITESPACE = re.compile(r"\s+")


def clean_for_clip(caption: str) -> str:
    """A caption as OpenAI's CLIP tokenizer sees it before BPE: text repaired by ftfy (curly quotes
    straightened, ligatures split, full-width letters narrowed, mojibake undone), HTML entities
    unescaped twice (`&amp;amp;` → `&`), runs of whitespace made one space, ends stripped.
    Lower-casing is left to the tokenizer, which does it too."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(str(caption)))).strip()
    return _WHITESPACE.sub(" ", text).strip()


def clip_token_ids(tokenizer, captions: Sequence[str]) -> list[list[int]]:
    """Each caption's token ids as CLIP reads them: cleaned (`clean_for_clip`), start and end
    tokens included, not truncated (the text encoder reads the first 77)."""
    encoded = tokenizer([clean_for_clip(c) for c in captions], truncation=False, padding=False)
    return [list(ids) for ids in encoded["input_ids"]]


def reference_position_embeddings(embeddings: nn.Module, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """DINOv2's position embeddings for a `height`×`width` input, computed as the reference
    DINOv2 computes them. Bound to an embeddings module as its `interpolate_pos_encoding`."""
    stored = embeddings.position_embeddings
    patches = tokens.shape[1] - 1
    positions = stored.shape[1] - 1
    if patches == positions and height == width:
        return stored
    side = math.isqrt(positions)
    if side * side != positions:
        raise ValueError(f"position grid of {positions} entries is not square")
    patch_height, patch_width = embeddings.patch_embeddings.patch_size
    rows, cols = height // patch_height, width // patch_width
    dim = tokens.shape[-1]
    table = stored.float()  # bicubic in half precision would move the embeddings
    grid = table[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        scale_factor=((rows + POSITION_GRID_OFFSET) / side, (cols + POSITION_GRID_OFFSET) / side),
        mode="bicubic",
        align_corners=False,
    )
    if tuple(grid.shape[-2:]) != (rows, cols):
        raise ValueError(f"position grid resized to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)
    return torch.cat((table[:, :1], grid), dim=1).to(tokens.dtype)


def use_reference_position_embeddings(model: nn.Module) -> int:
    """Make every plain DINOv2 embeddings module inside `model` (this instance only) interpolate
    its position grid as the reference does. Returns how many modules were patched."""
    from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings

    patched = 0
    for module in model.modules():
        if type(module) is Dinov2Embeddings:  # exact type: the registers variant keeps its own
            module.interpolate_pos_encoding = types.MethodType(reference_position_embeddings, module)
            patched += 1
    return patched


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
        use_reference_position_embeddings(model)
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
    """CLIP text tower: the projected end-of-text embedding, 77 tokens, truncating longer text.
    Captions are cleaned as OpenAI's tokenizer cleans them (`clean_for_clip`) before tokenising."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model = freeze(model)
        self.tokenizer = tokenizer
        self.max_length = min(CLIP_CONTEXT_LENGTH, int(model.config.max_position_embeddings))

    @property
    def channels(self) -> int:
        return int(self.model.config.projection_dim)

    def token_ids(self, captions: Sequence[str]) -> list[list[int]]:
        """The token ids of each cleaned caption, start and end included, not truncated."""
        return clip_token_ids(self.tokenizer, captions)

    def token_counts(self, captions: Sequence[str]) -> list[int]:
        """Tokens each caption needs once cleaned, start and end included: above 77 the text
        encoder reads only the first 77."""
        return [len(ids) for ids in self.token_ids(captions)]

    @torch.no_grad()
    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            [clean_for_clip(c) for c in captions],
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return self.model(**tokens).text_embeds


class RelativeDepthModel(FrozenModule):
    """Depth Anything: `predicted_depth`, a relative inverse depth (≥ 0, larger is nearer). Its
    DINOv2 backbone interpolates position embeddings as the reference's copy of DINOv2 does."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = freeze(model)
        use_reference_position_embeddings(model)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        depth = self.model(pixel_values=pixel_values).predicted_depth
        if depth.ndim == 4:
            depth = depth[:, 0]
        return depth


