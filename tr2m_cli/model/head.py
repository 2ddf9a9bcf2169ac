"""The trainable part of TR2M: image–text fusion and the per-pixel scale and shift maps.

Read top to bottom beside the paper's figure (spec §3):

    text embedding ─ TextAlign ─┐
    image tokens ── FusionBlock (self-attention, cross-attention to the text, MLP)
                 ── Trunk (1×1 project, ×2 transposed conv, 3×3 conv, two residual units each
                    followed by a 1×1 conv and a ×2 bilinear upsampling)
                 ── OutputHead ×2 → scale map A, shift map B (both 0.01·exp(·) > 0)

Module names are ours; `checkpoint.py` maps them to the key names of the authors' release.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import PATCH_SIZE, HeadConfig


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU, which the released weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input precision (as CLIP does), so fp16/bf16
    inference normalises exactly as training did."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        out = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(x.dtype)


class TextAlign(nn.Module):
    """Maps the text embedding to the image-token width."""

    def __init__(self, text_channels: int, image_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(text_channels, image_channels)
        self.activation = QuickGELU()

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(text))


class FusionMLP(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(channels, hidden)
        self.activation = QuickGELU()
        self.fc_out = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.activation(self.fc_in(x)))


class FusionBlock(nn.Module):
    """Pre-norm transformer block: image self-attention, then cross-attention from the image
    tokens (queries) to the text token (key and value), then an MLP.

    With a single text token the cross-attention softmax is 1, so it adds one text-derived vector
    to every token; the query projections get no gradient. The layout is kept because the released
    weights need it.
    """

    def __init__(self, channels: int, heads: int, mlp_channels: int) -> None:
        super().__init__()
        self.norm_self = FP32LayerNorm(channels)
        self.self_attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm_image = FP32LayerNorm(channels)
        self.norm_text = FP32LayerNorm(channels)
        self.cross_attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm_mlp = FP32LayerNorm(channels)
        self.mlp = FusionMLP(channels, mlp_channels)

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor) -> torch.Tensor:
        x = image_tokens
        y = self.norm_self(x)
        x = x + self.self_attn(y, y, y, need_weights=False)[0]
        text = self.norm_text(text_tokens)
        x = x + self.cross_attn(self.norm_image(x), text, text, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class ResidualConvUnit(nn.Module):
    """ReLU → 3×3 conv → ReLU → 3×3 conv, plus the input (DPT's residual unit, no batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Trunk(nn.Module):
    """DPT-like decoder from the fused token grid (h×w) to features at 8h×8w."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        c, p, t = cfg.image_channels, cfg.projection_channels, cfg.trunk_channels
        self.project = nn.Conv2d(c, p, 1)
        self.upsample = nn.ConvTranspose2d(p, p, kernel_size=2, stride=2)
        self.conv_in = nn.Conv2d(p, t, 3, padding=1, bias=False)
        self.residual1 = ResidualConvUnit(t)
        self.out_conv1 = nn.Conv2d(t, t, 1)
        self.residual2 = ResidualConvUnit(t)
        self.out_conv2 = nn.Conv2d(t, t, 1)

    def forward(self, grid_features: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(self.upsample(self.project(grid_features)))
        x = _upsample2(self.out_conv1(self.residual1(x)))
        return _upsample2(self.out_conv2(self.residual2(x)))


class OutputHead(nn.Module):
    """One positive map: conv, resize to the network input size, conv, ReLU, conv, c·exp."""

    def __init__(self, cfg: HeadConfig, coefficient: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.trunk_channels, cfg.head_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(cfg.head_channels, cfg.head_hidden_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(cfg.head_hidden_channels, 1, 1)
        self.coefficient = coefficient

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(self.conv1(features), size=size, mode="bilinear", align_corners=True)
        logits = self.conv3(F.relu(self.conv2(x)))
        # exp in float32: fp16 overflows for logits above ~11, which would make the map infinite.
        return self.coefficient * torch.exp(logits.float())


@dataclass
class HeadOutput:
    """Scale and shift maps at the network input size, plus the fused features (for the
    scale-oriented contrast loss in training)."""

    scale_map: torch.Tensor  # [B, 1, H, W], > 0
    shift_map: torch.Tensor  # [B, 1, H, W], > 0
    fused_features: torch.Tensor  # [B, C, h, w], the token grid after image–text fusion


def fuse_tokens(
    text_align: TextAlign | None,
    fusion: FusionBlock,
    image_tokens: torch.Tensor,
    text_embeds: torch.Tensor,
    grid: tuple[int, int],
) -> torch.Tensor:
    """Image tokens [B, h·w, C] + text embedding [B, T] → fused token grid [B, C, h, w].

    A function of the two modules rather than a method, so training's momentum (EMA) copy of
    them runs exactly the same computation."""
    h, w = grid
    if image_tokens.shape[1] != h * w:
        raise ValueError(f"{image_tokens.shape[1]} image tokens do not fill a {h}×{w} grid")
    text = text_align(text_embeds) if text_align is not None else text_embeds
    fused = fusion(image_tokens, text[:, None, :].to(image_tokens.dtype))
    return fused.transpose(1, 2).reshape(fused.shape[0], fused.shape[2], h, w)


class ScaleShiftHead(nn.Module):
    """The whole trainable network (18,959,746 parameters at the released widths)."""

    def __init__(self, cfg: HeadConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = cfg or HeadConfig()
        self.text_align = TextAlign(cfg.text_channels, cfg.image_channels) if cfg.aligns_text else None
        self.fusion = FusionBlock(cfg.image_channels, cfg.attention_heads, cfg.mlp_channels)
        self.trunk = Trunk(cfg)
        self.scale_head = OutputHead(cfg, cfg.scale_coefficient)
        self.shift_head = OutputHead(cfg, cfg.shift_coefficient)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's initialisation: kaiming-normal convs and xavier-normal linears, zero
        biases (transposed convs and the attention in-projections keep torch's defaults)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def fuse(self, image_tokens: torch.Tensor, text_embeds: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The image–text fusion alone → the token grid [B, C, h, w] (what training's
        scale-oriented contrast reads)."""
        return fuse_tokens(self.text_align, self.fusion, image_tokens, text_embeds, grid)

    def forward(
        self,
        image_tokens: torch.Tensor,
        text_embeds: torch.Tensor,
        grid: tuple[int, int],
        output_size: tuple[int, int] | None = None,
    ) -> HeadOutput:
        """image_tokens [B, h·w, C] (row-major patch tokens), text_embeds [B, T]; the maps come
        out at `output_size`, by default the network input size (14h, 14w)."""
        h, w = grid
        grid_features = self.fuse(image_tokens, text_embeds, grid)
        features = self.trunk(grid_features)
        size = output_size or (h * PATCH_SIZE, w * PATCH_SIZE)
        return HeadOutput(
            scale_map=self.scale_head(features, size),
            shift_map=self.shift_head(features, size),
            fused_features=grid_features,
        )


def metric_from_relative(
    relative_depth: torch.Tensor, scale_map: torch.Tensor, shift_map: torch.Tensor
) -> torch.Tensor:
    """TR2M's transfer, D = 1 / (A·D_r + B), in float32.

    No clamp or epsilon: A, B > 0 and D_r ≥ 0, so the result lies in (0, 1/B].
    """
    return 1.0 / (scale_map.float() * relative_depth.float() + shift_map.float())
