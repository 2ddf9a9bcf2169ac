"""Evaluation previews: photo | ground truth | prediction, the two depths on one colour scale.

Deliberately simple (a PNG per image, a fixed colour ramp, no colour bar): a quick look at what
the numbers mean. Depth files for real use are the saved .npy predictions (float32 metres).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.protocol import EvalProtocol
from ..io.atomic import atomic_path

# A perceptually ordered dark-to-bright ramp (near: bright, far: dark), interpolated linearly.
_RAMP = np.array(
    [[252, 253, 191], [252, 137, 97], [222, 73, 104], [140, 41, 129], [59, 15, 112], [0, 0, 4]], dtype=np.float64
)


def colourise(depth: np.ndarray, low: float, high: float, valid: np.ndarray | None = None) -> np.ndarray:
    """HxW depth → HxWx3 uint8; depth ≤ low is the bright end, ≥ high the dark end, invalid black."""
    t = np.clip((np.asarray(depth, dtype=np.float64) - low) / max(high - low, 1e-12), 0, 1) * (len(_RAMP) - 1)
    index = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    frac = (t - index)[..., None]
    rgb = _RAMP[index] * (1 - frac) + _RAMP[index + 1] * frac
    if valid is not None:
        rgb[~valid] = 0
    return rgb.round().astype(np.uint8)


def write_preview(
    path: Path, image: np.ndarray, depth: np.ndarray, valid: np.ndarray, pred: np.ndarray, protocol: EvalProtocol
) -> None:
    from PIL import Image

    shown = valid & (depth > protocol.min_depth) & (depth < protocol.max_depth)
    if shown.any():
        low, high = np.percentile(depth[shown], [2, 98])
    else:
        low, high = protocol.min_depth, protocol.max_depth
    height, width = depth.shape
    photo = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    pred = np.nan_to_num(pred, nan=protocol.min_depth, posinf=protocol.max_depth)
    panel = np.concatenate([photo, colourise(depth, low, high, shown), colourise(pred, low, high)], axis=1)
    with atomic_path(path) as temp:
        Image.fromarray(panel).save(temp)
