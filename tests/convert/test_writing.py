"""What convert writes per photo beyond depth: meshes, renders, EXR, normals, and each photo's
camera with where it came from (through `convert()` with the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.intrinsics import CameraOptions, Intrinsics
from tr2m_cli.io.manifest import read_manifest
from tr2m_cli.io.mesh import MeshOptions
from tr2m_cli.io.pointcloud import PointCloudOptions, backproject
from tr2m_cli.model.preprocess import SizePolicy

FAST = SizePolicy(token_budget=120)


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, decode_workers=2, size=FAST, captions=CaptionRules(caption="A room."))
    return ConvertOptions(**{**defaults, **kwargs})


def photos(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).resize((64, 48), Image.BILINEAR).save(path)
    return folder


def test_meshes_renders_exr_and_normals_are_the_depth_in_metres(tmp_path, tiny_model, open3d):
    pytest.importorskip("OpenEXR", reason="OpenEXR is not installed (pip install '.[exr]')")
    from tr2m_cli.io.exr import read_depth_exr

    folder = photos(tmp_path / "photos")
    (folder / "a.camera.json").write_text(json.dumps({"fx": 55.0, "fy": 56.0, "cx": 30.0, "cy": 20.0}))
    summary = convert(
        [folder],
        tmp_path / "out",
        options(outputs=("tiff", "ply", "mesh", "render", "exr"), cloud=PointCloudOptions(normals=True, edge_angle_deg=0)),
        model=tiny_model,
    )
    assert (summary.converted, summary.failed, summary.default_camera) == (2, 0, 1)
    assert "1 used the default field of view" in summary.line()
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert records["a.png"]["intrinsics"]["source"] == "sidecar" and records["b.png"]["intrinsics"]["source"] == "default"
    for key in ("a", "b"):
        out = tmp_path / "out" / key
        depth, metadata = read_depth_tiff(f"{out}.depth.tiff")
        camera = Intrinsics.from_json(json.loads(Path(f"{out}.intrinsics.json").read_text()))
        assert camera == Intrinsics.from_json(metadata["intrinsics"])
        exr, _ = read_depth_exr(f"{out}.depth.exr")
        assert np.array_equal(exr, depth)
        # Mesh: one vertex per pixel (edge filter off: every pixel valid), in metres, glTF frame.
        mesh = open3d.io.read_triangle_mesh(f"{out}.mesh.glb")
        expected = backproject(depth, camera).reshape(-1, 3) * [1, -1, -1]
        vertices = np.asarray(mesh.vertices)
        assert len(vertices) == 48 * 64 and len(mesh.triangles) == 2 * 47 * 63
        assert np.allclose(vertices[np.lexsort(vertices.T)], expected[np.lexsort(expected.T)], atol=1e-5)
        assert records[f"{key}.png"]["mesh"] == {"vertices": 48 * 64, "triangles": 2 * 47 * 63}
        cloud = open3d.io.read_point_cloud(f"{out}.points.ply")
        normals, points = np.asarray(cloud.normals), np.asarray(cloud.points)
        # Facing the camera: n · p ≤ 0 (a normal at right angles to its ray may round either way).
        assert cloud.has_normals() and (np.einsum("ij,ij->i", normals, points) <= 1e-6).all()
        with Image.open(f"{out}.render.png") as render:
            assert render.size == (64, 48)
    a = json.loads((tmp_path / "out" / "a.intrinsics.json").read_text())
    assert (a["fx"], a["fy"], a["cx"], a["cy"], a["source"]) == (55.0, 56.0, 30.0, 20.0, "sidecar")
    assert a["detail"].endswith("a.camera.json")


def test_an_intrinsics_file_rescales_and_a_bad_camera_fails_its_photo_alone(tmp_path, tiny_model):
    folder = photos(tmp_path / "photos")
    cameras = tmp_path / "cameras.csv"
    # a.png: calibrated at twice the size (rescaled); b.png: a principal point outside 64×48.
    cameras.write_text("image,fx,fy,cx,cy,width,height\na.png,100,100,63.5,47.5,128,96\nb.png,50,50,300,20,,\n")
    summary = convert([folder], tmp_path / "out", options(outputs=("tiff", "mesh"), camera=CameraOptions(intrinsics_file=cameras)), model=tiny_model)
    assert (summary.converted, summary.failed, summary.exit_code) == (1, 1, 1)
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    a = records["a.png"]["intrinsics"]
    assert (a["fx"], a["cx"], a["cy"], a["source"]) == (50.0, 31.5, 23.5, "intrinsics-file")
    assert "rescaled from 128×96" in a["detail"]
    assert "principal point (300, 20) lies outside the 64×48" in records["b.png"]["error"]
    assert not (tmp_path / "out" / "b.mesh.glb").exists()
    # A changed camera makes that photo's outputs stale on the next run; the others stay.
    cameras.write_text("image,fx,fy,cx,cy,width,height\na.png,120,120,63.5,47.5,128,96\nb.png,50,50,30,20,,\n")
    summary = convert([folder], tmp_path / "out", options(outputs=("tiff", "mesh"), camera=CameraOptions(intrinsics_file=cameras)), model=tiny_model)
    assert (summary.converted, summary.redone, summary.failed) == (2, 1, 0)
    assert read_manifest(tmp_path / "out" / "manifest.jsonl")["a.png"]["intrinsics"]["fx"] == 60.0


def test_obj_meshes_simplified_to_a_target(tmp_path, tiny_model):
    pytest.importorskip("fast_simplification", reason="fast-simplification is not installed (pip install '.[3d]')")
    folder = photos(tmp_path / "photos")
    summary = convert(
        [folder / "a.png"], tmp_path / "out", options(outputs=("mesh",), mesh=MeshOptions(format="obj", target_triangles=300)), model=tiny_model
    )
    assert summary.converted == 1
    text = (tmp_path / "out" / "a.mesh.obj").read_text()
    faces = [line for line in text.splitlines() if line.startswith("f ")]
    assert 0.9 * 300 <= len(faces) <= 1.05 * 300  # "about N": the collapses remove two at a time
    assert text.count("\nv ") > 0 and text.count("\nvn ") > 0
    assert read_manifest(tmp_path / "out" / "manifest.jsonl")["a.png"]["outputs"]["mesh"] == "a.mesh.obj"
