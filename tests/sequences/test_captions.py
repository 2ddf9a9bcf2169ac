"""Captions for clips: one representative frame, or one per scene, through any caption fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.io.captions import CaptionFallback
from tr2m_cli.io.inputs import find_inputs
from tr2m_cli.sequences.captions import ClipCaptioning, FramePicture, caption_at, middle_index, representative_frame
from tr2m_cli.sequences.frames import FrameSelection, Position
from tr2m_cli.sequences.sources import open_clip
from tr2m_cli.sequences.testing import moving_pattern


def _folder(tmp_path, frames, name="frames"):
    folder = tmp_path / name
    folder.mkdir()
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(folder / f"{i:04d}.png")
    return folder


def _marked(count, value_of):
    """Frames whose top-left pixel says which frame they are (red = index)."""
    frames = moving_pattern(count, 24, 32)
    for i, frame in enumerate(frames):
        frame[0, 0] = (value_of(i), 0, 0)
    return frames


def test_the_representative_frame_is_the_middle_of_the_converted_span(tmp_path):
    source = open_clip(_folder(tmp_path, _marked(20, lambda i: i)), sequence_folder=True)
    assert middle_index(source, FrameSelection()) == 10
    assert middle_index(source, FrameSelection(start=Position(4, "frame"), end=Position(8, "frame"))) == 6
    assert middle_index(source, FrameSelection(start=Position(2, "frame"), every=3, max_frames=2)) == 5
    index, rgb = representative_frame(source, FrameSelection(every=4))  # kept: 0 4 8 12 16 → first ≥ 10
    assert index == 12 and rgb[0, 0, 0] == 12


class _Recorder:
    """A caption fallback that writes what it was shown: the frame's red marker."""

    def __init__(self):
        self.seen = []

    def generate(self, items):
        self.seen.append(list(items))
        texts = []
        for item in items:
            picture = item.picture() if hasattr(item, "picture") else Image.open(item.path)
            texts.append(f"Frame marked {np.asarray(picture)[0, 0, 0]}.")
        return texts


def test_clips_without_captions_are_captioned_from_a_frame_and_photos_as_before(tmp_path):
    clip_dir = _folder(tmp_path, _marked(10, lambda i: 100 + i))
    photo = tmp_path / "photo.png"
    Image.fromarray(_marked(1, lambda i: 7)[0]).save(photo)
    found = find_inputs([photo])
    clip = find_inputs([clip_dir], sequence=True).clips[0]
    recorder = _Recorder()
    captioning = ClipCaptioning(
        CaptionFallback("recorder", recorder.generate), lambda item: open_clip(item.path, sequence_folder=True), FrameSelection()
    )
    captions = captioning.generate([clip, *found.images])
    assert captions == ["Frame marked 105.", "Frame marked 7."]
    (shown,) = recorder.seen
    assert isinstance(shown[0], FramePicture) and shown[0].frame == 5 and shown[0].path == clip.path
    assert "frame 5" in shown[0].key and shown[1] is found.images[0]


def test_per_scene_captions_follow_the_cuts(tmp_path):
    first = _marked(20, lambda i: 10)
    second = [255 - f[:, ::-1] for f in _marked(16, lambda i: 0)]
    for frame in second:
        frame[0, 0] = (200, 0, 0)
    clip = find_inputs([_folder(tmp_path, first + second)], sequence=True).clips[0]
    captioning = ClipCaptioning(
        CaptionFallback("recorder", _Recorder().generate),
        lambda item: open_clip(item.path, sequence_folder=True),
        FrameSelection(),
        per_scene=True,
    )
    assert captioning.generate([clip]) == ["Frame marked 10."]  # the clip's caption: its first scene's
    scenes = captioning.scenes[clip.path]
    assert [(s.first, s.frame, s.text) for s in scenes] == [(0, 10, "Frame marked 10."), (20, 28, "Frame marked 200.")]
    assert caption_at(scenes, 3, "x") == "Frame marked 10." and caption_at(scenes, 25, "x") == "Frame marked 200."


def test_a_clip_that_cannot_be_opened_gets_no_caption_and_says_why(tmp_path):
    from tr2m_cli.errors import InputError

    clip = find_inputs([_folder(tmp_path, _marked(3, lambda i: 1))], sequence=True).clips[0]

    def broken(item):
        raise InputError(f"{item.path}: unreadable")

    captioning = ClipCaptioning(CaptionFallback("recorder", _Recorder().generate), broken, FrameSelection())
    assert captioning.generate([clip]) == [None]
    assert "unreadable" in captioning.errors[0]


def test_auto_caption_fallback_captions_clip_frames_and_saves_one_sidecar(tmp_path, monkeypatch):
    """The real --auto-caption fallback reads a clip's frame from memory, keys captions per item
    (a clip's scenes share its path) and keeps only the clip's own caption as drive.txt."""
    import tr2m_cli.caption.run as run

    class Fake:
        spec = type("Spec", (), {"name": "fake"})()

        def caption_batch(self, pictures, max_new_tokens=None):
            return [f"A frame marked {np.asarray(p)[0, 0, 0]}." for p in pictures]

    monkeypatch.setattr("tr2m_cli.caption.captioner.Captioner", Fake)
    clip = find_inputs([_folder(tmp_path, _marked(4, lambda i: 50 + i))], sequence=True).clips[0]
    fallback = run.auto_caption_fallback(Fake(), save_sidecars=True, progress=False)
    pictures = [FramePicture(clip, 1, _marked(1, lambda i: 51)[0]), FramePicture(clip, 3, _marked(1, lambda i: 53)[0], sidecar=False)]
    assert fallback.generate(pictures) == ["A frame marked 51.", "A frame marked 53."]
    assert (tmp_path / "frames.txt").read_text(encoding="utf-8").strip() == "A frame marked 51."
    assert Path(clip.path).is_dir()
