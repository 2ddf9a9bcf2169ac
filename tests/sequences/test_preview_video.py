"""The clip's depth video: one colour range for every frame, a colour bar, the clip's timing, atomic."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the 'video' extra is not installed")

from tr2m_cli.io.preview import PreviewOptions, colorize  # noqa: E402
from tr2m_cli.sequences.preview_video import FRAMES_FOLDER, PreviewFrames, preview_size, render_preview_video  # noqa: E402


def _decoded(path):
    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def test_preview_sizes_are_at_most_the_limit():
    assert preview_size(480, 640) == (480, 640)
    assert preview_size(2160, 3840) == (720, 1280)
    assert preview_size(101, 151) == (101, 151) and preview_size(101, 151, max_side=75) == (50, 75)


def test_frames_are_kept_at_preview_size_until_cleared(tmp_path):
    frames = PreviewFrames(tmp_path / "clip", max_side=32)
    frames.add(7, 0.7, np.full((48, 64), 2.5, np.float32))
    frames.add(3, None, np.full((48, 64), 1.0, np.float32))
    assert frames.indices() == [3, 7] and frames.has(7) and not frames.has(4)
    depth, time = frames.load(7)
    assert depth.shape == (24, 32) and time == pytest.approx(0.7) and np.allclose(depth, 2.5, rtol=1e-3)
    assert frames.load(3)[1] is None
    assert (tmp_path / "clip" / FRAMES_FOLDER).is_dir()
    frames.clear()
    assert frames.indices() == [] and not (tmp_path / "clip" / FRAMES_FOLDER).exists()


def test_the_range_spans_the_whole_clip(tmp_path):
    frames = PreviewFrames(tmp_path)
    for index, level in enumerate([1.0, 2.0, 3.0, 4.0]):
        frames.add(index, index / 10, np.full((20, 30), level, np.float32))
    low, high = frames.depth_range(PreviewOptions(percentiles=(0.0, 100.0)))
    assert (low, high) == pytest.approx((1.0, 4.0), rel=1e-3)
    assert frames.depth_range(PreviewOptions(depth_range=(0.5, 9.0))) == (0.5, 9.0)


def test_one_colour_per_depth_in_every_frame_and_the_clips_timing(tmp_path):
    frames = PreviewFrames(tmp_path / "clip")
    times = [0.0, 0.1, 0.25, 0.5]  # a variable frame rate (a dropped frame, --every)
    for index, time in enumerate(times):
        depth = np.full((48, 64), 1.0 + index, np.float32)
        depth[:, :8] = 2.0  # the same depth in every frame must get the same colour
        frames.add(index * 3, time, depth)
    dest = tmp_path / "clip" / "drive.depth.mp4"
    options = PreviewOptions(depth_range=(1.0, 4.0))
    result = render_preview_video(dest, frames, fps=10, options=options)
    assert result["frames"] == 4 and result["range_m"] == [1.0, 4.0]
    decoded = _decoded(dest)
    assert [t for t, _ in decoded] == pytest.approx(times, abs=2e-3)
    expected = colorize(np.full((1, 1), 2.0, np.float32), 1.0, 4.0)[0, 0].astype(int)
    for _, image in decoded:
        assert image.shape == (48, 64, 3)
        assert np.abs(image[20:28, 2:6].reshape(-1, 3).mean(0) - expected).max() < 12  # H.264 4:2:0 tolerance
    assert not list((tmp_path / "clip").glob(".tr2m-tmp-*"))


def test_a_colour_bar_widens_the_video(tmp_path):
    frames = PreviewFrames(tmp_path)
    for index in range(3):
        frames.add(index, None, np.linspace(1, 5, 120 * 160, dtype=np.float32).reshape(120, 160))
    dest = tmp_path / "bar.mp4"
    render_preview_video(dest, frames, fps=5, options=PreviewOptions(colorbar=True))
    decoded = _decoded(dest)
    assert len(decoded) == 3
    height, width = decoded[0][1].shape[:2]
    assert height == 120 and width > 170 and width % 2 == 0
    assert decoded[1][0] == pytest.approx(0.2, abs=2e-3)  # no timestamps: index / fps


def test_a_failed_render_leaves_no_file(tmp_path, monkeypatch):
    frames = PreviewFrames(tmp_path)
    frames.add(0, 0.0, np.ones((8, 8), np.float32))
    frames.add(1, 0.1, np.ones((8, 8), np.float32))
    dest = tmp_path / "clip.mp4"
    import tr2m_cli.sequences.preview_video as module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "colorize", broken)
    with pytest.raises(OSError):
        render_preview_video(dest, frames, fps=10)
    assert not dest.exists() and not list(tmp_path.glob(".tr2m-tmp-*"))


def test_frames_whose_copy_is_gone_are_read_from_their_depth_files(tmp_path):
    reads = []

    def from_disk(index):
        reads.append(index)
        return np.full((48, 64), 3.0, np.float32)

    frames = PreviewFrames(tmp_path, fallback=from_disk, has_fallback=lambda index: index == 5, times={5: 0.5}.get)
    assert frames.has(5) and not frames.has(6) and reads == []  # asking is cheap
    frames.add(6, 0.6, np.full((48, 64), 1.0, np.float32))
    depth, time = frames.load(5)
    assert reads == [5] and time == 0.5 and np.allclose(depth, 3.0)
    render_preview_video(tmp_path / "v.mp4", frames, fps=10, indices=[5, 6])
    assert [t for t, _ in _decoded(tmp_path / "v.mp4")] == pytest.approx([0.5, 0.6], abs=2e-3)
