"""Back-projection, flying pixels, sampling, and PLY files that Open3D reads."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.intrinsics import CameraOptions, resolve_intrinsics
from tr2m_cli.io.pointcloud import PointCloudOptions, cloud_stride, flying_pixels, make_point_cloud, write_ply


def camera(h=60, w=80, f=100.0):
    return resolve_intrinsics(h, w, CameraOptions(fx=f, cx=(w - 1) / 2, cy=(h - 1) / 2))


def colours(h=60, w=80):
    return np.full((h, w, 3), 128, dtype=np.uint8)


def test_a_flat_wall_back_projects_to_a_plane_at_its_depth():
    depth = np.full((60, 80), 2.0, dtype=np.float32)
    points, point_colors = make_point_cloud(depth, colours(), camera(), PointCloudOptions())
    assert points.shape == (60 * 80, 3) and point_colors.shape == (60 * 80, 3)
    assert np.allclose(points[:, 2], 2.0)
    # The corner pixel (0, 0) is 39.5 px left and 29.5 px up of the centre: X = -39.5·2/100.
    assert np.allclose(points[0], [-0.79, -0.59, 2.0])


def step_with_ramp():
    """A box at 1 m before a wall at 3 m, joined by a 3-pixel ramp as an upsampled prediction has."""
    depth = np.full((60, 80), 3.0, dtype=np.float32)
    depth[:, :38] = 1.0
    depth[:, 38:41] = [1.5, 2.0, 2.5]
    return depth


def test_flying_pixels_at_depth_edges_are_dropped_but_slanted_floors_kept():
    mask = flying_pixels(step_with_ramp(), camera(), 5.0)
    assert mask[:, 37:42].all() and not mask[:, :36].any() and not mask[:, 43:].any()
    # A surface at angle θ to the viewing ray grows by z·cot(θ)/f per pixel (footprint z/f).
    rows = np.arange(60, dtype=np.float64)[:, None]

    def surface(angle):
        return np.repeat(2.0 * (1 + 1 / np.tan(np.radians(angle)) / 100.0) ** rows, 80, axis=1).astype(np.float32)

    assert not flying_pixels(surface(20), camera(), 5.0).any()  # a floor seen at 20°: kept
    assert flying_pixels(surface(4), camera(), 5.0).all()  # seen almost edge-on: dropped
    assert not flying_pixels(step_with_ramp(), camera(), 0.0).any()  # 0 keeps everything


def test_max_depth_stride_voxels_and_max_points():
    depth = step_with_ramp()
    keep_all = PointCloudOptions(edge_angle_deg=0)
    near, _ = make_point_cloud(depth, colours(), camera(), PointCloudOptions(edge_angle_deg=0, max_depth=1.2))
    assert len(near) == 60 * 38
    strided, _ = make_point_cloud(depth, colours(30, 40), camera(), PointCloudOptions(edge_angle_deg=0, stride=2))
    assert len(strided) == 30 * 40 and np.allclose(strided[1, 0] - strided[0, 0], 2 * 1.0 / 100.0)
    voxels, voxel_colours = make_point_cloud(depth, colours(), camera(), PointCloudOptions(edge_angle_deg=0, voxel_size=0.5))
    assert 0 < len(voxels) < 60 * 80 and (voxel_colours == 128).all()
    capped, _ = make_point_cloud(depth, colours(), camera(), PointCloudOptions(edge_angle_deg=0, stride=1, max_points=1000))
    assert len(capped) == 1000
    # Without a stride, the smallest stride whose grid fits max_points: 3 → 20 × 27 points.
    fitted, _ = make_point_cloud(depth, colours(20, 27), camera(), PointCloudOptions(edge_angle_deg=0, max_points=1000))
    assert len(fitted) == 20 * 27
    assert len(make_point_cloud(depth, colours(), camera(), keep_all)[0]) == 60 * 80


def test_default_stride_fits_the_point_budget():
    assert cloud_stride(480, 640, PointCloudOptions()) == 1
    assert cloud_stride(3000, 4000, PointCloudOptions()) == 4  # 12 MP → 750 k points ≤ 1 M
    assert cloud_stride(3000, 4000, PointCloudOptions(stride=3)) == 3


def test_invalid_and_missing_depth_give_no_points():
    depth = np.full((60, 80), 2.0, dtype=np.float32)
    depth[0, :10] = np.nan
    depth[1, :10] = 0.0
    depth[2, :10] = np.inf
    points, _ = make_point_cloud(depth, colours(), camera(), PointCloudOptions(edge_angle_deg=0))
    assert len(points) == 60 * 80 - 30 and np.isfinite(points).all()


def test_ply_files_open_in_open3d_with_their_colours(tmp_path, open3d):
    o3d = open3d
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3)).astype(np.float32)
    point_colors = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    write_ply(tmp_path / "cloud.ply", points, point_colors, comments=("metres",))
    cloud = o3d.io.read_point_cloud(str(tmp_path / "cloud.ply"))
    assert cloud.has_colors() and len(cloud.points) == 500
    assert np.allclose(np.asarray(cloud.points), points, atol=1e-6)
    assert np.allclose(np.asarray(cloud.colors) * 255, point_colors, atol=1e-3)
    assert (tmp_path / "cloud.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\ncomment metres\n")


def test_normals_face_the_camera(open3d):
    """A plane tilted 30° about the x axis, 2 m ahead: every normal is the plane's, turned to the
    camera (n · p < 0), whatever the orientation Open3D's plane fit first gave it."""
    from tr2m_cli.io.pointcloud import estimate_normals

    rows, cols = np.mgrid[0:60, 0:80].astype(np.float32)
    x, y = (cols - 40) / 40.0, (rows - 30) / 40.0
    points = np.stack([x, y, 2.0 + np.tan(np.radians(30)) * y], axis=-1).reshape(-1, 3)
    normals = estimate_normals(points)
    plane = np.array([0.0, np.tan(np.radians(30)), -1.0])
    plane /= np.linalg.norm(plane)  # the normal of z = 2 + y·tan 30° that points back at the camera
    assert normals.shape == points.shape and np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert (np.einsum("ij,ij->i", normals, points) < 0).all()
    assert np.allclose(normals, plane, atol=1e-4)


def test_statistical_outlier_removal_drops_stray_points_only(open3d):
    from tr2m_cli.io.pointcloud import remove_statistical_outliers

    rng = np.random.default_rng(1)
    surface = np.stack([rng.uniform(-1, 1, 2000), rng.uniform(-1, 1, 2000), np.full(2000, 3.0)], axis=1)
    strays = np.array([[0.0, 0.0, 1.0], [0.5, -0.5, 6.0], [3.0, 3.0, 3.0]])
    points = np.concatenate([surface, strays]).astype(np.float32)
    point_colors = np.zeros((len(points), 3), dtype=np.uint8)
    point_colors[-3:] = 255
    kept, kept_colors = remove_statistical_outliers(points, point_colors)
    assert not (kept_colors == 255).any()  # every stray is gone, with its colour
    assert len(kept) >= 0.95 * 2000 and np.allclose(kept[:, 2], 3.0)


def test_ply_normals_are_written_and_read_back(tmp_path, open3d):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    normals = -points / np.linalg.norm(points, axis=1, keepdims=True)
    write_ply(tmp_path / "n.ply", points, np.zeros((50, 3), np.uint8), normals=normals)
    cloud = open3d.io.read_point_cloud(str(tmp_path / "n.ply"))
    assert cloud.has_normals() and np.allclose(np.asarray(cloud.normals), normals, atol=1e-6)
    assert np.allclose(np.asarray(cloud.points), points, atol=1e-6)


def test_a_non_positive_cut_names_the_convert_option():
    with pytest.raises(InputError, match="--cloud-max-depth 0: must be positive"):
        PointCloudOptions(max_depth=0)
