"""Synthetic RGB-D scenes whose depth is a known function of the image, to try the training
loop (tests, benchmarks, a first run) without downloading a dataset.

Each scene is a plane seen from the front and tilted away: depth grows linearly from the bottom
row to the top, from `near` to `far` metres, both drawn per scene. The image encodes depth in its
brightness and the distance in stripes whose period shrinks with depth, so a model can learn the
metric scale from the picture; the caption states the depth range in words. A few pixels have no
ground truth, as in real sensors.

    scenes = SyntheticScenes(32, size=(56, 70))
    train(TrainOptions(out="runs/try", datasets=("synthetic",), model="tiny-model", input_size=(56, 70)),
          datasets={"synthetic": scenes})
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data import DepthSample, EvalProtocol


class SyntheticScenes(Sequence[DepthSample]):
    def __init__(
        self,
        count: int,
        *,
        size: tuple[int, int] = (56, 70),
        seed: int = 0,
        name: str = "synthetic",
        input_size: tuple[int, int] | None = None,
        invalid_fraction: float = 0.1,
    ) -> None:
        self.count, self.size, self.seed, self.name = count, tuple(size), seed, name
        self.invalid_fraction = invalid_fraction
        # Used whole, ground truth between 0.1 and 10 m; input_size None: 434×560 for training,
        # the model's token budget for evaluation.
        self.protocol = EvalProtocol(name=name, min_depth=0.1, max_depth=10.0, input_size=input_size)
        self.split = "train"

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> DepthSample:  # type: ignore[override]
        if not 0 <= index < self.count:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        height, width = self.size
        near = float(rng.uniform(0.5, 4.0))
        far = near + float(rng.uniform(0.5, 4.0))
        rows = np.linspace(far, near, height, dtype=np.float32)[:, None]
        depth = np.repeat(rows, width, axis=1)
        cols = np.arange(width, dtype=np.float32)[None, :]
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * cols / (4.0 + 3.0 * depth))
        brightness = 1.0 - depth / 10.0
        tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
        image = np.stack([brightness * (0.7 + 0.3 * stripes) * t for t in tint], axis=-1)
        valid = rng.random((height, width)) >= self.invalid_fraction
        captions = [
            f"A flat wall tilted away, from {near:.1f} to {far:.1f} metres.",
            f"A plane seen from {round(near)} metres away.",
        ]
        return DepthSample(
            image=(np.clip(image, 0, 1) * 255).round().astype(np.uint8),
            depth=depth.astype(np.float32),
            valid=valid,
            captions=captions,
            key=f"scene-{index:05d}",
            dataset=self.name,
        )
