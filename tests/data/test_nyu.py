"""NYUv2 (BTS layout): millimetre PNGs, list files, the training border, real frames."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError


def test_millimetres_to_metres_and_zero_is_invalid(tmp_path, native):
    test = tmp_path / "official_splits" / "test"
    native.rgb(test / "bathroom" / "rgb_00045.jpg", (2, 3))
    native.png16(test / "bathroom" / "sync_depth_00045.png", [[0, 1000, 2500], [1, 65535, 9999]])
    native.text(tmp_path / "splits" / "nyudepthv2_test_files_with_gt.txt", "bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579\n")
    sample = open_dataset("nyu", root=tmp_path, require_captions=False)[0]
    np.testing.assert_array_equal(sample.depth, np.float32([[0, 1.0, 2.5], [0.001, 65.535, 9.999]]))
    np.testing.assert_array_equal(sample.valid, [[False, True, True], [True, True, True]])
    assert sample.key == "bathroom/rgb_00045" and sample.focal_px == pytest.approx(518.8579)


def test_training_split_drops_the_registration_border(tmp_path, native):
    sync = tmp_path / "sync" / "kitchen_0028b"
    native.rgb(sync / "rgb_00045.jpg", (480, 640))
    native.png16(sync / "sync_depth_00045.png", np.full((480, 640), 3000))
    native.text(tmp_path / "nyudepthv2_train_files_with_gt.txt", "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579\n")
    sample = open_dataset("nyu", "train", root=tmp_path, require_captions=False)[0]
    assert sample.key == "kitchen_0028b/rgb_00045"
    assert sample.valid.sum() == (472 - 45) * (608 - 43)
    assert sample.valid[45, 43] and not sample.valid[44, 100] and not sample.valid[100, 608]


def test_without_a_list_the_frames_on_disk_are_used_sorted(tmp_path, native):
    for scene in ("office", "bathroom"):
        native.rgb(tmp_path / "official_splits/test" / scene / "rgb_00001.jpg", (2, 2))
        native.png16(tmp_path / "official_splits/test" / scene / "sync_depth_00001.png", [[1, 2], [3, 4]])
    dataset = open_dataset("nyu", root=tmp_path, require_captions=False)
    assert dataset.keys() == ["bathroom/rgb_00001", "office/rgb_00001"]
    assert any("sorted order" in note for note in dataset.notes)


def test_wrong_layout_is_one_line_saying_what_was_expected(tmp_path):
    with pytest.raises(DatasetError) as info:
        open_dataset("nyu", root=tmp_path)
    assert "official_splits/test" in str(info.value) and "\n" not in str(info.value)


def test_real_bts_frames_decode_to_the_documented_range(shared_data, tmp_path):
    demo = shared_data / "realrgbd" / "nyu" / "metric3d_nyu_demo"
    lines = []
    for n in ("00000", "00050", "00100"):
        shutil.copy(demo / "rgb" / f"rgb_{n}.jpg", (tmp_path / "sync" / "basement").mkdir(parents=True, exist_ok=True) or tmp_path / "sync" / "basement" / f"rgb_{n}.jpg")
        shutil.copy(demo / "depth" / f"sync_depth_{n}.png", tmp_path / "sync" / "basement" / f"sync_depth_{n}.png")
        lines.append(f"/basement/rgb_{n}.jpg /basement/sync_depth_{n}.png 518.8579")
    (tmp_path / "nyudepthv2_train_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    dataset = open_dataset("nyu", "train", root=tmp_path, require_captions=False)
    values = []
    for sample in dataset:
        raw_valid = sample.depth > 0
        assert sample.image.shape == (480, 640, 3)
        values.append(sample.depth[raw_valid])
    values = np.concatenate(values)
    # README: valid depth 0.71–8.27 m over the three frames.
    assert values.min() == pytest.approx(0.71, abs=0.01) and values.max() == pytest.approx(8.27, abs=0.01)
