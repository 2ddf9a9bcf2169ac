"""The public save helpers: each output from a Prediction-like object or from arrays, the same
files convert writes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import tr2m_cli
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.intrinsics import CameraOptions, Intrinsics, resolve_intrinsics
from tr2m_cli.io.mesh import make_mesh
from tr2m_cli.io.pointcloud import PointCloudOptions, make_point_cloud


@dataclass
class Result:  # what a Prediction offers the helpers
    depth: np.ndarray
    intrinsics: Intrinsics
    image: np.ndarray


@pytest.fixture
def result():
    depth = np.full((40, 60), 3.0, dtype=np.float32)
    depth[:, :25] = 1.0
    image = np.random.default_rng(0).integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    return Result(depth, resolve_intrinsics(40, 60, CameraOptions(fx=70.0)), image)


def test_the_helpers_are_public_and_write_what_the_library_makes(tmp_path, result, open3d):
    assert tr2m_cli.save_ply is tr2m_cli.io.save.save_ply
    tr2m_cli.save_depth_tiff(tmp_path / "a.depth.tiff", result, metadata={"caption": "A box."})
    depth, metadata = read_depth_tiff(tmp_path / "a.depth.tiff")
    assert np.array_equal(depth, result.depth) and metadata["unit"] == "metres" and metadata["caption"] == "A box."
    assert Intrinsics.from_json(metadata["intrinsics"]) == result.intrinsics
    count = tr2m_cli.save_ply(tmp_path / "a.ply", result)
    points, colours = make_point_cloud(result.depth, result.image, result.intrinsics, PointCloudOptions())
    cloud = open3d.io.read_point_cloud(str(tmp_path / "a.ply"))
    assert count == len(points) == len(cloud.points) and np.allclose(np.asarray(cloud.points), points, atol=1e-6)
    assert not cloud.has_normals()
    mesh = tr2m_cli.save_mesh(tmp_path / "a.mesh.ply", result)
    expected = make_mesh(result.depth, result.image, result.intrinsics, PointCloudOptions())
    assert len(mesh.faces) == len(expected.faces) and (mesh.colors == expected.colors).all()


def test_normals_outliers_and_simplification_follow_the_options(tmp_path, result, open3d):
    tr2m_cli.save_ply(tmp_path / "n.ply", result, options=PointCloudOptions(normals=True, remove_outliers=True))
    cloud = open3d.io.read_point_cloud(str(tmp_path / "n.ply"))
    normals, points = np.asarray(cloud.normals), np.asarray(cloud.points)
    assert cloud.has_normals() and (np.einsum("ij,ij->i", normals, points) < 0).all()
    simple = tr2m_cli.save_mesh(tmp_path / "s.glb", result, target_triangles=200)
    assert 0.9 * 200 <= len(simple.faces) <= 1.05 * 200


def test_arrays_work_without_a_prediction_and_photos_at_any_grid(tmp_path, result):
    # A depth array alone: the default camera, grey points.
    count = tr2m_cli.save_ply(tmp_path / "grey.ply", result.depth)
    assert count > 0
    # The photo at full size is box-averaged to the grid of a stride-2 cloud.
    mesh = tr2m_cli.save_mesh(tmp_path / "half.obj", result.depth, intrinsics=result.intrinsics, image=result.image, options=PointCloudOptions(stride=2))
    assert len(mesh.vertices) == 20 * 30
    with pytest.raises(ValueError, match="intrinsics for 60×40 but depth of 30×20"):
        tr2m_cli.save_ply(tmp_path / "x.ply", result.depth[::2, ::2], intrinsics=result.intrinsics)
    picture = tr2m_cli.save_render(tmp_path / "a.render.png", result)
    assert picture.shape == (40, 60, 3) and (tmp_path / "a.render.png").is_file()


def test_exr_equals_the_tiff(tmp_path, result):
    pytest.importorskip("OpenEXR", reason="OpenEXR is not installed (pip install '.[exr]')")
    from tr2m_cli.io.exr import read_depth_exr

    tr2m_cli.save_exr(tmp_path / "a.exr", result)
    tr2m_cli.save_depth_tiff(tmp_path / "a.tiff", result)
    exr, metadata = read_depth_exr(tmp_path / "a.exr")
    assert np.array_equal(exr, read_depth_tiff(tmp_path / "a.tiff")[0])
    assert metadata["intrinsics"]["fx"] == 70.0


def test_points_are_what_save_ply_writes(tmp_path, result):
    from tr2m_cli.io.save import points

    xyz, rgb = points(result, colors=True)
    expected, expected_rgb = make_point_cloud(result.depth, result.image, result.intrinsics, PointCloudOptions())
    assert np.array_equal(xyz, expected) and np.array_equal(rgb, expected_rgb)
    assert points(result, options=PointCloudOptions(stride=2)).shape == (20 * 30 - 2 * 20, 3)  # less the edge pairs
