"""Video files as clips, read with PyAV (FFmpeg in a wheel: no system ffmpeg needed).

Frames are decoded one packet at a time and handed on one by one, so memory stays the size of a
few frames however long the video is. Each frame keeps its presentation time (phones record at a
variable frame rate, so index / fps would drift), and frames are turned upright when the file says
the camera was rotated (a portrait phone video is stored landscape with a rotation flag).

We read through PyAV itself rather than imageio's PyAV plugin: the plugin's frame iterator hands
out pixels only, and a clip needs each frame's timestamp and the decoder's "this frame is damaged"
flag. Both come from the same `av` package, so the install is the same.

Damage is reported, never passed on as depth: a frame the decoder flags as corrupt or cannot
decode ends the clip with a FrameReadError naming that frame (the frames before it are kept), and
a file that ends well before its header says it should (a recording cut short, a partial copy)
is reported as truncated at the first missing frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError, first_line
from ..extras import require
from .frames import FrameReadError, RawFrame


def import_av():
    return require("av", "video", "reading and writing video")


@dataclass(frozen=True)
class VideoInfo:
    """What the file's header says about its video stream."""

    fps: float | None
    frame_count: int | None  # from the header, or duration × fps; None when neither is known
    duration_s: float | None
    size: tuple[int, int]  # (H, W) of upright frames
    codec: str
    rotation: int  # degrees the stored frames are turned counterclockwise for display


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame the way a player shows it: `rotation` degrees counterclockwise
    (FFmpeg's display-matrix angle; phones store portrait video landscape with ±90)."""
    quarter_turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / 1_000_000  # AV_TIME_BASE: microseconds
    return None


class VideoSource:
    """A video file as a clip: `info` from the header, `raw_frames()` streaming the frames."""

    kind = "video"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        av = import_av()
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputError(f"{self.path}: no video stream in the file")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                fps = float(rate) if rate else None
                duration = _stream_duration(container, stream)
                count = stream.frames or (round(duration * fps) if duration and fps else None)
                rotation = self._rotation(container, stream)
                height, width = stream.codec_context.height, stream.codec_context.width
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file") from None
        except av.FFmpegError as exc:
            raise FrameReadError(f"{self.path}: not a readable video ({first_line(exc)}; a truncated or damaged file?)", 0) from None
        if round(rotation / 90) % 2:
            height, width = width, height
        self.info = VideoInfo(fps, count or None, duration, (height, width), stream.codec_context.name, rotation)

    @staticmethod
    def _rotation(container, stream) -> int:
        """The display rotation, from the first frame's display matrix (where FFmpeg puts it)."""
        try:
            for frame in container.decode(stream):
                return int(round(getattr(frame, "rotation", 0) or 0))
        except Exception:  # noqa: BLE001 - a damaged first frame is reported when it is read
            return 0
        return 0

    @property
    def fps(self) -> float | None:
        return self.info.fps

    def raw_frames(self) -> Iterator[RawFrame]:
        """Every frame, in presentation order; raises FrameReadError at the first damaged one."""
        av = import_av()
        rotation = self.info.rotation
        index = 0
        last_time: float | None = None
        first_pts: Fraction | None = None
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise FrameReadError(f"{self.path}: not a readable video ({first_line(exc)})", 0) from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: decoding keeps up with the model
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        if frame.is_corrupt:
                            raise FrameReadError(f"{self.path}: frame {index} is damaged (corrupt data in the file)", index)
                        time = None
                        if frame.pts is not None and frame.time_base is not None:
                            pts = frame.pts * frame.time_base
                            first_pts = pts if first_pts is None else first_pts
                            time = float(pts - first_pts)
                        yield RawFrame(index, time, lambda f=frame: upright(f.to_ndarray(format="rgb24"), rotation))
                        last_time = time
                        index += 1
            except av.FFmpegError as exc:
                raise FrameReadError(
                    f"{self.path}: frame {index} cannot be decoded ({first_line(exc)}; a damaged or truncated file?)", index
                ) from None
        self._check_complete(index, last_time)

    def _check_complete(self, frames_read: int, last_time: float | None) -> None:
        """At the end of the file: did it hold as much video as its header announced?"""
        info = self.info
        interval = 1.0 / info.fps if info.fps else 0.0
        if info.frame_count and frames_read < info.frame_count - max(2, 0.01 * info.frame_count):
            short = True
        elif info.duration_s and last_time is not None and info.fps:
            # A muxer that writes no frame count (Matroska, WebM) still writes the duration.
            short = last_time + interval < info.duration_s - max(2 * interval, 0.01 * info.duration_s)
        else:
            short = False
        if short:
            expected = f"{info.frame_count} frames" if info.frame_count else f"{info.duration_s:.2f} s"
            ended = f"{last_time:.2f} s" if last_time is not None else "the start"
            raise FrameReadError(
                f"{self.path}: truncated: the file ends at frame {frames_read} ({ended}) but its header announces {expected}",
                frames_read,
            )
