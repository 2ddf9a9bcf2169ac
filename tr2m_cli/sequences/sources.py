"""Opening any clip the same way: a video file, a ROS bag's image topic, a folder of numbered frames.

    source = open_clip("drive.mp4", ClipOptions(selection=FrameSelection(every=5)))
    for frame in clip_frames(source, options.selection):   # Frame: index, time_s, rgb …
        ...

Every source has `path`, `kind` ("video", "ros1", "ros2", "frames"), `fps` (None when unknown),
`frame_count` (the header's or the index's count; None when unknown), `camera_info` (a ROS
calibration, else None), `raw_frames()` and `describe()` (what clip.json records about it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from ..errors import InputError
from .folders import FrameFolderSource
from .frames import Frame, FrameSelection, RawFrame, load_frames, select_frames
from .kinds import BAG_SUFFIXES, VIDEO_SUFFIXES, clip_kind_of_name, is_ros2_bag_folder
from .rosbag import BagSource, CameraInfo
from .video import VideoSource

@dataclass(frozen=True)
class ClipOptions:
    """How clips are read: which frames, the frame rate of frame folders, which bag topic."""

    selection: FrameSelection = FrameSelection()
    fps: float | None = None  # frames per second of numbered-frame folders (they carry no time)
    topic: str | None = None  # the bag's image topic (default: its only colour image topic)
    camera_info_topic: str | None = None  # default: the CameraInfo beside the image topic

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"--fps {self.fps:g}: must be positive")


class ClipSource(Protocol):
    path: Path
    kind: str

    @property
    def fps(self) -> float | None: ...

    def raw_frames(self) -> Iterator[RawFrame]: ...


def is_clip_path(path: Path) -> bool:
    """A video or bag file, or a ROS 2 bag folder."""
    return (path.is_file() and clip_kind_of_name(path.name) is not None) or is_ros2_bag_folder(path)


def open_clip(path: str | Path, options: ClipOptions = ClipOptions(), *, sequence_folder: bool = False) -> ClipSource:
    """The clip at `path`; `sequence_folder`: `path` is a folder of numbered frames."""
    path = Path(path)
    if sequence_folder:
        return FrameFolderSource(path, options.fps)
    if is_ros2_bag_folder(path) or path.suffix.lower() in BAG_SUFFIXES:
        return BagSource(path, options.topic, options.camera_info_topic)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    raise InputError(f"{path}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or ROS bag ({', '.join(sorted(BAG_SUFFIXES))})")


def clip_frames(
    source: ClipSource, selection: FrameSelection = FrameSelection(), wanted: Callable[[int], bool] | None = None
) -> Iterator[Frame]:
    """The frames of `source` that `selection` keeps, with pixels for those `wanted(index)`."""
    return load_frames(select_frames(source.raw_frames(), selection, source.fps, str(source.path)), wanted)


def frame_count(source: ClipSource) -> int | None:
    return getattr(source.info, "frame_count", None)


def camera_info(source: ClipSource) -> CameraInfo | None:
    return getattr(source.info, "camera_info", None)


def describe(source: ClipSource) -> dict[str, Any]:
    """What clip.json records about where the frames came from."""
    info = source.info
    record: dict[str, Any] = {"path": str(source.path), "kind": source.kind, "fps": source.fps, "frame_count": frame_count(source)}
    if isinstance(source, VideoSource):
        record |= {"codec": info.codec, "duration_s": info.duration_s, "rotation_deg": info.rotation}
    elif isinstance(source, BagSource):
        record |= {"topic": info.topic, "message_type": info.message_type, "duration_s": info.duration_s}
        record["camera_info"] = info.camera_info.to_json() if info.camera_info else None
        if info.camera_info_note:
            record["camera_info_note"] = info.camera_info_note
    else:
        record["fps_source"] = "--fps" if source.fps else None
    return record
