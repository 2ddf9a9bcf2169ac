"""Temporal stabilisation: the scale and shift maps of a clip, smoothed over time.

TR2M turns relative inverse depth D_r into metric depth with two per-pixel maps,
depth = 1 / (A ⊙ D_r + B). On video, A and B are predicted afresh for every frame, and Depth
Anything's D_r has no fixed scale from one frame to the next (it is trained to be right only up
to scale and shift), so small changes between frames (noise, compression, a passing hand) make
the metric scale of the whole frame flicker. The scene's scale does not change from one frame to
the next; the geometry and its edges are in the pattern of D_r. So we smooth what sets the scale
and leave D_r's pattern alone: scale stops flickering while depth edges stay exactly as sharp as
in a single frame.

Method (causal, so frames can be written as they are computed), per frame t:

    log Ã_t = log Ã_{t-1} + α_t · (log A_t − log Ã_{t-1})        per pixel, network size
    log B̃_t = log B̃_{t-1} + α_t · (log B_t − log B̃_{t-1})        per pixel
    log ℓ̃_t = log ℓ̃_{t-1} + α_t · (log ℓ_t − log ℓ̃_{t-1})        ℓ_t = median of D_r > 0
    α_t = 1 − exp(−Δt / τ)
    depth_t = 1 / (Ã_t · (ℓ̃_t / ℓ_t) ⊙ D_r,t + B̃_t)

- In **log space** because A, B and ℓ are positive scale factors: the average of ×2 and ×0.5
  should be ×1, and the result stays positive.
- **ℓ**, D_r's level, is smoothed like A because TR2M's head predicts A and B from the photo and
  caption without seeing D_r: a frame-to-frame change in Depth Anything's arbitrary scale would
  pass straight into metric depth. Rescaling each D_r to the smoothed level removes it; the
  pattern of D_r (what is nearer than what) is untouched.
- **Δt** is the time since the previous converted frame (timestamps where the clip has them, so
  dropped frames and `--every N` are handled), and **τ**, the time constant, is in seconds or
  frames. A change in the scene's scale reaches 63 % of its full size after τ, 95 % after 3τ. A
  frame after a gap much longer than τ is hardly smoothed at all.
- **Reset** at scene cuts (and at the first frame): the new scene's maps are taken as they are.
- A single photo is never passed through this: its depth is what `predict` gives.

It is an exponential moving average: one parameter, no lookahead. For noise that is independent
from frame to frame, the frame-to-frame change of a smoothed quantity is α/√(2 − α) of the raw
one: about 7× smaller for τ = 5 frames (α = 0.18), 21× for τ = 15 frames (0.5 s at 30 fps). The
price is lag: when the camera turns from a close wall to a long corridor, the scale follows within
about 3τ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError
from .frames import Position

DEFAULT_TIME_CONSTANT = Position(0.5, "s")


@dataclass(frozen=True)
class StabilizeOptions:
    """`enabled`: smooth clips (never single photos). `time_constant`: τ, a Position in seconds
    (`0.5s`) or frames (`15`); clips without timestamps or a frame rate count frames, converting
    seconds with `fallback_fps`."""

    enabled: bool = True
    time_constant: Position = DEFAULT_TIME_CONSTANT
    fallback_fps: float = 30.0

    def __post_init__(self) -> None:
        if not self.time_constant.value > 0:
            raise InputError(f"--smoothing {self.time_constant}: the time constant must be positive")

    def tau_in(self, unit: str, fps: float | None) -> float:
        """τ in seconds (`unit == "s"`) or frames, converting with the clip's frame rate."""
        if self.time_constant.unit == unit:
            return self.time_constant.value
        rate = fps or self.fallback_fps
        return self.time_constant.value * rate if unit == "frame" else self.time_constant.value / rate

    def describe(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "method": (
                "exponential moving average in log space of the scale map and shift map (per pixel) and of "
                "the relative depth's median, reset at scene cuts"
            ),
            "time_constant": str(self.time_constant),
        }


def smoothing_weight(dt: float, tau: float) -> float:
    """α = 1 − exp(−Δt/τ): the weight of the newest frame; 1 for a gap much longer than τ."""
    if dt <= 0:
        return 0.0
    return -math.expm1(-dt / tau)


def relative_level(relative_depth: torch.Tensor) -> torch.Tensor | None:
    """ℓ: the median of the positive relative depth (None for a frame with none, e.g. black)."""
    positive = relative_depth[relative_depth > 0]
    if positive.numel() == 0:
        return None
    return positive.float().median()


class TemporalStabilizer:
    """Smooths one clip's scale and shift maps frame by frame (see the module docstring).

    `time_constant` is τ in the unit of the `time` values passed to `update` (seconds or frame
    indices)."""

    def __init__(self, time_constant: float) -> None:
        if not time_constant > 0:
            raise InputError(f"time constant {time_constant}: must be positive")
        self.time_constant = float(time_constant)
        self.log_scale: torch.Tensor | None = None
        self.log_shift: torch.Tensor | None = None
        self.log_level: torch.Tensor | None = None
        self.time: float | None = None
        self.index: int | None = None  # the last frame folded in: where a resumed run picks up

    def reset(self) -> None:
        self.log_scale = self.log_shift = self.log_level = None
        self.time = None

    def update(
        self,
        scale_map: torch.Tensor,
        shift_map: torch.Tensor,
        relative_depth: torch.Tensor,
        time: float,
        *,
        cut: bool = False,
        index: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold in this frame's maps (A, B > 0 and D_r ≥ 0, all the same shape); returns the
        scale and shift maps to use with this frame's own D_r: depth = 1 / (scale · D_r + shift)."""
        log_scale, log_shift = torch.log(scale_map.float()), torch.log(shift_map.float())
        level = relative_level(relative_depth)
        log_level = None if level is None else torch.log(level)
        same_shape = self.log_scale is not None and self.log_scale.shape == log_scale.shape
        if cut or not same_shape or self.time is None:
            self.log_scale, self.log_shift, self.log_level = log_scale, log_shift, log_level
        else:
            alpha = smoothing_weight(time - self.time, self.time_constant)
            self.log_scale = torch.lerp(self.log_scale.to(log_scale.device), log_scale, alpha)
            self.log_shift = torch.lerp(self.log_shift.to(log_shift.device), log_shift, alpha)
            if log_level is not None:
                previous = log_level if self.log_level is None else self.log_level.to(log_level.device)
                self.log_level = torch.lerp(previous, log_level, alpha)
        self.time = float(time)
        self.index = index
        scale = torch.exp(self.log_scale)
        if log_level is not None and self.log_level is not None:
            scale = scale * torch.exp(self.log_level - log_level)  # D_r brought to the smoothed level
        return scale.to(scale_map.dtype), torch.exp(self.log_shift).to(shift_map.dtype)

    # -- resuming a clip exactly where a killed run stopped --------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for safetensors: the smoothed log maps and where they stand."""
        if self.log_scale is None:
            return {}
        state = {
            "log_scale": self.log_scale.detach().float().cpu().contiguous(),
            "log_shift": self.log_shift.detach().float().cpu().contiguous(),
            "time": torch.tensor([self.time], dtype=torch.float64),
            "index": torch.tensor([-1 if self.index is None else self.index], dtype=torch.int64),
            "time_constant": torch.tensor([self.time_constant], dtype=torch.float64),
        }
        if self.log_level is not None:
            state["log_level"] = self.log_level.detach().float().cpu().reshape(1)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            self.reset()
            self.index = None
            return
        if abs(float(state["time_constant"][0]) - self.time_constant) > 1e-9:
            raise InputError("the saved smoothing state was made with another time constant")
        self.log_scale, self.log_shift = state["log_scale"].float(), state["log_shift"].float()
        self.log_level = state["log_level"].float()[0] if "log_level" in state else None
        self.time = float(state["time"][0])
        index = int(state["index"][0])
        self.index = None if index < 0 else index
