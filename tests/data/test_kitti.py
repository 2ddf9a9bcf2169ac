"""KITTI Eigen split: raw images + annotated depth (v / 256), None lines, real frames."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError

DRIVE = "2011_09_26_drive_0002_sync"


def _layout(root, native, frames, depth_values, gt_folder="data_depth_annotated/train"):
    lines = []
    for frame in frames:
        rgb = f"2011_09_26/{DRIVE}/image_02/data/{frame}.png"
        depth = f"{DRIVE}/proj_depth/groundtruth/image_02/{frame}.png"
        native.rgb(root / rgb, np.asarray(depth_values).shape)
        native.png16(root / gt_folder / depth, depth_values)
        lines.append(f"{rgb} {depth} 721.5377")
    return lines


def test_annotated_depth_over_256_and_none_lines_left_out(tmp_path, native):
    lines = _layout(tmp_path, native, ["0000000069"], [[0, 256, 1], [20480, 65535, 512]])
    lines.insert(0, f"2011_09_26/{DRIVE}/image_02/data/0000000001.png None 721.5377")
    native.text(tmp_path / "eigen_test_files_with_gt.txt", "\n".join(lines) + "\n")
    dataset = open_dataset("kitti", root=tmp_path, require_captions=False)
    assert len(dataset) == 1
    sample = dataset[0]
    np.testing.assert_array_equal(sample.depth, np.float32([[0, 1.0, 0.00390625], [80.0, 255.99609375, 2.0]]))
    assert not sample.valid[0, 0] and sample.valid[0, 2]
    assert sample.key == f"2011_09_26/{DRIVE}/image_02/data/0000000069" and sample.focal_px == pytest.approx(721.5377)


def test_ground_truth_in_train_or_val_or_its_own_root(tmp_path, native):
    lines = _layout(tmp_path, native, ["0000000005"], [[256]], "data_depth_annotated/val")
    lines += _layout(tmp_path, native, ["0000000008"], [[512]], "data_depth_annotated/train")
    native.text(tmp_path / "data_splits" / "kitti" / "eigen_test_files_with_gt.txt", "\n".join(lines))
    dataset = open_dataset("kitti", root=tmp_path, require_captions=False)
    assert [float(s.depth[0, 0]) for s in dataset] == [1.0, 2.0]
    separate = tmp_path / "annotated"
    shutil.copytree(tmp_path / "data_depth_annotated" / "val", separate)
    dataset = open_dataset("kitti", root=tmp_path, require_captions=False, gt_root=separate)
    assert dataset.entries[0].depth.is_relative_to(separate)


def test_missing_list_names_it(tmp_path):
    with pytest.raises(DatasetError, match="no eigen_test_files_with_gt.txt"):
        open_dataset("kitti", root=tmp_path)


def test_real_annotated_frames_decode_to_the_documented_range(shared_data, tmp_path):
    demo = shared_data / "realrgbd" / "kitti" / "metric3d_kitti_demo"
    lines = []
    for frame in ("0000000005", "0000000050", "0000000100"):
        rgb = tmp_path / f"2011_09_26/{DRIVE}/image_02/data/{frame}.png"
        depth = tmp_path / f"data_depth_annotated/{DRIVE}/proj_depth/groundtruth/image_02/{frame}.png"
        rgb.parent.mkdir(parents=True, exist_ok=True)
        depth.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo / "rgb" / f"{frame}.png", rgb)
        shutil.copy(demo / "depth" / f"{frame}.png", depth)
        lines.append(f"{rgb.relative_to(tmp_path)} {depth.relative_to(tmp_path / 'data_depth_annotated')} 721.5377")
    (tmp_path / "eigen_test_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    samples = list(open_dataset("kitti", root=tmp_path, require_captions=False))
    values = np.concatenate([s.depth[s.valid] for s in samples])
    # README: valid depth 5.1–84.9 m, about 20 % of pixels, the top third (nearly) empty.
    assert values.min() == pytest.approx(5.1, abs=0.05) and values.max() == pytest.approx(84.9, abs=0.05)
    for sample in samples:
        assert sample.image.shape == (375, 1242, 3)
        assert 0.1 < sample.valid.mean() < 0.3 and not sample.valid[:115].any()


def test_a_frame_without_annotated_depth_is_named_where_the_others_are(tmp_path, native):
    """Ground truth under data_depth_annotated/val/: a missing frame is named there, not at the
    first folder searched; no ground truth at all is one error naming --kitti-gt-root."""
    lines = _layout(tmp_path, native, ["0000000005", "0000000008"], [[256]], "data_depth_annotated/val")
    native.text(tmp_path / "eigen_test_files_with_gt.txt", "\n".join(lines) + "\n")
    gone = tmp_path / "data_depth_annotated/val" / lines[1].split()[1]
    gone.unlink()
    dataset = open_dataset("kitti", root=tmp_path, require_captions=False)
    assert dataset.entries[1].depth == gone
    assert [p.problem for p in dataset.missing_files()] == [f"missing depth file {gone}"]
    with pytest.raises(DatasetError, match=str(gone)):
        dataset[1]
    (tmp_path / "data_depth_annotated/val" / lines[0].split()[1]).unlink()
    with pytest.raises(DatasetError, match=r"no KITTI annotated depth found .*data_depth_annotated/val.*--kitti-gt-root"):
        open_dataset("kitti", root=tmp_path, require_captions=False)
