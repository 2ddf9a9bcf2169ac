"""One clip through the inference core: what `predict_video` and `tr2m convert` both run.

- **Decoding ahead**: a background thread reads the clip's frames (a sequential job), finds scene
  cuts, and turns each frame into its network input while the model works on earlier ones.
- **One network size, full batches**: a clip's frames share their size, so the core's size
  buckets always fill.
- **One text embedding per caption**: the core's caption cache encodes the clip's caption (or
  each scene's) once.
- **Smoothing in frame order**: `ClipSmoother` is the core's `adjust` hook; it sees each batch's
  network-size maps in order and recomputes metric depth from the smoothed scale and shift maps
  before the core resizes depth to the frame and converts it to metres.
- **Damage**: a source that stops with FrameReadError (a damaged video) has every frame before
  the damage run and yielded first; then the error is raised.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .frames import Frame, FrameReadError, frame_time, read_ahead
from .scenes import SceneCutDetector
from .stabilize import StabilizeOptions, TemporalStabilizer


@dataclass
class ClipFrame:
    """A frame on its way through the model (the core request's `tag`)."""

    frame: Frame  # its pixels dropped once the network input is made
    cut: bool = False  # a new scene starts here
    keep: bool = True  # False: run only to carry the smoothing on (its outputs are current)
    colors: np.ndarray | None = None  # point-cloud colours, when a cloud is written
    seconds: float = 0.0  # reading and preparing it
    scene_state: tuple | None = None  # the cut detector's state after this frame (for resuming)


@dataclass
class FrameResult:
    """A frame's outcome: depth in metres at its size (with the maps when asked), or why not."""

    item: ClipFrame
    depth: np.ndarray | None = None
    prediction: Any = None  # the core's Prediction (maps), when depth was computed
    network_size: tuple[int, int] | None = None
    error: str | None = None
    seconds: float = 0.0  # reading, preparing and its share of the model's time

    @property
    def frame(self) -> Frame:
        return self.item.frame


class ClipSmoother:
    """The core's `adjust` hook for one clip: smooths scale and shift maps in frame order (see
    `stabilize`). A batch seen again (retried in halves after running out of memory) is folded
    in from the state before it, so no frame counts twice. With `checkpoints`, the state after
    each batch's last frame is kept (with the scene detector's), for a run that may be resumed."""

    def __init__(self, options: StabilizeOptions, fps: float | None, has_times: bool, *, checkpoints: bool = False) -> None:
        self.unit = "s" if (has_times or fps) else "frame"
        self.fps = fps
        self.stabilizer = TemporalStabilizer(options.tau_in(self.unit, fps))
        self.frames = 0  # frames folded in since the clip's first
        self._before: tuple[int, tuple] | None = None
        self.keep_checkpoints = checkpoints
        self.checkpoints: collections.deque[tuple[int, dict[str, torch.Tensor]]] = collections.deque(maxlen=8)

    def time_of(self, frame: Frame) -> float:
        if self.unit == "frame":
            return float(frame.index)
        return float(frame_time(frame, self.fps))

    def _state(self) -> tuple:
        s = self.stabilizer
        return s.log_scale, s.log_shift, s.log_level, s.time, s.index, self.frames

    def _restore(self, state: tuple) -> None:
        s = self.stabilizer
        s.log_scale, s.log_shift, s.log_level, s.time, s.index, self.frames = state

    def state_dict(self, scene_state: tuple | None = None) -> dict[str, torch.Tensor]:
        """The smoothing state, the frame count and the scene detector's state, as tensors."""
        state = self.stabilizer.state_dict()
        state["frames"] = torch.tensor([self.frames], dtype=torch.int64)
        if scene_state is not None and scene_state[0] is not None:
            thumbnail, last_cut = scene_state
            state["scene_thumbnail"] = torch.from_numpy(np.ascontiguousarray(thumbnail))
            state["scene_last_cut"] = torch.tensor([-1 if last_cut is None else last_cut], dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> tuple | None:
        """Restore a `state_dict`; returns the scene detector's state in it (or None)."""
        self.stabilizer.load_state_dict(state)
        self.frames = int(state["frames"][0]) if "frames" in state else 0
        if "scene_thumbnail" not in state:
            return None
        last_cut = int(state["scene_last_cut"][0])
        return state["scene_thumbnail"].numpy(), (None if last_cut < 0 else last_cut)

    def __call__(self, requests: Sequence[Any], out: Any) -> Any:
        from ..model.head import metric_from_relative

        items: list[ClipFrame] = [request.tag for request in requests]
        first = items[0].frame.index
        if self._before is not None and self.stabilizer.index is not None and first <= self.stabilizer.index:
            if self._before[0] == first:
                self._restore(self._before[1])
        self._before = (first, self._state())
        scales, shifts = [], []
        for row, item in enumerate(items):
            scale, shift = self.stabilizer.update(
                out.scale_map[row], out.shift_map[row], out.relative_depth[row], self.time_of(item.frame),
                cut=item.cut, index=item.frame.index,
            )  # fmt: skip
            self.frames += 1
            scales.append(scale)
            shifts.append(shift)
        out.scale_map, out.shift_map = torch.stack(scales), torch.stack(shifts)
        out.metric_depth = metric_from_relative(out.relative_depth, out.scale_map, out.shift_map)
        if self.keep_checkpoints:
            self.checkpoints.append((items[-1].frame.index, self.state_dict(items[-1].scene_state)))
        return out


def run_clip(
    predictor,
    frames: Iterable[Frame],
    caption_for: Callable[[int], str],
    *,
    name: str,
    detector: SceneCutDetector | None = None,
    keep: Callable[[int], bool] | None = None,
    cloud_grid: Callable[[int, int], tuple[int, int]] | None = None,
    ahead: int | None = None,
) -> Iterator[FrameResult]:
    """Results for the frames of one clip, about in order (frames without pixels are handed
    back as they come, the others as their batch completes).

    `frames`: the kept frames (`sources.clip_frames`); a frame without pixels is passed through,
    with its `error` when it could not be read. `caption_for(index)`: the caption of that frame
    (the clip's, or its scene's). `predictor`: a `model.inference.DepthPredictor` (with a
    ClipSmoother as its `adjust` hook to smooth). `keep(index)`: whether the frame's outputs are
    wanted (else it only carries the smoothing on). Raises the source's FrameReadError once
    every frame before it has been handed back."""
    from ..model.inference import DepthRequest

    passed: collections.deque[FrameResult] = collections.deque()
    stopped: list[FrameReadError] = []

    def prepared() -> Iterator[Any]:
        for frame in frames:
            start = time.perf_counter()
            if frame.rgb is None:
                yield FrameResult(ClipFrame(frame, keep=keep(frame.index) if keep else True), error=frame.error)
                continue
            cut = detector.is_cut(frame.index, frame.rgb) if detector is not None else False
            scene_state = detector.state() if detector is not None else None
            colors = None
            if cloud_grid is not None:
                from ..io.pointcloud import resample_colours  # a photo's cloud colours, the same way

                colors = resample_colours(frame.rgb, cloud_grid(*frame.size))
            photo = predictor.prepare(frame.rgb)
            frame.rgb = None  # the network input holds what the model needs
            item = ClipFrame(frame, cut, keep(frame.index) if keep else True, colors, time.perf_counter() - start, scene_state)
            yield DepthRequest(photo, caption_for(frame.index), tag=item, name=f"{name} frame {frame.index}")

    def requests() -> Iterator[Any]:
        try:
            for entry in read_ahead(prepared(), ahead or max(4, 2 * predictor.batch_size)):
                if isinstance(entry, FrameResult):
                    passed.append(entry)
                else:
                    yield entry
        except FrameReadError as exc:
            stopped.append(exc)  # the frames waiting for a batch still run before it is raised

    for result in predictor.stream(requests()):
        while passed:
            yield passed.popleft()
        item: ClipFrame = result.request.tag
        prediction = result.prediction
        yield FrameResult(
            item,
            depth=None if prediction is None else prediction.depth,
            prediction=prediction,
            network_size=result.request.photo.network_size,
            error=result.error,
            seconds=item.seconds + result.seconds,
        )
    while passed:
        yield passed.popleft()
    if stopped:
        raise stopped[0]

