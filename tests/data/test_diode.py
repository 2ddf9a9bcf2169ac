"""DIODE outdoor: npy metres with the mask applied (the authors' code forgets it; apply_mask=False)."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError


def test_npy_depth_and_mask(tmp_path, native):
    scan = tmp_path / "val/outdoor/scene_00022/scan_00193"
    native.rgb(scan / "00022_00193_outdoor_000_000.png", (1, 3))
    np.save(scan / "00022_00193_outdoor_000_000_depth.npy", np.float32([[[12.5], [300.0], [0.0]]]))
    np.save(scan / "00022_00193_outdoor_000_000_depth_mask.npy", np.float32([[1, 0, 1]]))
    for root in (tmp_path, tmp_path / "val", tmp_path / "val" / "outdoor"):
        sample = open_dataset("diode", root=root, require_captions=False)[0]
        assert sample.depth.tolist() == [[12.5, 0.0, 0.0]] and sample.valid.tolist() == [[True, False, False]]
        assert sample.key == "scene_00022/scan_00193/00022_00193_outdoor_000_000"


def test_no_scenes(tmp_path):
    with pytest.raises(DatasetError, match="no scene_\\* folders"):
        open_dataset("diode", root=tmp_path)


def test_the_reference_reading_leaves_the_mask_unused(tmp_path, native):
    scan = tmp_path / "val/outdoor/scene_00022/scan_00193"
    native.rgb(scan / "x.png", (1, 3))
    np.save(scan / "x_depth.npy", np.float32([[[12.5], [300.0], [0.0]]]))
    np.save(scan / "x_depth_mask.npy", np.float32([[1, 0, 1]]))
    applied = open_dataset("diode", root=tmp_path, require_captions=False)
    reference = open_dataset("diode", root=tmp_path, require_captions=False, apply_mask=False)
    # The masked 300 m return counts as the authors' code counts it; zero depth never does.
    assert reference[0].valid.tolist() == [[True, True, False]] and reference[0].depth.tolist() == [[12.5, 300.0, 0.0]]
    assert "validity mask applied" in applied.differences_from_reference()[0]
    assert reference.differences_from_reference() == []
    (scan / "x_depth_mask.npy").unlink()  # unread by the reference reading, required otherwise
    assert reference.missing_files() == []
    assert [p.problem for p in applied.missing_files()] == [f"missing validity mask file {scan / 'x_depth_mask.npy'}"]
