"""The one shape every dataset returns, so evaluation and training never see a native format."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DepthSample:
    """One RGB-D frame with its captions.

    image: HxWx3 uint8 RGB, as stored (any crop the protocol needs is applied later).
    depth: HxW float32 ground truth in **metres**, already decoded from the native encoding.
    valid: HxW bool, True where the ground truth may be used (native invalid markers and dataset
           masks applied; the evaluation range and crop are applied by the protocol, not here).
    captions: the image's descriptions; evaluation uses line 0, training a random line.
    key: a stable id relative to the dataset root (also the key of caption mapping files).
    """

    image: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    captions: list[str]
    key: str
    dataset: str
    focal_px: float | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"{self.key}: image must be HxWx3 uint8, got {self.image.shape} {self.image.dtype}")
        if self.depth.shape != self.image.shape[:2] or self.valid.shape != self.depth.shape:
            raise ValueError(
                f"{self.key}: image {self.image.shape[:2]}, depth {self.depth.shape} and valid "
                f"{self.valid.shape} must share one size"
            )
