"""iBims-1: uint16 spanning 0–50 m, two masks."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError


def test_scale_and_masks(tmp_path, native):
    native.text(tmp_path / "imagelist.txt", "corridor_01\n")
    native.rgb(tmp_path / "rgb" / "corridor_01.png", (1, 4))
    native.png16(tmp_path / "depth" / "corridor_01.png", [[65535, 13107, 1311, 13107]])
    from PIL import Image

    for folder, values in (("mask_invalid", [[1, 1, 1, 0]]), ("mask_transp", [[255, 255, 0, 255]])):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.asarray(values, dtype=np.uint8)).save(tmp_path / folder / "corridor_01.png")
    sample = open_dataset("ibims", root=tmp_path, require_captions=False)[0]
    np.testing.assert_allclose(sample.depth[0, :2], [50.0, 13107 * 50 / 65535], rtol=1e-6)  # 10.0 m
    assert sample.valid.tolist() == [[True, True, False, False]] and sample.key == "rgb/corridor_01"


def test_missing_imagelist(tmp_path):
    with pytest.raises(DatasetError, match="imagelist.txt: missing"):
        open_dataset("ibims", root=tmp_path)
