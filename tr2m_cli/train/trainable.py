"""What training updates, and the momentum copy the contrast loss reads its keys from.

- `ScaleProjector`: the contrast's projector on the fused token grid (two 1×1 convs, ReLU,
  max-pooling; spec §4: ≈0.19 M parameters at the released width).
- `MomentumKeyBranch`: an exponential moving average (EMA) of the head's fusion (text alignment
  + fusion block) and of the projector; it never receives gradients.
- `TrainableParts`: the head and the projector as one module, the unit that DDP wraps and AdamW
  updates; the frozen encoders stay outside it.
- `initialise_head`: how a new head starts.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..model.head import ScaleShiftHead, fuse_tokens
from ..model.tr2m import TR2M, Tr2mOutput


def autocast(device: torch.device, precision: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for the trainable parts, as `TR2M.decode` runs them."""
    if precision == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision)


class ScaleProjector(nn.Module):
    """1×1 conv → ReLU → 2×2 max-pool → 1×1 conv on the fused token grid [B, C, h, w].

    At C = 1024 the default widths (160, 160) give 189,760 parameters, the paper's ≈0.19 M (the
    paper gives the count, not the widths: ours). Pooling halves the grid, which also quarters
    the pixel pairs the contrast compares.
    """

    def __init__(self, in_channels: int, hidden: int = 160, out_channels: int = 160) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, hidden, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.project = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, grid_features: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(F.relu(self.reduce(grid_features))))


class MomentumKeyBranch(nn.Module):
    """EMA copy of (text alignment, fusion, projector): key features for the contrast loss.

    It starts as an exact copy and follows the trained modules with `update` after every
    optimiser step: key = m·key + (1 − m)·query, m = 0.99 (paper; MoCo/PixPro style).
    """

    def __init__(self, head: ScaleShiftHead, projector: ScaleProjector) -> None:
        super().__init__()
        self.text_align = copy.deepcopy(head.text_align)
        self.fusion = copy.deepcopy(head.fusion)
        self.projector = copy.deepcopy(projector)
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    @staticmethod
    def _tracked(text_align: nn.Module | None, fusion: nn.Module, projector: nn.Module) -> list[tuple[str, nn.Parameter]]:
        modules = {"text_align": text_align, "fusion": fusion, "projector": projector}
        return [
            (f"{name}.{key}", parameter)
            for name, module in modules.items()
            if module is not None
            for key, parameter in module.named_parameters()
        ]

    @torch.no_grad()
    def forward(
        self,
        image_tokens: torch.Tensor,
        text_embeds: torch.Tensor,
        grid: tuple[int, int],
        precision: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        with autocast(image_tokens.device, precision):
            fused = fuse_tokens(self.text_align, self.fusion, image_tokens, text_embeds, grid)
        return self.projector(fused.float())

    @torch.no_grad()
    def update(self, head: ScaleShiftHead, projector: ScaleProjector, momentum: float) -> None:
        keys = self._tracked(self.text_align, self.fusion, self.projector)
        queries = self._tracked(head.text_align, head.fusion, projector)
        if [name for name, _ in keys] != [name for name, _ in queries]:
            raise RuntimeError("the momentum branch no longer mirrors the head's fusion and projector")
        for (_, key), (_, query) in zip(keys, queries):
            key.mul_(momentum).add_(query.detach(), alpha=1.0 - momentum)


class TrainableParts(nn.Module):
    """Head + projector: what the optimiser updates and DDP synchronises.

    The forward pass runs `TR2M.decode` (the exact inference path, autocast included) on
    pre-computed encoder outputs. The TR2M module is held outside the module tree on purpose:
    its frozen encoders must not be registered with DDP (which would broadcast them at start-up
    and look for their gradients); the head *is* registered, as `head`.
    """

    def __init__(self, model: TR2M, projector: ScaleProjector | None) -> None:
        super().__init__()
        self.head = model.head
        self.projector = projector
        self._model = (model,)

    def forward(
        self,
        image_tokens: torch.Tensor,
        grid: tuple[int, int],
        relative_depth: torch.Tensor,
        text_embeds: torch.Tensor,
    ) -> tuple[Tr2mOutput, torch.Tensor | None]:
        output = self._model[0].decode(image_tokens, grid, relative_depth, text_embeds)
        queries = self.projector(output.fused_features.float()) if self.projector is not None else None
        return output, queries


def initialise_head(head: ScaleShiftHead, scheme: str = "pytorch") -> ScaleShiftHead:
    """Give a new head its starting weights.

    `pytorch` (default, ours): torch's own initialisation of every layer, which starts the
    scale and shift maps near their 0.01 coefficient. `kaiming`: the reference's initialisation
    (spec §3: kaiming-normal convs, xavier linears, zero biases; `ScaleShiftHead.reset_parameters`),
    which starts the output maps at extreme values (exp of ±tens, so A and B span ~1e-20..1e20),
    a poor start for log-space losses.
    """
    if scheme == "kaiming":
        head.reset_parameters()
        return head
    if scheme != "pytorch":
        raise ValueError(f"unknown head init '{scheme}'")
    # Children before parents, as construction does: attention blocks then re-zero their
    # output-projection bias, which a plain Linear reset would have drawn at random.
    for module in reversed(list(head.modules())):
        if module is head:
            continue
        if isinstance(module, nn.MultiheadAttention):
            module._reset_parameters()
        elif hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return head
