"""A clip's colourised depth video: one colour scale for the whole clip, a colour bar in metres.

Colours mean the same depth in every frame, so the range is fixed for the clip: `--depth-range
MIN MAX`, else the 2nd–98th percentile of depth over all its frames, known only once the clip is
complete. So while the clip runs, each frame's depth is kept at preview size (longest side at
most 1280 pixels, float16) in a hidden folder beside the outputs; when every frame is done the
video is rendered from those files to a temporary and renamed into place, and the folder is
removed. The folder outlives a killed run, so a resumed clip's video still shows every frame.

The video is H.264 (yuv420p, plays everywhere) in MP4, at the clip's own timing: each frame at its
timestamp where the clip has them (variable frame rate, dropped frames and `--every` included),
else at index / fps.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..io.atomic import atomic_path
from ..io.preview import PreviewOptions, add_colorbar, colorize, percentile_range, valid_depth
from .video import import_av

PREVIEW_MAX_SIDE = 1280
FRAMES_FOLDER = ".tr2m-preview-frames"
_RANGE_SAMPLES = 2_000_000  # depth values drawn from the whole clip for its percentiles
_TIME_BASE = Fraction(1, 1000)  # presentation times in milliseconds


def preview_size(height: int, width: int, max_side: int = PREVIEW_MAX_SIDE) -> tuple[int, int]:
    """(H, W) of the video frames: the clip's, scaled down so the longer side is at most `max_side`
    (odd sides are padded by a pixel when encoding)."""
    scale = max_side / max(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


class PreviewFrames:
    """The depth of a clip's frames at preview size, on disk until the video is written.

    `fallback(index)`: a frame's full depth from elsewhere (its depth file), for frames whose
    preview-size copy was removed after an earlier video was written; None when it has none.
    `has_fallback(index)`: whether it has one, cheaply (without reading it)."""

    def __init__(
        self,
        clip_dir: str | Path,
        max_side: int = PREVIEW_MAX_SIDE,
        fallback: Callable[[int], np.ndarray | None] | None = None,
        has_fallback: Callable[[int], bool] | None = None,
        times: Callable[[int], float | None] | None = None,
    ) -> None:
        self.folder = Path(clip_dir) / FRAMES_FOLDER
        self.max_side = max_side
        self.fallback = fallback
        self.has_fallback = has_fallback
        self.times = times  # a frame's time, for frames read through the fallback

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:09d}.npz"

    def small(self, depth: np.ndarray) -> np.ndarray:
        """Depth (metres, any size) at preview size."""
        from PIL import Image

        height, width = preview_size(*depth.shape, self.max_side)
        small = depth.astype(np.float32, copy=False)
        if small.shape != (height, width):
            small = np.asarray(Image.fromarray(small, mode="F").resize((width, height), Image.BILINEAR))
        return small

    def add(self, index: int, time_s: float | None, depth: np.ndarray) -> None:
        """Keep frame `index`'s depth (metres, any size) at preview size, atomically."""
        small = self.small(depth)
        with atomic_path(self._path(index), fsync=False) as temp, open(temp, "wb") as handle:
            # float16 tops out at 65 504 m: farther is beyond any colour range anyway
            kept = np.minimum(small, np.finfo(np.float16).max).astype(np.float16)
            np.savez(handle, depth=kept, time=np.float64(np.nan if time_s is None else time_s))

    def indices(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.npz") if p.stem.isdigit())

    def has(self, index: int) -> bool:
        """Whether the video can show frame `index` (its copy here, or a fallback)."""
        return self._path(index).is_file() or (self.has_fallback is not None and self.has_fallback(index))

    def load(self, index: int) -> tuple[np.ndarray, float | None]:
        if not self._path(index).is_file() and self.fallback is not None:
            depth = self.fallback(index)
            if depth is not None:
                return self.small(depth), (self.times(index) if self.times else None)
        with np.load(self._path(index)) as data:
            time = float(data["time"])
            return data["depth"].astype(np.float32), (None if math.isnan(time) else time)

    def depth_range(self, options: PreviewOptions = PreviewOptions(), indices: Sequence[int] | None = None) -> tuple[float, float]:
        """The clip's colour range in metres: fixed, or percentiles of all its frames' depth."""
        if options.depth_range is not None:
            return float(options.depth_range[0]), float(options.depth_range[1])
        indices = self.indices() if indices is None else list(indices)
        samples = []
        for index in indices:
            depth, _ = self.load(index)
            step = max(1, math.ceil(math.sqrt(depth.size * len(indices) / _RANGE_SAMPLES)))
            sample = depth[::step, ::step]
            samples.append(sample[valid_depth(sample)])
        values = np.concatenate(samples) if samples else np.empty(0, np.float32)
        return percentile_range(values, options.percentiles)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def render_preview_video(
    dest: str | Path,
    frames: PreviewFrames,
    fps: float | None,
    options: PreviewOptions = PreviewOptions(),
    indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Write the clip's depth video to `dest` (MP4) atomically from `frames` (those of
    `indices`, default all kept); returns what the clip record says about it (range in metres,
    frame count, codec)."""
    av = import_av()
    indices = frames.indices() if indices is None else sorted(indices)
    if not indices:
        raise ValueError(f"no frames to render into {dest}")
    low, high = frames.depth_range(options, indices)
    rate = fps if fps and fps > 0 else 30.0
    strip: np.ndarray | None = None
    last_pts = -1
    with atomic_path(dest) as temp, av.open(str(temp), "w", format="mp4") as container:
        stream = None
        for index in indices:
            depth, time_s = frames.load(index)
            image = colorize(depth, low, high, options.colormap)
            if options.colorbar:
                if strip is None or strip.shape[0] != image.shape[0]:
                    # The bar is the same in every frame: draw it once.
                    strip = add_colorbar(np.zeros_like(image[:, :1]), low, high, options.colormap)[:, 1:]
                image = np.concatenate([image, strip], axis=1)
            image = _even(image)
            if stream is None:
                stream = _open_stream(container, image.shape[0], image.shape[1], rate)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            seconds = time_s if time_s is not None else index / rate
            frame.pts = max(last_pts + 1, round(seconds / _TIME_BASE))  # strictly increasing
            frame.time_base = _TIME_BASE
            last_pts = frame.pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        codec = stream.codec_context.name
    return {"range_m": [round(low, 4), round(high, 4)], "frames": len(indices), "codec": codec, "colormap": options.colormap}


def _even(image: np.ndarray) -> np.ndarray:
    """Pad the right/bottom edge by one pixel where a side is odd (H.264 4:2:0 needs even sides)."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(image)


def _open_stream(container, height: int, width: int, fps: float):
    av = import_av()
    rate = Fraction(fps).limit_denominator(1001)
    # veryfast: a preview is for looking; x264's slower presets cost more than the tiny model does.
    for codec, options in (("libx264", {"crf": "20", "preset": "veryfast"}), ("mpeg4", {"qscale": "3"})):
        with contextlib.suppress(av.codec.codec.UnknownCodecError, ValueError):
            stream = container.add_stream(codec, rate=rate)
            break
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.options = options
    stream.codec_context.time_base = _TIME_BASE
    return stream
