"""Scene cuts: where a clip jumps to another shot, so smoothing restarts and (optionally) a new
caption applies.

The measure is the content-change score of PySceneDetect's ContentDetector, the field's usual
cut detector: the mean absolute difference between consecutive frames in hue, saturation and
value (each 0–255), averaged over the three. A cut is where it exceeds `threshold` (27 by default,
ContentDetector's), at least `min_scene_frames` source frames (15, also its default) after the
previous cut, so a flash or a fast pan does not cut repeatedly. Frames are compared as small
thumbnails (128 pixels wide), which keeps the cost per frame under a millisecond and ignores noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 27.0
DEFAULT_MIN_SCENE_FRAMES = 15
THUMBNAIL_WIDTH = 128


@dataclass(frozen=True)
class SceneCutOptions:
    threshold: float = DEFAULT_THRESHOLD  # mean HSV change (0–255) that makes a cut
    min_scene_frames: int = DEFAULT_MIN_SCENE_FRAMES


def hsv_thumbnail(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB → a small HSV float32 image for comparisons."""
    from PIL import Image

    height, width = rgb.shape[:2]
    size = (min(width, THUMBNAIL_WIDTH), max(1, round(height * min(width, THUMBNAIL_WIDTH) / width)))
    image = Image.fromarray(rgb)
    if size != (width, height):
        image = image.resize(size, Image.BILINEAR)
    return np.asarray(image.convert("HSV"), dtype=np.float32)


def content_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute HSV difference of two thumbnails of the same size (0–255)."""
    return float(np.abs(current - previous).mean())


class SceneCutDetector:
    """Feed frames in order; `is_cut(index, rgb)` says whether a new scene starts at this one."""

    def __init__(self, options: SceneCutOptions = SceneCutOptions()) -> None:
        self.options = options
        self._previous: np.ndarray | None = None
        self._last_cut: int | None = None
        self.cuts: list[int] = []  # frame indices where scenes start (after the first)

    def state(self) -> tuple[np.ndarray | None, int | None]:
        """What the next frame is compared with (for a run resumed mid-clip)."""
        return self._previous, self._last_cut

    def load_state(self, previous: np.ndarray | None, last_cut: int | None) -> None:
        self._previous, self._last_cut = previous, last_cut

    def is_cut(self, index: int, rgb: np.ndarray) -> bool:
        thumbnail = hsv_thumbnail(rgb)
        previous, self._previous = self._previous, thumbnail
        if previous is None:
            self._last_cut = index
            return False
        if previous.shape != thumbnail.shape:  # the frame size changed: another shot for sure
            score = float("inf")
        else:
            score = content_change(previous, thumbnail)
        if score < self.options.threshold or index - self._last_cut < self.options.min_scene_frames:
            return False
        self._last_cut = index
        self.cuts.append(index)
        return True


@dataclass(frozen=True)
class Scene:
    """Kept frames `first`..`last` (source indices) between two cuts; `middle` represents it."""

    first: int
    last: int
    middle: int


def find_scenes(frames, options: SceneCutOptions = SceneCutOptions()) -> list[Scene]:
    """Scenes of a clip from its kept frames (`Frame`s with pixels, in order), each represented
    by its middle kept frame: the frame a caption of the scene is written from."""
    detector = SceneCutDetector(options)
    scenes: list[list[int]] = []
    for frame in frames:
        if frame.rgb is None:
            continue
        cut = detector.is_cut(frame.index, frame.rgb)  # every frame is seen, the first included
        if cut or not scenes:
            scenes.append([])
        scenes[-1].append(frame.index)
    return [Scene(members[0], members[-1], members[len(members) // 2]) for members in scenes]
