"""Frames of a clip, and which of them a run converts: one set of rules for every kind of source.

A clip (a video, an image topic of a ROS bag, a folder of numbered frames) is a stream of frames,
each with its **index** (its 0-based position in the source, before any selection, so output names
stay the same whatever `--every`/`--start` say) and, where the source has one, its **time** in
seconds since the clip's first frame. A `FrameSelection` keeps:

- frames from `start` (inclusive) to `end` (exclusive), each either a frame index (`120`) or a time
  (`4s`, `2.5s`, `1500ms`, `1:30`, `0:01:30.5`);
- of those, every `every`-th, starting with the first;
- at most `max_frames` of them.

Sources hand over `RawFrame`s whose pixels are decoded only when the frame is kept, so skipping is
cheap, and stop reading as soon as the selection is over.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import InputError


class FrameReadError(InputError):
    """A frame that cannot be read: the clip stops there; the frames before it stay converted.
    `index` is the failing frame's index in the source (None when the clip cannot be opened)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Position:
    """A place in a clip: a frame index (`unit == "frame"`) or seconds since its first frame."""

    value: float
    unit: str  # "frame" or "s"

    @classmethod
    def parse(cls, text: str | int | float, option: str = "--start") -> "Position":
        """`120` → frame 120; `4s`, `2.5s`, `1500ms`, `1:30`, `1:02:03.5` → seconds.

        A bare decimal (`2.5`) is refused rather than guessed: frames and seconds are both common."""
        if isinstance(text, int):
            return cls._frame(text, option)
        raw = str(text).strip().lower()
        if re.fullmatch(r"\d+", raw):
            return cls._frame(int(raw), option)
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|ms)", raw)
        if match:
            seconds = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
            return cls(seconds, "s")
        match = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)", raw)
        if match:
            hours, minutes, seconds = float(match.group(1) or 0), float(match.group(2)), float(match.group(3))
            if minutes < 60 and seconds < 60:
                return cls(hours * 3600 + minutes * 60 + seconds, "s")
        hint = f" (say {raw}s for seconds)" if re.fullmatch(r"\d*\.\d+", raw) else ""
        raise InputError(
            f"{option} {text!r}: expected a frame number (120) or a time (4s, 2.5s, 1500ms, 1:30){hint}"
        )

    @classmethod
    def _frame(cls, index: int, option: str) -> "Position":
        if index < 0:
            raise InputError(f"{option} {index}: frame numbers start at 0")
        return cls(float(index), "frame")

    def __str__(self) -> str:
        return f"frame {int(self.value)}" if self.unit == "frame" else f"{self.value:g} s"


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a clip to convert (see the module docstring)."""

    every: int = 1
    start: Position | None = None
    end: Position | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"--every {self.every}: must be at least 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames {self.max_frames}: must be at least 1")
        if self.start is not None and self.end is not None and self.start.unit == self.end.unit:
            if self.end.value <= self.start.value:
                raise InputError(f"--end ({self.end}) must come after --start ({self.start})")

    @property
    def uses_time(self) -> bool:
        return any(p is not None and p.unit == "s" for p in (self.start, self.end))

    def describe(self) -> dict:
        return {
            "every": self.every,
            "start": str(self.start) if self.start else None,
            "end": str(self.end) if self.end else None,
            "max_frames": self.max_frames,
        }


@dataclass
class RawFrame:
    """A frame whose pixels are read only if it is kept (`load()` → HxWx3 uint8, upright)."""

    index: int
    time_s: float | None
    load: Callable[[], np.ndarray]
    timestamp_ns: int | None = None  # the recording's own clock (ROS header stamp), when there is one
    source: str | None = None  # the file a frame of a folder came from


@dataclass
class Frame:
    """One kept frame of a clip: its pixels, or why they could not be read, or neither when the
    caller did not want them (a frame already converted by an earlier run)."""

    index: int
    time_s: float | None
    rgb: np.ndarray | None  # HxWx3 uint8, upright
    timestamp_ns: int | None = None
    source: str | None = None
    error: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


def _at_or_after(frame: RawFrame, position: Position, fps: float | None) -> bool:
    if position.unit == "frame":
        return frame.index >= position.value
    time = frame_time(frame, fps)
    return time is not None and time >= position.value - 1e-9


def frame_time(frame: RawFrame | Frame, fps: float | None) -> float | None:
    """Seconds since the clip's first frame: the source's own time, else index / fps."""
    if frame.time_s is not None:
        return frame.time_s
    if fps:
        return frame.index / fps
    return None


def select_frames(raw: Iterable[RawFrame], selection: FrameSelection, fps: float | None, name: str) -> Iterator[RawFrame]:
    """The frames of `raw` that `selection` keeps, in order; stops reading once it is over.

    `fps` turns indices into times for sources without timestamps; `name` (the clip) is what an
    error names. A time-based selection on a clip with neither timestamps nor a frame rate is an
    InputError, raised before any frame is kept."""
    kept = 0
    in_window = 0
    for frame in raw:
        if selection.uses_time and frame_time(frame, fps) is None:
            raise InputError(f"{name}: --start/--end in seconds need timestamps or a frame rate; give --fps, or frame numbers")
        if selection.end is not None and _at_or_after(frame, selection.end, fps):
            return
        if selection.start is not None and not _at_or_after(frame, selection.start, fps):
            continue
        position, in_window = in_window, in_window + 1
        if position % selection.every:
            continue
        yield frame
        kept += 1
        if selection.max_frames is not None and kept >= selection.max_frames:
            return


def selected_span(selection: FrameSelection, frame_count: int | None, fps: float | None) -> tuple[int, int, int]:
    """(first, end, count): the source indices `selection` spans and about how many frames it
    keeps, from what a header says (frame count, frame rate); end and count are 0 when the
    clip's length is unknown and the selection does not bound it."""

    def as_index(position: Position | None, default: int) -> int:
        if position is None:
            return default
        if position.unit == "frame":
            return int(position.value)
        return int(round(position.value * fps)) if fps else default

    total = frame_count or 0
    first = as_index(selection.start, 0)
    end = as_index(selection.end, total) if selection.end is not None else total
    if total:
        end = min(end, total)
    if selection.max_frames is not None:
        bound = first + selection.max_frames * selection.every
        end = min(end, bound) if end > first else bound
    count = max(0, -(-(end - first) // selection.every))
    return first, max(first, end), count


def index_width(frame_count: int | None) -> int:
    """Digits in frame file names: six, more for clips longer than a million frames, so names
    sort in frame order."""
    if not frame_count or frame_count <= 1_000_000:
        return 6
    return max(6, math.ceil(math.log10(frame_count)))


def load_frames(raw: Iterable[RawFrame], wanted: Callable[[int], bool] | None = None) -> Iterator[Frame]:
    """Kept raw frames → Frames with their pixels (only those `wanted(index)`). A frame whose
    pixels cannot be read comes with its `error` and the clip goes on; a FrameReadError from the
    source itself (a damaged video) ends the clip and propagates."""
    for item in raw:
        frame = Frame(item.index, item.time_s, None, item.timestamp_ns, item.source)
        if wanted is None or wanted(item.index):
            try:
                frame.rgb = item.load()
            except FrameReadError:
                raise
            except InputError as exc:
                frame.error = str(exc)
        yield frame


_DONE = object()


def read_ahead(items: Iterable, ahead: int = 8, name: str = "tr2m-frames") -> Iterator:
    """The items of `items`, produced by a background thread up to `ahead` items before they are
    needed: a clip's frames decode (a sequential job, one frame after the other) while the model
    works on earlier ones. An exception raised by `items` comes out at the point it was raised,
    after the items before it. Leaving the loop early stops the thread at its next item."""
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_DONE, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()  # a generator left early: its files close in this thread
        put((_DONE, None))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
