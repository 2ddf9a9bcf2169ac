"""Videos as clips: frames, indices and timestamps right, damage reported at the frame it hits."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("av", reason="the 'video' extra is not installed")

from tr2m_cli.errors import InputError, MissingExtraError  # noqa: E402
from tr2m_cli.sequences.frames import FrameReadError, FrameSelection, Position  # noqa: E402
from tr2m_cli.sequences.sources import clip_frames, describe, open_clip  # noqa: E402
from tr2m_cli.sequences.testing import damage_packet, moving_pattern, write_video  # noqa: E402
from tr2m_cli.sequences.video import VideoSource, upright  # noqa: E402

FRAMES = moving_pattern(24, 48, 64)


@pytest.fixture(scope="module", params=[".mp4", ".mkv", ".avi", ".webm"])
def clip(request, tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clips") / f"drive{request.param}", FRAMES, fps=10)


def test_every_frame_comes_back_in_order_with_its_time(clip):
    source = open_clip(clip)
    assert source.kind == "video" and source.fps == pytest.approx(10.0)
    assert source.info.frame_count == 24 and source.info.size == (48, 64)
    frames = list(clip_frames(source))
    assert [f.index for f in frames] == list(range(24))
    assert [f.time_s for f in frames] == pytest.approx([i / 10 for i in range(24)], abs=1e-3)
    for frame in frames:
        assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8
        # lossy codecs: close to the frame that was encoded, and far from its neighbours
        error = np.abs(frame.rgb.astype(float) - FRAMES[frame.index]).mean()
        other = np.abs(frame.rgb.astype(float) - FRAMES[(frame.index + 5) % 24]).mean()
        assert error < 6 and error < other / 2


def test_every_start_end_and_max_frames_pick_source_frame_indices(clip):
    source = open_clip(clip)
    pick = lambda **kw: [(f.index, round(f.time_s, 2)) for f in clip_frames(source, FrameSelection(**kw))]  # noqa: E731
    assert pick(every=5) == [(0, 0.0), (5, 0.5), (10, 1.0), (15, 1.5), (20, 2.0)]
    assert pick(start=Position.parse("1s"), end=Position.parse("1500ms")) == [(10, 1.0), (11, 1.1), (12, 1.2), (13, 1.3), (14, 1.4)]
    assert pick(start=Position.parse("20")) == [(20, 2.0), (21, 2.1), (22, 2.2), (23, 2.3)]
    assert [i for i, _ in pick(every=3, start=Position.parse("4"), max_frames=3)] == [4, 7, 10]


def test_a_damaged_frame_ends_the_clip_there_and_keeps_the_frames_before_it(tmp_path):
    path = write_video(tmp_path / "damaged.mkv", FRAMES, fps=10)
    damage_packet(path, 9)  # ultrafast H.264 has no B-frames: packet 9 is frame 9
    kept = []
    with pytest.raises(FrameReadError) as caught:
        for frame in clip_frames(open_clip(path)):
            kept.append(frame.index)
    assert kept == list(range(9))
    assert caught.value.index == 9
    message = str(caught.value)
    assert "frame 9" in message and str(path) in message and "\n" not in message


def test_a_video_cut_short_is_reported_as_truncated_at_its_first_missing_frame(tmp_path):
    path = write_video(tmp_path / "cut.mkv", FRAMES, fps=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # Matroska keeps its header (and duration) in front
    kept = []
    with pytest.raises(FrameReadError) as caught:
        for frame in clip_frames(open_clip(path)):
            kept.append(frame.index)
    assert 0 < len(kept) < 24 and kept == list(range(len(kept)))
    assert caught.value.index == len(kept)
    assert "truncated" in str(caught.value) and f"frame {len(kept)}" in str(caught.value)


def test_an_mp4_without_its_index_cannot_be_opened_and_says_so(tmp_path):
    path = write_video(tmp_path / "cut.mp4", FRAMES, fps=10)  # the index (moov) is written last
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FrameReadError) as caught:
        open_clip(path)
    assert caught.value.index == 0 and str(path) in str(caught.value) and "truncated" in str(caught.value)


def test_a_stopped_selection_is_not_mistaken_for_truncation(clip):
    frames = list(clip_frames(open_clip(clip), FrameSelection(max_frames=2)))
    assert [f.index for f in frames] == [0, 1]


def test_files_that_are_not_videos_are_one_line_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InputError) as caught:
        VideoSource(text)
    assert str(text) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(InputError, match="no such file"):
        VideoSource(tmp_path / "missing.mp4")


def test_rotated_phone_video_is_turned_upright():
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # landscape as stored
    assert upright(stored, 0) is stored
    turned = upright(stored, -90)  # FFmpeg's angle for a phone held upright: turn clockwise
    assert turned.shape == (3, 2, 3)
    assert (turned[0, :, 0] == stored[::-1, 0, 0]).all()  # the stored left column is the top row
    assert (upright(stored, 90) == np.rot90(stored, 1)).all()
    assert (upright(stored, 180) == stored[::-1, ::-1]).all()


def test_describe_records_what_clip_json_needs(clip):
    record = describe(open_clip(clip))
    assert record["kind"] == "video" and record["fps"] == pytest.approx(10.0) and record["frame_count"] == 24
    assert record["duration_s"] == pytest.approx(2.4, abs=0.11)


def test_without_the_video_extra_the_message_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(MissingExtraError, match=r"tr2m\[video\]"):
        VideoSource(tmp_path / "x.mp4")
