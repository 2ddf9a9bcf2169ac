"""Running TR2M on a stream of photos in batches.

- Photos batch only with photos of the same network size (aspect-ratio buckets); a bucket runs
  when it holds a full batch, and the fullest runs early when too many photos wait, so folders of
  all-different shapes still move and memory stays bounded.
- Caption embeddings are computed once per distinct caption (kept in a bounded LRU cache).
- On out-of-memory the batch is split in halves and retried, and later batches use the smaller
  size; a single photo that still does not fit fails alone.
- Time spent in each stage is accumulated for the summary and the benchmark.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..model.preprocess import resize_to
from ..model.tr2m import TR2M
from .decode import DecodedPhoto

TEXT_CACHE_SIZE = 4096


class StageTimes:
    """Seconds per stage, summed over threads (decode and write run in parallel pools)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds

    @contextlib.contextmanager
    def measure(self, stage: str, sync: torch.device | None = None) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if sync is not None and sync.type == "cuda":
            torch.cuda.synchronize(sync)
        self.add(stage, time.perf_counter() - start)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {stage: round(seconds, 4) for stage, seconds in self._seconds.items()}


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class DepthResult:
    photo: DecodedPhoto
    depth: np.ndarray | None  # float32 [H, W] metres at the photo's size
    error: str | None = None
    seconds: float = 0.0  # this photo's share of the batch's model time


class DepthRunner:
    """TR2M on batches of same-size photos; `batch_size` shrinks after an out-of-memory."""

    def __init__(
        self,
        model: TR2M,
        batch_size: int,
        metres_per_unit: float = 1.0,
        times: StageTimes | None = None,
        stage_timing: bool = False,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.metres_per_unit = metres_per_unit
        self.times = times or StageTimes()
        self._sync = model.device if stage_timing else None
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.out_of_memory_events = 0

    def text_embeddings(self, captions: Sequence[str]) -> torch.Tensor:
        new = [c for c in dict.fromkeys(captions) if c not in self._text_cache]
        if new:
            with self.times.measure("text", self._sync):
                embeds = self.model.encode_text(new)
            for caption, embed in zip(new, embeds):
                self._text_cache[caption] = embed
                if len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        for caption in captions:
            self._text_cache.move_to_end(caption)
        return torch.stack([self._text_cache[c] for c in captions])

    def _forward(self, photos: Sequence[DecodedPhoto]) -> list[np.ndarray]:
        model, sync = self.model, self._sync
        text = self.text_embeddings([p.caption.text for p in photos])
        with self.times.measure("transfer", sync):
            pixels = torch.stack([p.pixels for p in photos]).to(model.device, non_blocking=True)
        with self.times.measure("image_encoder", sync):
            tokens, grid = model.encode_image(pixels)
        with self.times.measure("relative_depth", sync):
            relative = model.estimate_relative_depth(pixels)
        with self.times.measure("head", sync):
            metric = model.decode(tokens, grid, relative, text).metric_depth
        depths = []
        with self.times.measure("upsample", sync):
            for row, photo in enumerate(photos):
                depth = resize_to(metric[row : row + 1].float(), photo.size)[0] * self.metres_per_unit
                depths.append(depth.cpu().numpy().astype(np.float32, copy=False))
        return depths

    @torch.inference_mode()
    def run(self, photos: Sequence[DecodedPhoto]) -> list[DepthResult]:
        """Depth for photos that share a network size; never raises for a photo's failure."""
        start = time.perf_counter()
        try:
            depths = self._forward(photos)
        except Exception as exc:  # noqa: BLE001 - one batch's failure must not end the run
            if is_out_of_memory(exc):
                self.out_of_memory_events += 1
                self._free_memory()
                if len(photos) > 1:
                    half = len(photos) // 2
                    self.batch_size = max(1, min(self.batch_size, half))
                    return self.run(photos[:half]) + self.run(photos[half:])
                h, w = photos[0].network_size
                message = f"out of memory at network size {h}x{w} even alone: try a smaller --resolution or --device cpu"
            else:
                detail = (str(exc).strip().splitlines() or [""])[0]
                message = f"model failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            return [DepthResult(p, None, f"{p.image.path}: {message}") for p in photos]
        share = (time.perf_counter() - start) / len(photos)
        return [DepthResult(p, d, None, share) for p, d in zip(photos, depths)]

    def _free_memory(self) -> None:
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()


class SizeBuckets:
    """Collects photos by network size and hands out batches."""

    def __init__(self, runner: DepthRunner, max_waiting: int | None = None) -> None:
        self.runner = runner
        self.max_waiting = max_waiting
        self._buckets: OrderedDict[tuple[int, int], list[DecodedPhoto]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def _limit(self) -> int:
        return self.max_waiting or max(16, 4 * self.runner.batch_size)

    def add(self, photo: DecodedPhoto) -> list[list[DecodedPhoto]]:
        """Add a photo; returns the batches that are ready to run."""
        bucket = self._buckets.setdefault(photo.network_size, [])
        bucket.append(photo)
        ready = []
        if len(bucket) >= self.runner.batch_size:
            ready.append(self._take(photo.network_size, self.runner.batch_size))
        while self.waiting > self._limit():
            fullest = max(self._buckets, key=lambda size: len(self._buckets[size]))
            ready.append(self._take(fullest, self.runner.batch_size))
        return ready

    def _take(self, size: tuple[int, int], count: int) -> list[DecodedPhoto]:
        bucket = self._buckets[size]
        batch, rest = bucket[:count], bucket[count:]
        if rest:
            self._buckets[size] = rest
        else:
            del self._buckets[size]
        return batch

    def drain(self) -> list[list[DecodedPhoto]]:
        """Everything still waiting, in batches."""
        batches = []
        while self._buckets:
            size = next(iter(self._buckets))
            batches.append(self._take(size, self.runner.batch_size))
        return batches
