"""Captions for clips: one per clip, or (with `per_scene`) one per scene.

A clip's caption comes from the same places as a photo's (`--caption-file` key, `drive.txt` beside
the video, `--caption-root`, `--caption`, `--domain`). Only when it has none and `--auto-caption`
is on does a captioner look at the clip itself: at one representative frame, the kept frame
nearest the middle of the converted span (the first seconds of a recording are often a hand or a
lens cap), or with `per_scene` at the middle kept frame of every scene between cuts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

import numpy as np

from .frames import FrameSelection, selected_span
from .scenes import Scene, SceneCutOptions, find_scenes


def middle_index(source, selection: FrameSelection) -> int:
    """The source index at the middle of the span `selection` keeps, from what the header
    says (frame count, frame rate); the first kept frame at or after it represents the clip."""
    first, end, _ = selected_span(selection, getattr(source.info, "frame_count", None), source.fps)
    return first + (end - first) // 2


def representative_frame(source, selection: FrameSelection) -> tuple[int, np.ndarray] | None:
    """(index, pixels) of the frame a single caption of the clip is written from; None when no
    frame of the selection can be read."""
    from .sources import clip_frames

    target = middle_index(source, selection)
    fallback = None
    for frame in clip_frames(source, selection, wanted=lambda index: index >= target or fallback is None):
        if frame.rgb is None:
            continue
        if frame.index >= target:
            return frame.index, frame.rgb
        fallback = (frame.index, frame.rgb)  # a selection shorter than the header said
    return fallback


def scene_frames(source, selection: FrameSelection, options: SceneCutOptions = SceneCutOptions()) -> list[tuple[Scene, np.ndarray]]:
    """Every scene of the kept frames with the pixels of its middle frame (two passes: one for
    the cuts, one for the chosen frames)."""
    from .sources import clip_frames

    scenes = find_scenes(clip_frames(source, selection), options)
    wanted = {scene.middle for scene in scenes}
    pixels = {f.index: f.rgb for f in clip_frames(source, selection, wanted=wanted.__contains__) if f.rgb is not None}
    return [(scene, pixels[scene.middle]) for scene in scenes if scene.middle in pixels]


@dataclass(frozen=True)
class FramePicture:
    """A frame to caption, standing in for its clip where a photo would be (same path, key and
    output stem, so sidecars and messages name the clip). `frame`: its index in the clip."""

    clip: Any  # the clip's InputImage
    frame: int
    rgb: np.ndarray = field(repr=False, compare=False)
    sidecar: bool = True  # --save-captions keeps this one as the clip's <stem>.txt (its first scene)

    @property
    def path(self) -> Path:
        return self.clip.path

    @property
    def key(self) -> str:
        return f"{self.clip.key} frame {self.frame}"

    @property
    def output_stem(self) -> PurePosixPath:
        return self.clip.output_stem

    def picture(self):
        from PIL import Image

        return Image.fromarray(self.rgb)


@dataclass
class SceneCaption:
    """The caption of the scene starting at frame `first`."""

    first: int
    frame: int  # the frame it was written from
    text: str


class ClipCaptioning:
    """Wraps a caption fallback (e.g. `--auto-caption`) so that clips without a caption get one
    from their frames. `open_source(clip)` opens a clip; `per_scene`: one caption per scene,
    kept in `scenes[clip.path]` (the clip's own caption is its first scene's)."""

    def __init__(self, fallback, open_source: Callable[[Any], Any], selection: FrameSelection, per_scene: bool = False) -> None:
        self.fallback = fallback
        self.name = fallback.name
        self.open_source = open_source
        self.selection = selection
        self.per_scene = per_scene
        self.scenes: dict[Path, list[SceneCaption]] = {}
        self.errors: list[str] = []

    def generate(self, items: Sequence[Any]) -> list[str | None]:
        from ..errors import Tr2mError

        pictures: list[Any] = []
        owners: list[int] = []  # pictures[j] captions items[owners[j]]
        for position, item in enumerate(items):
            if not getattr(item, "is_clip", False):
                pictures.append(item)
                owners.append(position)
                continue
            try:
                source = self.open_source(item)
                if self.per_scene:
                    chosen = [(scene.middle, rgb, scene.first) for scene, rgb in scene_frames(source, self.selection)]
                else:
                    found = representative_frame(source, self.selection)
                    chosen = [] if found is None else [(found[0], found[1], found[0])]
            except Tr2mError as exc:
                self.errors.append(f"{item.key}: no frame to caption ({exc})")
                continue
            for number, (index, rgb, first) in enumerate(chosen):
                pictures.append(FramePicture(item, index, rgb, sidecar=number == 0))
                owners.append(position)
                if self.per_scene:
                    self.scenes.setdefault(item.path, []).append(SceneCaption(first, index, ""))
        texts = list(self.fallback.generate(pictures)) if pictures else []
        captions: list[str | None] = [None] * len(items)
        for picture, owner, text in zip(pictures, owners, texts):
            if isinstance(picture, FramePicture) and self.per_scene:
                for scene in self.scenes[picture.path]:
                    if scene.frame == picture.frame:
                        scene.text = text or ""
            if captions[owner] is None and text:
                captions[owner] = text
        for scenes in self.scenes.values():
            scenes[:] = [s for s in scenes if s.text]
        return captions


def caption_at(scenes: Sequence[SceneCaption], index: int, default: str) -> str:
    """The caption of the scene holding frame `index` (the clip's caption outside any)."""
    text = default
    for scene in scenes:
        if scene.first <= index:
            text = scene.text
    return text

