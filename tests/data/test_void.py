"""VOID-1500: paired list files, v / 256, intrinsics from K.txt."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError


def _write(root, native, depths=1):
    image = "void_1500/data/birthplace_of_internet/image/1552097915.0136.png"
    depth = image.replace("/image/", "/ground_truth/")
    native.rgb(root / image, (1, 3))
    native.png16(root / depth, [[0, 64, 1280]])
    native.text(root / "void_1500/data/birthplace_of_internet/K.txt", "514.638 0 315.267\n0 518.858 247.358\n0 0 1\n")
    native.text(root / "void_1500/test_image.txt", image + "\n")
    native.text(root / "void_1500/test_ground_truth.txt", (depth + "\n") * depths)
    native.text(root / "void_1500/test_intrinsics.txt", "void_1500/data/birthplace_of_internet/K.txt\n")
    return image


def test_depth_over_256_with_focal_from_k(tmp_path, native):
    image = _write(tmp_path, native)
    for root in (tmp_path, tmp_path / "void_1500"):  # void_release/ or void_1500/ itself
        sample = open_dataset("void", root=root, require_captions=False)[0]
        np.testing.assert_array_equal(sample.depth, np.float32([[0, 0.25, 5.0]]))
        assert sample.key == image[:-4] and sample.focal_px == pytest.approx(514.638)


def test_lists_of_different_length_are_an_error(tmp_path, native):
    _write(tmp_path, native, depths=2)
    with pytest.raises(DatasetError, match="1 images but test_ground_truth.txt lists 2 depth maps"):
        open_dataset("void", root=tmp_path)
    with pytest.raises(DatasetError, match="void_1500/train_image.txt: missing"):
        open_dataset("void", "train", root=tmp_path)
