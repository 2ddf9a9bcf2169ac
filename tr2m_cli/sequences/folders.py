"""A folder of numbered frames (`frame_0001.png`, `0000000123.jpg`, …) as one clip (`--sequence`).

Frames are ordered by the numbers in their names, compared as numbers (`img2` before `img10`),
then by name. A frame's index is its position in that order (0-based), like a video's; each
frame's own file name is kept in its record. Such folders carry no timestamps: times are
index / fps when a frame rate is given (`--fps`), else unknown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..io.images import read_rgb
from ..io.inputs import is_image_name
from .frames import RawFrame


def natural_key(name: str) -> tuple:
    """`img10.png` after `img2.png`: runs of digits compare as numbers."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in parts if part), name


def frame_files(folder: str | Path) -> list[Path]:
    """The images directly inside `folder` (hidden files skipped), in frame order."""
    folder = Path(folder)
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file() and is_image_name(entry.name)]
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    return [folder / name for name in sorted(names, key=natural_key)]


@dataclass(frozen=True)
class FolderInfo:
    fps: float | None
    frame_count: int
    size: tuple[int, int] | None  # of the first frame


class FrameFolderSource:
    """Numbered frames in one folder as a clip."""

    kind = "frames"

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        self.path = Path(folder)
        self.files = frame_files(self.path)
        if not self.files:
            raise InputError(f"{self.path}: no frames (images) in the folder")
        if fps is not None and not fps > 0:
            raise InputError(f"--fps {fps}: must be positive")
        self.info = FolderInfo(fps=fps, frame_count=len(self.files), size=None)

    @property
    def fps(self) -> float | None:
        return self.info.fps

    def raw_frames(self) -> Iterator[RawFrame]:
        for index, path in enumerate(self.files):

            def load(path: Path = path, index: int = index):
                # One unreadable file fails that frame only (an InputError, not a FrameReadError):
                # unlike a video, the frames after it are still there.
                try:
                    return read_rgb(path)
                except InputError as exc:
                    raise InputError(f"frame {index}: {exc}") from None

            yield RawFrame(index, index / self.fps if self.fps else None, load, source=path.name)
