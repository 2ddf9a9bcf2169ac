"""`predict_video`: depth in metres for every kept frame of a clip, smoothed over time.

    for frame in model.predict_video("drive.mp4", "A city street with parked cars.", every=2):
        frame.index, frame.time_s, frame.depth          # float32 metres at the frame's size

It runs the same code as `tr2m convert` on a clip (`sequences.engine`), without writing files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError
from .frames import FrameSelection, Position, RawFrame, load_frames, select_frames


@dataclass
class FramePrediction:
    """One frame's result. `depth`: float32 metres at the frame's size. With `return_maps`, the
    maps at the frame's size; after smoothing, `scale_map` and `shift_map` are the smoothed ones,
    so depth = 1 / (scale_map · relative_depth + shift_map) still holds."""

    index: int
    time_s: float | None
    depth: np.ndarray
    timestamp_ns: int | None = None
    source: str | None = None
    scene_cut: bool = False
    relative_depth: np.ndarray | None = None
    scale_map: np.ndarray | None = None
    shift_map: np.ndarray | None = None


def frames_from_images(images: Iterable[Any], fps: float | None = None) -> Iterator[RawFrame]:
    """Frames given in memory (HxWx3 arrays, PIL images, [3, H, W] tensors, photo paths) as a
    clip: index = position, time = index / fps when `fps` is given."""
    from ..model.inference import as_rgb8
    from ..model.preprocess import load_image_any, to_float_tensor

    for index, image in enumerate(images):

        def load(image=image, index=index) -> np.ndarray:
            # As predict() takes photos: 8-bit as it is; 16-bit and float frames checked (floats
            # must be in [0, 1]) and scaled by to_float_tensor, as prepare_photo keeps their colours.
            try:
                loaded = load_image_any(image)
                rgb = as_rgb8(loaded)
                if rgb is None:
                    rgb = (to_float_tensor(loaded) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            except InputError as exc:
                raise InputError(f"frame {index}: {exc}") from None
            return np.ascontiguousarray(rgb)

        yield RawFrame(index, index / fps if fps else None, load)


def as_position(value: str | int | Position | None, option: str) -> Position | None:
    if value is None or isinstance(value, Position):
        return value
    return Position.parse(value, option)


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

    `clip`: a video file, a ROS bag (`topic` picks its image topic), a folder of numbered frames,
    or frames in memory (arrays, PIL images, tensors or photo paths; `fps` gives them times).
    `every`/`start`/`end`/`max_frames` choose frames (`start`/`end`: a frame number, or a time
    such as "2.5s"). `stabilize` smooths scale and shift over time with time constant
    `smoothing` ("0.5s", or 15 frames), reset at scene cuts when `scene_cuts`. A damaged video
    raises FrameReadError after the frames before the damage have been yielded; an unreadable
    frame of a folder raises InputError."""
    from ..model.inference import DepthPredictor
    from .engine import ClipSmoother, run_clip
    from .scenes import SceneCutDetector
    from .sources import ClipOptions, open_clip
    from .stabilize import StabilizeOptions

    if not isinstance(caption, str) or not caption.strip():
        raise InputError("predict_video needs one caption (a non-empty string) for the clip")
    selection = FrameSelection(every=every, start=as_position(start, "start"), end=as_position(end, "end"), max_frames=max_frames)
    options = StabilizeOptions(enabled=stabilize, time_constant=as_position(smoothing, "smoothing"))
    if isinstance(clip, (str, Path)):
        path = Path(clip)
        folder = path.is_dir() and not (path / "metadata.yaml").is_file()
        source = open_clip(path, ClipOptions(selection=selection, fps=fps, topic=topic), sequence_folder=folder)
        raw, clip_fps, name, has_times = source.raw_frames(), source.fps, str(path), source.kind != "frames"
    else:
        raw, clip_fps, name, has_times = frames_from_images(clip, fps), fps, "frames", False
    smoother = ClipSmoother(options, clip_fps, has_times) if stabilize else None
    predictor = DepthPredictor(model, batch_size=batch_size, size=size, domain=domain, return_maps=return_maps, adjust=smoother)
    detector = SceneCutDetector() if stabilize and scene_cuts else None
    frames = load_frames(select_frames(raw, selection, clip_fps, name))
    for result in run_clip(predictor, frames, lambda index: caption, name=name, detector=detector):
        frame = result.frame
        if result.depth is None:
            raise InputError(result.error or f"{name}: frame {frame.index} cannot be read")
        maps = result.prediction
        yield FramePrediction(
            index=frame.index, time_s=frame.time_s, depth=result.depth, timestamp_ns=frame.timestamp_ns,
            source=frame.source, scene_cut=result.item.cut,
            relative_depth=maps.relative_depth, scale_map=maps.scale_map, shift_map=maps.shift_map,
        )  # fmt: skip
