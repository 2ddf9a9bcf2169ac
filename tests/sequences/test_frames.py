"""Which frames a run converts: positions, --every/--start/--end/--max-frames, lazy loading."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.sequences.frames import (
    FrameReadError,
    FrameSelection,
    Position,
    RawFrame,
    index_width,
    load_frames,
    select_frames,
)


@pytest.mark.parametrize(
    "text, value, unit",
    [("120", 120, "frame"), ("0", 0, "frame"), ("4s", 4.0, "s"), ("2.5s", 2.5, "s"), ("1500ms", 1.5, "s"),
     ("1:30", 90.0, "s"), ("1:02:03.5", 3723.5, "s"), (" 7 ", 7, "frame")],
)  # fmt: skip
def test_positions_are_frame_numbers_or_times(text, value, unit):
    assert Position.parse(text) == Position(value, unit)


@pytest.mark.parametrize("text", ["2.5", "-3", "abc", "1:75", "4 frames"])
def test_ambiguous_or_malformed_positions_are_refused_in_one_line(text):
    with pytest.raises(InputError) as caught:
        Position.parse(text, "--end")
    assert "--end" in str(caught.value) and "\n" not in str(caught.value)
    if text == "2.5":
        assert "2.5s" in str(caught.value)  # the hint says how to mean seconds


def test_selection_refuses_an_end_before_its_start_and_bad_counts():
    with pytest.raises(InputError):
        FrameSelection(start=Position(10, "frame"), end=Position(5, "frame"))
    with pytest.raises(InputError):
        FrameSelection(every=0)
    with pytest.raises(InputError):
        FrameSelection(max_frames=0)


def _raw(count, fps=None, times=True, loaded=None):
    loaded = loaded if loaded is not None else []

    def frame(i):
        def load():
            loaded.append(i)
            return np.full((2, 2, 3), i, np.uint8)

        return RawFrame(i, i / fps if (times and fps) else None, load)

    return [frame(i) for i in range(count)]


def _kept(selection, count=30, fps=10.0, times=True):
    return [f.index for f in select_frames(_raw(count, fps, times), selection, None if times else fps, "clip")]


def test_every_start_end_and_max_frames_by_frame_number():
    assert _kept(FrameSelection()) == list(range(30))
    assert _kept(FrameSelection(every=4)) == [0, 4, 8, 12, 16, 20, 24, 28]
    assert _kept(FrameSelection(start=Position(5, "frame"), end=Position(9, "frame"))) == [5, 6, 7, 8]
    # --every counts from the first frame of the window, not from frame 0
    assert _kept(FrameSelection(every=3, start=Position(5, "frame"))) == [5, 8, 11, 14, 17, 20, 23, 26, 29]
    assert _kept(FrameSelection(every=2, max_frames=3)) == [0, 2, 4]


def test_start_and_end_in_seconds_use_timestamps_or_the_frame_rate():
    window = FrameSelection(start=Position(1.0, "s"), end=Position(1.5, "s"))
    assert _kept(window) == [10, 11, 12, 13, 14]
    assert _kept(window, times=False) == [10, 11, 12, 13, 14]  # index / fps
    with pytest.raises(InputError, match="--fps"):
        list(select_frames(_raw(5, None, False), window, None, "frames/"))


def test_reading_stops_once_the_selection_is_over_and_skipped_frames_are_never_decoded():
    loaded = []
    consumed = []

    def source():
        for frame in _raw(1000, 10.0, loaded=loaded):
            consumed.append(frame.index)
            yield frame

    frames = list(load_frames(select_frames(source(), FrameSelection(every=5, end=Position(2.0, "s")), None, "c")))
    assert [f.index for f in frames] == [0, 5, 10, 15]
    assert loaded == [0, 5, 10, 15]
    assert max(consumed) == 20  # the first frame at or past the end, then no more


def test_unwanted_frames_come_without_pixels_and_a_bad_frame_does_not_end_the_clip():
    def load_bad():
        raise InputError("frame 1: unreadable")

    raw = [RawFrame(0, 0.0, lambda: np.zeros((2, 2, 3), np.uint8)), RawFrame(1, 0.1, load_bad),
           RawFrame(2, 0.2, lambda: np.ones((2, 2, 3), np.uint8))]  # fmt: skip
    frames = list(load_frames(raw, wanted=lambda index: index != 2))
    assert frames[0].rgb is not None and frames[0].error is None
    assert frames[1].rgb is None and "unreadable" in frames[1].error
    assert frames[2].rgb is None and frames[2].error is None


def test_a_damaged_source_ends_the_clip_after_the_frames_before_it():
    def source():
        yield RawFrame(0, 0.0, lambda: np.zeros((2, 2, 3), np.uint8))
        raise FrameReadError("clip.mp4: frame 1 is damaged", 1)

    seen = []
    with pytest.raises(FrameReadError) as caught:
        for frame in load_frames(source()):
            seen.append(frame.index)
    assert seen == [0] and caught.value.index == 1


def test_frame_names_have_six_digits_until_a_million_frames():
    assert index_width(None) == 6 and index_width(120) == 6 and index_width(1_000_000) == 6
    assert index_width(12_345_678) == 8


def test_frames_are_read_ahead_in_order_and_errors_arrive_where_they_happened():
    import threading

    from tr2m_cli.sequences.frames import read_ahead

    threads = set()

    def source():
        for i in range(20):
            threads.add(threading.current_thread().name)
            yield i
        raise FrameReadError("clip.mp4: frame 20 is damaged", 20)

    seen = []
    with pytest.raises(FrameReadError, match="frame 20"):
        for item in read_ahead(source(), ahead=3):
            seen.append(item)
    assert seen == list(range(20))
    assert threads == {"tr2m-frames"}  # decoded off the caller's thread


def test_leaving_a_read_ahead_early_stops_and_closes_the_source():
    from tr2m_cli.sequences.frames import read_ahead

    produced, closed = [], []

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.append(True)

    for item in read_ahead(source(), ahead=2):
        if item == 3:
            break
    assert closed == [True] and len(produced) < 10


def test_the_span_a_selection_keeps_is_known_from_the_header():
    from tr2m_cli.sequences.frames import selected_span

    assert selected_span(FrameSelection(), 100, 10.0) == (0, 100, 100)
    assert selected_span(FrameSelection(every=3), 100, 10.0) == (0, 100, 34)
    assert selected_span(FrameSelection(start=Position(2.0, "s"), end=Position(50, "frame")), 100, 10.0) == (20, 50, 30)
    assert selected_span(FrameSelection(max_frames=5, every=2), 100, None) == (0, 10, 5)
    assert selected_span(FrameSelection(end=Position(500, "frame")), 100, None) == (0, 100, 100)
    assert selected_span(FrameSelection(), None, None) == (0, 0, 0)  # a length nobody knows
