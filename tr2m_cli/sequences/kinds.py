"""What makes a path a clip, by name alone (no heavy import): the input walker and the readers
share these, so a file is never a clip to one and a photo to the other.

- **video**: a file ending in one of `VIDEO_SUFFIXES` (any letter case);
- **bag**: a ROS 1 `.bag`, a bare ROS 2 `.db3` / `.mcap`, or a ROS 2 bag folder (a folder with
  `metadata.yaml`, walked as one recording, never into);
- **frames**: a folder of numbered frames, when the user says so (`--sequence`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"})
BAG_SUFFIXES = frozenset({".bag", ".db3", ".mcap"})
EXTRA_OF = {"video": ("av", "video"), "bag": ("rosbags", "ros")}  # kind → (module, extra)


def is_ros2_bag_folder(path: str | Path) -> bool:
    return (Path(path) / "metadata.yaml").is_file()


def clip_kind_of_name(name: str) -> str | None:
    """"video" or "bag" for a file name that is one, else None (hidden files never are)."""
    if name.startswith("."):
        return None
    suffix = Path(name).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in BAG_SUFFIXES:
        return "bag"
    return None


def missing_extra(kind: str) -> str | None:
    """Why clips of `kind` cannot be read on this installation, or None when they can."""
    if kind not in EXTRA_OF:
        return None
    module, extra = EXTRA_OF[kind]
    if importlib.util.find_spec(module) is None:
        what = "a video" if kind == "video" else "a ROS bag"
        return f"{what}: reading it needs {module} (pip install 'tr2m[{extra}]')"
    return None
