"""Folders of numbered frames as one clip."""

from __future__ import annotations

import pytest
from PIL import Image

from tr2m_cli.errors import InputError
from tr2m_cli.sequences.folders import FrameFolderSource, frame_files, natural_key
from tr2m_cli.sequences.frames import FrameSelection, Position
from tr2m_cli.sequences.sources import clip_frames, open_clip
from tr2m_cli.sequences.testing import moving_pattern


def test_frames_sort_by_their_numbers_not_their_spelling():
    names = ["img10.png", "img2.png", "img1.png", "IMG3.png", "img02b.png"]
    assert sorted(names, key=natural_key) == ["img1.png", "img2.png", "img02b.png", "IMG3.png", "img10.png"]


@pytest.fixture
def frames_dir(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, rgb in enumerate(moving_pattern(12, 24, 32)):
        Image.fromarray(rgb).save(folder / f"frame_{i + 1}.png")  # 1-based, unpadded: 1..12
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub").mkdir()
    return folder


def test_a_numbered_folder_is_a_clip_in_frame_order(frames_dir):
    files = frame_files(frames_dir)
    assert [f.name for f in files] == [f"frame_{i}.png" for i in range(1, 13)]
    source = open_clip(frames_dir, sequence_folder=True)
    frames = list(clip_frames(source))
    assert [f.index for f in frames] == list(range(12))
    assert [f.source for f in frames][:3] == ["frame_1.png", "frame_2.png", "frame_3.png"]
    assert frames[0].time_s is None and frames[5].rgb.shape == (24, 32, 3)


def test_fps_gives_times_and_time_based_selection(frames_dir):
    from tr2m_cli.sequences.sources import ClipOptions

    source = open_clip(frames_dir, ClipOptions(fps=4.0), sequence_folder=True)
    frames = list(clip_frames(source, FrameSelection(start=Position.parse("1s"), every=2)))
    assert [(f.index, f.time_s) for f in frames] == [(4, 1.0), (6, 1.5), (8, 2.0), (10, 2.5)]
    with pytest.raises(InputError, match="--fps"):
        list(clip_frames(open_clip(frames_dir, sequence_folder=True), FrameSelection(end=Position.parse("2s"))))


def test_an_unreadable_frame_fails_alone(frames_dir):
    (frames_dir / "frame_5.png").write_bytes(b"broken")
    frames = list(clip_frames(open_clip(frames_dir, sequence_folder=True)))
    assert len(frames) == 12
    assert frames[4].rgb is None and "frame 4" in frames[4].error and "frame_5.png" in frames[4].error
    assert all(f.rgb is not None for f in frames if f.index != 4)


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no frames"):
        FrameFolderSource(tmp_path)
