"""EXR depth: float32 metres in one channel, equal to the TIFF, unit and camera in the header."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.depth_files import read_depth_tiff, write_depth_tiff
from tr2m_cli.io.intrinsics import CameraOptions, resolve_intrinsics

OpenEXR = pytest.importorskip("OpenEXR", reason="OpenEXR is not installed (pip install '.[exr]')")

from tr2m_cli.io.exr import read_depth_exr, write_depth_exr  # noqa: E402


def test_exr_reads_back_equal_to_the_tiff_with_unit_and_intrinsics(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 80.0, size=(37, 53)).astype(np.float32)
    depth[0, 0] = np.nan  # missing depth travels as NaN in both
    intrinsics = resolve_intrinsics(37, 53, CameraOptions(fx=61.5, fy=60.0, cx=25.0, cy=17.5))
    metadata = {"model": "tiny", "caption": "Ein Zimmer – mit Möbeln.", "intrinsics": intrinsics.to_json()}
    write_depth_tiff(tmp_path / "a.depth.tiff", depth, metadata)
    write_depth_exr(tmp_path / "a.depth.exr", depth, metadata)
    from_tiff, _ = read_depth_tiff(tmp_path / "a.depth.tiff")
    from_exr, read_back = read_depth_exr(tmp_path / "a.depth.exr")
    assert from_exr.dtype == np.float32 and from_exr.shape == (37, 53)
    assert np.array_equal(from_exr, from_tiff, equal_nan=True) and np.array_equal(from_exr, depth, equal_nan=True)
    assert read_back["unit"] == "metres" and read_back["caption"] == metadata["caption"]
    with OpenEXR.File(str(tmp_path / "a.depth.exr")) as image:
        header, channels = image.header(), image.channels()
        assert list(channels) == ["Z"] and channels["Z"].pixels.dtype == np.float32
        assert header["unit"] == "metres" and "optical axis" in header["quantity"]
        assert np.allclose(header["intrinsics"], [[61.5, 0, 25.0], [0, 60.0, 17.5], [0, 0, 1]])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_unreadable_exr_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "bad.exr").write_bytes(b"not an exr")
    with pytest.raises(InputError, match="bad.exr: not a readable EXR"):
        read_depth_exr(tmp_path / "bad.exr")
    with pytest.raises(InputError, match="missing.exr: no such file"):
        read_depth_exr(tmp_path / "missing.exr")
