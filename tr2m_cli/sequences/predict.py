"""Depth for every frame of a clip, through the one inference core, smoothed over time.

    for frame in model.predict_video("drive.mp4", "A city street with parked cars.", every=2):
        frame.index, frame.time_s, frame.depth          # float32 metres at the frame's size

What a clip adds to photos (`tr2m convert` runs the same code):
- **one network size**: every frame of a clip has the same size, so every batch is full;
- **one text embedding**: the clip's caption (one per scene at most) is encoded once;
- **decoding ahead**: frames are decoded and turned into network inputs by a background thread
  while the model works on earlier ones;
- **stabilisation** (`sequences.stabilize`): the scale and shift maps are smoothed over time in
  frame order, reset at scene cuts; depth is then 1 / (Ã · D_r + B̃) at network size, resized to
  the frame exactly as a photo's depth is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError
from .frames import Frame, FrameSelection, Position, RawFrame, frame_time, load_frames, read_ahead, select_frames
from .scenes import SceneCutDetector, SceneCutOptions
from .stabilize import StabilizeOptions, TemporalStabilizer


@dataclass
class FramePrediction:
    """One frame's result. `depth`: float32 metres at the frame's size; the maps with
    `return_maps` (after smoothing: the ones that give `depth` with `relative_depth`)."""

    index: int
    time_s: float | None
    depth: np.ndarray
    timestamp_ns: int | None = None
    source: str | None = None
    scene_cut: bool = False
    relative_depth: np.ndarray | None = None
    scale_map: np.ndarray | None = None
    shift_map: np.ndarray | None = None


@dataclass
class ClipFrame:
    """A frame on its way through the model: what the request's `tag` carries."""

    frame: Frame
    cut: bool = False
    keep: bool = True  # False: run only to carry the smoothing forward (its outputs exist)
    extra: dict[str, Any] = field(default_factory=dict)


class ClipSmoother:
    """Smooths a clip's maps in frame order inside the inference core (its `adjust` hook): gets
    each batch's network-size maps, returns them with the metric depth recomputed from the
    smoothed scale and shift maps. A batch retried after running out of memory is folded in
    again from the state before it, so no frame counts twice."""

    def __init__(self, options: StabilizeOptions, fps: float | None, has_times: bool) -> None:
        self.unit = "s" if has_times or fps else "frame"
        self.fps = fps
        self.stabilizer = TemporalStabilizer(options.tau_in(self.unit, fps))
        self._before: tuple[int, tuple] | None = None  # (first frame of the last batch, state before it)

    def _time(self, frame: Frame) -> float:
        if self.unit == "frame":
            return float(frame.index)
        return float(frame_time(frame, self.fps))

    def _state(self) -> tuple:
        s = self.stabilizer
        return s.log_scale, s.log_shift, s.log_level, s.time, s.index

    def _restore(self, state: tuple) -> None:
        s = self.stabilizer
        s.log_scale, s.log_shift, s.log_level, s.time, s.index = state

    def __call__(self, requests: Sequence, out) -> Any:
        frames: list[ClipFrame] = [r.tag for r in requests]
        first = frames[0].frame.index
        last = self.stabilizer.index
        if last is not None and first <= last and self._before is not None and self._before[0] == first:
            self._restore(self._before[1])
        self._before = (first, self._state())
        from ..model.head import metric_from_relative

        scales, shifts = [], []
        for row, item in enumerate(frames):
            scale, shift = self.stabilizer.update(
                out.scale_map[row], out.shift_map[row], out.relative_depth[row], self._time(item.frame),
                cut=item.cut, index=item.frame.index,
            )  # fmt: skip
            scales.append(scale)
            shifts.append(shift)
        out.scale_map, out.shift_map = torch.stack(scales), torch.stack(shifts)
        out.metric_depth = metric_from_relative(out.relative_depth, out.scale_map, out.shift_map)
        return out


def frames_from_images(images: Iterable[Any], fps: float | None = None) -> Iterator[RawFrame]:
    """Frames given in memory (HxWx3 arrays, PIL images, [3, H, W] tensors or photo paths) as
    a clip: index = position, time = index / fps when `fps` is given."""
    from ..model.preprocess import load_image_any

    for index, image in enumerate(images):

        def load(image=image) -> np.ndarray:
            loaded = load_image_any(image)
            if isinstance(loaded, torch.Tensor):
                loaded = loaded.detach().cpu()
                if loaded.dtype != torch.uint8:
                    loaded = (loaded.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
                loaded = loaded.permute(1, 2, 0).numpy()
            array = np.asarray(loaded)
            if array.dtype != np.uint8:
                array = np.clip(array.astype(np.float64) * (255.0 if array.max(initial=0) <= 1 else 1.0) + 0.5, 0, 255).astype(np.uint8)
            if array.ndim == 2:
                array = np.repeat(array[:, :, None], 3, axis=2)
            return np.ascontiguousarray(array[:, :, :3])

        yield RawFrame(index, index / fps if fps else None, load)


def _selection(every: int, start, end, max_frames) -> FrameSelection:
    def position(value, option):
        if value is None or isinstance(value, Position):
            return value
        return Position.parse(value, option)

    return FrameSelection(every=every, start=position(start, "start"), end=position(end, "end"), max_frames=max_frames)


def predict_video(
    model,
    clip: str | Path | Iterable[Any],
    caption: str,
    *,
    every: int = 1,
    start: str | int | Position | None = None,
    end: str | int | Position | None = None,
    max_frames: int | None = None,
    stabilize: bool = True,
    smoothing: str | int | Position = "0.5s",
    scene_cuts: bool = True,
    fps: float | None = None,
    topic: str | None = None,
    size=None,
    domain: str | None = None,
    batch_size: int = 4,
    return_maps: bool = False,
) -> Iterator[FramePrediction]:
    """Depth in metres for each kept frame of `clip`, in order, as a generator.

    `clip`: a video file, a ROS bag (`topic` picks the image topic), a folder of numbered frames,
    or frames in memory (arrays, PIL images, tensors or photo paths; `fps` gives them times).
    `every`/`start`/`end`/`max_frames` choose frames (`start`/`end`: a frame number or a time
    such as "2.5s"). `stabilize` smooths scale and shift over time with time constant
    `smoothing` (seconds "0.5s" or frames 15), reset at scene cuts when `scene_cuts`. A damaged
    video raises FrameReadError after the frames before the damage have been yielded."""
    from ..model.inference import DepthPredictor, DepthRequest
    from .sources import ClipOptions, open_clip

    if not isinstance(caption, str) or not caption.strip():
        raise InputError("predict_video needs one caption (a non-empty string) for the clip")
    selection = _selection(every, start, end, max_frames)
    options = StabilizeOptions(enabled=stabilize, time_constant=smoothing if isinstance(smoothing, Position) else Position.parse(smoothing, "smoothing"))
    if isinstance(clip, (str, Path)):
        path = Path(clip)
        source = open_clip(path, ClipOptions(selection=selection, fps=fps, topic=topic), sequence_folder=path.is_dir() and not (path / "metadata.yaml").is_file())
        raw, clip_fps, name = source.raw_frames(), source.fps, str(path)
        times = getattr(source, "kind", "") != "frames"
    else:
        raw, clip_fps, name, times = frames_from_images(clip, fps), fps, "frames", False
    smoother = ClipSmoother(options, clip_fps, times) if stabilize else None
    predictor = DepthPredictor(model, batch_size=batch_size, size=size, domain=domain, return_maps=return_maps, adjust=smoother)
    detector = SceneCutDetector(SceneCutOptions()) if stabilize and scene_cuts else None

    def requests() -> Iterator[DepthRequest]:
        for frame in load_frames(select_frames(raw, selection, clip_fps, name)):
            if frame.rgb is None:
                raise InputError(frame.error or f"{name}: frame {frame.index} cannot be read")
            cut = detector.is_cut(frame.index, frame.rgb) if detector is not None else False
            photo = predictor.prepare(frame.rgb)
            frame.rgb = None
            yield DepthRequest(photo, caption, tag=ClipFrame(frame, cut), name=f"{name} frame {frame.index}")

    for result in predictor.stream(read_ahead(requests())):
        if result.prediction is None:
            raise result.exception or RuntimeError(result.error)
        item: ClipFrame = result.request.tag
        prediction = result.prediction
        yield FramePrediction(
            index=item.frame.index, time_s=item.frame.time_s, depth=prediction.depth,
            timestamp_ns=item.frame.timestamp_ns, source=item.frame.source, scene_cut=item.cut,
            relative_depth=prediction.relative_depth, scale_map=prediction.scale_map, shift_map=prediction.shift_map,
        )  # fmt: skip

