"""Interim: the inference core's interface for clips, until `model.inference.DepthPredictor`
(issue 10) is on this branch's main. When it is, `clip_predictor` returns a DepthPredictor with
the ClipSmoother as its `adjust` hook and this module goes.

The interface is the core's: `prepare(rgb)` → a network input (`pixels`, `size`,
`network_size`); `stream(requests)` → results (`request`, `prediction` with `depth` and the maps,
`error`, `exception`, `seconds`) batch by batch, by network size, halving a batch that runs out of
memory; `batch_size`, `out_of_memory_events`, `times`. The numbers are those of
`TR2M.predict_batch` on the same frame (the same preprocessing, resize back and units).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch


@dataclass
class NetworkInput:
    pixels: torch.Tensor | None  # [3, h, w] ImageNet-normalised at network_size
    size: tuple[int, int]
    network_size: tuple[int, int]


@dataclass
class Prediction:
    depth: np.ndarray
    relative_depth: np.ndarray | None = None
    scale_map: np.ndarray | None = None
    shift_map: np.ndarray | None = None


@dataclass
class DepthRequest:
    photo: NetworkInput
    caption: str
    output_size: tuple[int, int] | None = None
    tag: Any = None
    name: str = ""


@dataclass
class DepthResult:
    request: DepthRequest
    prediction: Prediction | None
    error: str | None = None
    exception: BaseException | None = None
    seconds: float = 0.0

    @property
    def depth(self) -> np.ndarray | None:
        return None if self.prediction is None else self.prediction.depth


class ClipPredictor:
    """TR2M on a clip's frames, with an `adjust(requests, output)` hook between the network and
    the resize to each frame (where smoothing happens)."""

    def __init__(
        self,
        model,
        *,
        batch_size: int = 4,
        size=None,
        domain: str | None = None,
        return_maps: bool = False,
        adjust: Callable[[Sequence[DepthRequest], Any], Any] | None = None,
        times=None,
    ) -> None:
        from ..convert.batching import StageTimes
        from ..model.tr2m import as_size_policy

        self.model = model
        self.batch_size = int(batch_size)
        self.policy = as_size_policy(size, model.size_policy)
        self.metres_per_unit = model.spec.metres_per_output_unit(domain)
        self.return_maps = return_maps
        self.adjust = adjust
        self.times = times or StageTimes()
        self.out_of_memory_events = 0
        self._text: OrderedDict[str, torch.Tensor] = OrderedDict()

    def prepare(self, rgb: np.ndarray) -> NetworkInput:
        """An HxWx3 uint8 frame → its network input, as convert decodes a photo of that size
        (box-reduced by a whole factor when over twice the network size, then normalised and
        resized bilinearly with align_corners=True)."""
        from PIL import Image

        from ..model.preprocess import normalize_and_resize, to_float_tensor

        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        network_size = self.policy.network_size(*size)
        factor = min(size[0] // (2 * network_size[0]), size[1] // (2 * network_size[1]))
        if factor >= 2:
            rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).reduce(factor))
        pixels = normalize_and_resize(to_float_tensor(np.ascontiguousarray(rgb))[None], network_size)[0]
        return NetworkInput(pixels, size, network_size)

    def _embeddings(self, captions: Sequence[str]) -> torch.Tensor:
        new = [c for c in dict.fromkeys(captions) if c not in self._text]
        if new:
            for caption, embed in zip(new, self.model.encode_text(new)):
                self._text[caption] = embed
        while len(self._text) > 64:
            self._text.popitem(last=False)
        return torch.stack([self._text[c] for c in captions])

    @torch.inference_mode()
    def stream(self, requests: Iterable[DepthRequest]) -> Iterator[DepthResult]:
        buckets: OrderedDict[tuple[int, int], list[DepthRequest]] = OrderedDict()
        for request in requests:
            bucket = buckets.setdefault(request.photo.network_size, [])
            bucket.append(request)
            if len(bucket) >= self.batch_size:
                del buckets[request.photo.network_size]
                yield from self.run_batch(bucket)
        for bucket in buckets.values():
            for start in range(0, len(bucket), self.batch_size):
                yield from self.run_batch(bucket[start : start + self.batch_size])

    @torch.inference_mode()
    def run_batch(self, requests: Sequence[DepthRequest]) -> list[DepthResult]:
        from ..convert.batching import is_out_of_memory

        start = time.perf_counter()
        try:
            predictions = self._forward(requests)
        except Exception as exc:  # noqa: BLE001 - one batch's failure must not end the run
            if is_out_of_memory(exc):
                self.out_of_memory_events += 1
                if self.model.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(requests) > 1:
                    half = len(requests) // 2
                    self.batch_size = max(1, min(self.batch_size, half))
                    return self.run_batch(requests[:half]) + self.run_batch(requests[half:])
                message = "out of memory even alone: try a smaller --resolution or --device cpu"
            else:
                detail = (str(exc).strip().splitlines() or [""])[0]
                message = f"model failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            return [DepthResult(r, None, f"{r.name}: {message}" if r.name else message, exc) for r in requests]
        share = (time.perf_counter() - start) / len(requests)
        return [DepthResult(r, p, seconds=share) for r, p in zip(requests, predictions)]

    def _forward(self, requests: Sequence[DepthRequest]) -> list[Prediction]:
        from ..model.preprocess import resize_to

        model = self.model
        with self.times.measure("text"):
            text = self._embeddings([r.caption for r in requests])
        pixels = torch.stack([r.photo.pixels for r in requests]).to(model.device)
        with self.times.measure("network"):
            out = model(pixels, text)
            if self.adjust is not None:
                out = self.adjust(requests, out)
        factor = self.metres_per_unit
        predictions = []
        with self.times.measure("upsample"):
            for row, request in enumerate(requests):
                size = request.output_size or request.photo.size

                def at_size(tensor: torch.Tensor, scale: float = 1.0) -> np.ndarray:
                    resized = resize_to(tensor[row : row + 1].float(), tuple(size))[0] * scale
                    return resized.cpu().numpy().astype(np.float32, copy=False)

                if not self.return_maps:
                    predictions.append(Prediction(at_size(out.metric_depth, factor)))
                    continue
                # A and B for metres: depth_m = factor / (A·D + B) = 1 / ((A/factor)·D + B/factor).
                predictions.append(
                    Prediction(
                        at_size(out.metric_depth, factor),
                        at_size(out.relative_depth),
                        at_size(out.scale_map, 1.0 / factor),
                        at_size(out.shift_map, 1.0 / factor),
                    )
                )
        return predictions


def clip_predictor(model, **kwargs) -> ClipPredictor:
    """The predictor a clip runs through (see the module docstring)."""
    return ClipPredictor(model, **kwargs)
