"""HyperSim: HDF5 ray distance → planar depth, NaN invalid, the official split, a real file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.data.hypersim import FOCAL_PX, distance_to_planar


def test_distance_to_planar_by_hand():
    distance = np.full((3, 5), 10.0)
    planar = distance_to_planar(distance)
    assert planar[1, 2] == pytest.approx(10.0)  # the optical axis: distance = depth
    # Pixel (0, 0) sits 2 columns and 1 row off centre: depth = d·f/√(2² + 1² + f²)
    assert planar[0, 0] == pytest.approx(10.0 * FOCAL_PX / np.sqrt(4 + 1 + FOCAL_PX**2), rel=1e-6)
    assert (planar <= 10.0).all()


def _frame(root, native, scene, camera, frame, distance):
    images = root / scene / "images"
    native.rgb(images / f"scene_{camera}_final_preview" / f"frame.{frame:04d}.tonemap.jpg", distance.shape)
    (images / f"scene_{camera}_geometry_hdf5").mkdir(parents=True, exist_ok=True)
    with h5py.File(images / f"scene_{camera}_geometry_hdf5" / f"frame.{frame:04d}.depth_meters.hdf5", "w") as handle:
        handle.create_dataset("dataset", data=distance.astype(np.float16))


def test_nan_is_invalid_and_the_official_split_selects_test_frames(tmp_path, native):
    distance = np.array([[2.0, np.nan, 4.0]])
    for scene, frame in (("ai_001_001", 0), ("ai_001_001", 1), ("ai_002_001", 0)):
        _frame(tmp_path, native, scene, "cam_00", frame, distance)
    dataset = open_dataset("hypersim", root=tmp_path, require_captions=False)
    assert len(dataset) == 3 and any("every frame" in note for note in dataset.notes)
    sample = dataset[0]
    assert sample.valid.tolist() == [[True, False, True]] and sample.depth[0, 1] == 0
    assert sample.depth[0, 0] == pytest.approx(2.0 * FOCAL_PX / np.sqrt(1 + FOCAL_PX**2), rel=1e-6)
    assert sample.key == "ai_001_001/images/scene_cam_00_final_preview/frame.0000.tonemap"
    native.text(
        tmp_path / "metadata_images_split_scene_v1.csv",
        "scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,split_partition_name\n"
        "ai_001_001,cam_00,0,True,,train\nai_001_001,cam_00,1,True,,test\n"
        "ai_002_001,cam_00,0,True,,test\nai_002_001,cam_00,7,True,,test\n",
    )
    dataset = open_dataset("hypersim", root=tmp_path, require_captions=False)
    assert [(k.split("/")[0], k.rsplit("/", 1)[1]) for k in dataset.keys()] == [
        ("ai_001_001", "frame.0001.tonemap"),
        ("ai_002_001", "frame.0000.tonemap"),
    ]
    assert any("1 of the 3 official test frames are not on disk" in note for note in dataset.notes)


def test_real_depth_file(shared_data, tmp_path, native):
    real = shared_data / "realrgbd/hypersim/ai_037_002/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5"
    with h5py.File(real, "r") as handle:
        distance = np.asarray(handle["dataset"], dtype=np.float32)
    assert distance.shape == (768, 1024)
    _frame(tmp_path, native, "ai_037_002", "cam_00", 0, distance)
    sample = open_dataset("hypersim", root=tmp_path, require_captions=False)[0]
    # README: distances 2.96–13.23 m, no NaN; planar depth is never longer than the ray.
    assert distance.min() == pytest.approx(2.96, abs=0.01) and distance.max() == pytest.approx(13.23, abs=0.01)
    assert sample.valid.all() and (sample.depth <= distance + 1e-5).all()
    corner_ratio = sample.depth[0, 0] / distance[0, 0]
    assert corner_ratio == pytest.approx(FOCAL_PX / np.hypot(np.hypot(511.5, 383.5), FOCAL_PX), rel=1e-5)
