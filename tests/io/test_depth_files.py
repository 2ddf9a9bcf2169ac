"""Depth files round-trip exactly and say they are in metres."""

from __future__ import annotations

import numpy as np
import tifffile

from tr2m_cli.io.depth_files import read_depth_png16, read_depth_tiff, write_depth_npy, write_depth_png16, write_depth_tiff


def test_tiff_is_float32_metres_with_its_metadata(tmp_path):
    depth = np.linspace(0.5, 9.5, 12, dtype=np.float64).reshape(3, 4)
    write_depth_tiff(tmp_path / "d.tiff", depth, {"caption": "Un café près de la fenêtre.", "model": "m"})
    read, metadata = read_depth_tiff(tmp_path / "d.tiff")
    assert read.dtype == np.float32 and np.array_equal(read, depth.astype(np.float32))
    assert metadata == {"unit": "metres", "caption": "Un café près de la fenêtre.", "model": "m"}
    with tifffile.TiffFile(tmp_path / "d.tiff") as tiff:  # any TIFF reader sees the same
        assert '"unit": "metres"' in tiff.pages[0].description
    assert [p.name for p in tmp_path.iterdir()] == ["d.tiff"]


def test_npy_is_float32_metres(tmp_path):
    write_depth_npy(tmp_path / "d.npy", np.ones((2, 3)))
    loaded = np.load(tmp_path / "d.npy")
    assert loaded.dtype == np.float32 and loaded.shape == (2, 3)


def test_png16_is_millimetres_with_zero_for_no_depth_and_counts_saturation(tmp_path):
    depth = np.array([[1.2346, 0.0002, np.nan], [0.0, 70.0, 65.535]], dtype=np.float32)
    assert write_depth_png16(tmp_path / "d.png", depth) == 1
    raw = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "d.png"))
    assert raw.dtype == np.uint16 and raw.tolist() == [[1235, 1, 0], [0, 65535, 65535]]
    back = read_depth_png16(tmp_path / "d.png")
    assert back[0, 0] == np.float32(1.235) and np.isnan(back[0, 2]) and np.isnan(back[1, 0])
