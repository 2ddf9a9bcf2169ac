"""`tr2m view`: what it loads, from where it looks, and one line where there is no display."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tr2m_cli.cli import cli
from tr2m_cli.io.depth_files import write_depth_tiff
from tr2m_cli.io.intrinsics import CameraOptions, resolve_intrinsics
from tr2m_cli.io.mesh import make_mesh, write_mesh
from tr2m_cli.io.pointcloud import PointCloudOptions, make_point_cloud
from tr2m_cli.view import depth_cloud, has_display, load_scene, photo_from_manifest


@pytest.fixture
def run_output(tmp_path):
    """A photo, and the depth TIFF and manifest a conversion of it leaves."""
    photo = tmp_path / "photos" / "a.png"
    photo.parent.mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photo)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    depth = np.full((30, 40), 2.0, dtype=np.float32)
    intrinsics = resolve_intrinsics(30, 40, CameraOptions(fx=50.0))
    write_depth_tiff(out / "sub" / "a.depth.tiff", depth, {"intrinsics": intrinsics.to_json()})
    record = {"input": "a.png", "path": str(photo), "status": "ok", "outputs": {"tiff": "sub/a.depth.tiff"}}
    (out / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    return out / "sub" / "a.depth.tiff", photo, rgb, depth, intrinsics


def test_a_depth_tiff_is_coloured_by_the_photo_its_manifest_names(run_output):
    tiff, photo, rgb, depth, intrinsics = run_output
    assert photo_from_manifest(tiff) == photo
    points, colours, coloured_by = depth_cloud(tiff)
    expected_points, expected_colours = make_point_cloud(depth, rgb, intrinsics, PointCloudOptions())
    assert coloured_by == str(photo)
    assert np.allclose(points, expected_points) and (colours == expected_colours).all()  # metres, the photo's camera
    photo.unlink()  # moved away: coloured by depth instead, still in metres
    points, colours, coloured_by = depth_cloud(tiff)
    assert coloured_by.startswith("depth") and np.allclose(points, expected_points)


def test_scenes_start_in_the_frame_of_their_file(run_output, tmp_path, open3d):
    tiff, *_ = run_output
    scene = load_scene(tiff)
    assert scene.frame == "camera" and len(scene.geometry.points) == 30 * 40 and scene.geometry.has_colors()
    mesh = make_mesh(np.full((10, 10), 3.0, np.float32), np.zeros((10, 10, 3), np.uint8), resolve_intrinsics(10, 10))
    write_mesh(tmp_path / "m.glb", mesh)
    scene = load_scene(tmp_path / "m.glb")
    assert scene.frame == "gltf" and len(scene.geometry.triangles) == 2 * 9 * 9
    assert np.allclose(np.asarray(scene.geometry.vertices)[:, 2], -3.0)  # in front of the viewer: −z


def test_view_without_a_display_fails_in_one_line(run_output, monkeypatch):
    tiff, *_ = run_output
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert not has_display()
    result = CliRunner().invoke(cli, ["view", str(tiff)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "tr2m view needs a display" in lines[0] and "--outputs render" in lines[0]
    result = CliRunner().invoke(cli, ["view", str(tiff.with_name("missing.depth.tiff"))])
    assert result.exit_code == 2 and "missing.depth.tiff: no such file" in result.output
