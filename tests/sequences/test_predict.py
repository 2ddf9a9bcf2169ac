"""predict_video: per-frame depth in metres, the same as predict without smoothing, steadier with."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.sequences.frames import FrameReadError
from tr2m_cli.sequences.testing import damage_packet, moving_pattern, write_video

FRAMES = moving_pattern(6, 42, 56)


def test_frames_in_memory_give_what_predict_gives_without_smoothing(tiny_model):
    results = list(tiny_model.predict_video(FRAMES, "A room.", stabilize=False, batch_size=4))
    assert [r.index for r in results] == list(range(6)) and all(r.time_s is None for r in results)
    for result in results:
        expected = tiny_model.predict(FRAMES[result.index], "A room.")
        assert result.depth.shape == (42, 56) and result.depth.dtype == np.float32
        np.testing.assert_allclose(result.depth, expected, rtol=1e-5)


def test_smoothed_maps_still_give_the_depth_and_the_first_frame_is_untouched(tiny_model):
    results = list(tiny_model.predict_video(FRAMES, "A room.", fps=10, return_maps=True, every=2))
    plain = list(tiny_model.predict_video(FRAMES, "A room.", fps=10, return_maps=True, every=2, stabilize=False))
    assert [r.index for r in results] == [0, 2, 4] and results[1].time_s == pytest.approx(0.2)
    np.testing.assert_allclose(results[0].depth, plain[0].depth, rtol=1e-6)  # nothing to smooth with yet
    assert not np.allclose(results[2].scale_map, plain[2].scale_map, rtol=1e-4)
    for r in results:
        # the maps are resized to the frame like the depth, so the formula holds up to that resize
        error = np.abs(r.depth * (r.scale_map * r.relative_depth + r.shift_map) - 1.0)
        assert np.median(error) < 2e-3 and error.max() < 5e-2


def test_a_video_file_is_read_and_damage_is_raised_after_the_frames_before_it(tiny_model, tmp_path):
    pytest.importorskip("av", reason="the 'video' extra is not installed")
    path = write_video(tmp_path / "clip.mkv", moving_pattern(10, 48, 64), fps=10)
    assert [r.index for r in tiny_model.predict_video(path, "A street.", start="0.5s")] == [5, 6, 7, 8, 9]
    damage_packet(path, 7)
    seen = []
    with pytest.raises(FrameReadError, match="frame 7"):
        for result in tiny_model.predict_video(path, "A street.", batch_size=4):
            seen.append(result.index)
    assert seen == list(range(7))  # frames 4-6 were waiting for a full batch: they still ran


def test_a_caption_is_required(tiny_model):
    with pytest.raises(InputError, match="caption"):
        next(tiny_model.predict_video(FRAMES, ""))


def test_frames_in_memory_are_checked_as_photos_are(tiny_model):
    with pytest.raises(InputError, match="frame 1: image array of floats in \\[200, 200\\]: float photos must be in \\[0, 1\\]"):
        list(tiny_model.predict_video([FRAMES[0], np.full(FRAMES[1].shape, 200.0, np.float32)], "A room."))
