"""Grid meshes: one vertex per valid pixel, torn at depth edges by the point-cloud rule, and
GLB / PLY / OBJ files that Open3D and trimesh open in metres."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.intrinsics import CameraOptions, resolve_intrinsics
from tr2m_cli.io.mesh import MeshOptions, glb_bytes, make_mesh, simplify_mesh, srgb_to_linear, write_mesh
from tr2m_cli.io.pointcloud import PointCloudOptions, steep_edges


def camera(h=60, w=80, f=100.0):
    return resolve_intrinsics(h, w, CameraOptions(fx=f))


def photo_colours(h=60, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def step_with_ramp():
    """A box at 1 m before a wall at 3 m, joined by a 3-pixel ramp (columns 38–40)."""
    depth = np.full((60, 80), 3.0, dtype=np.float32)
    depth[:, :38] = 1.0
    depth[:, 38:41] = [1.5, 2.0, 2.5]
    return depth


def step():
    """A box at 1 m before a wall at 3 m: torn between columns 37 and 38, every vertex in use
    (readers such as Open3D's glTF reader drop vertices no triangle uses)."""
    depth = np.full((60, 80), 3.0, dtype=np.float32)
    depth[:, :38] = 1.0
    return depth


def test_a_flat_wall_is_the_full_grid_of_triangles_facing_the_camera():
    depth = np.full((60, 80), 2.0, dtype=np.float32)
    mesh = make_mesh(depth, photo_colours(), camera(), PointCloudOptions())
    assert len(mesh.vertices) == 60 * 80 and len(mesh.faces) == 2 * 59 * 79
    assert np.allclose(mesh.vertices[0], [-39.5 * 2 / 100, -29.5 * 2 / 100, 2.0])  # metres
    assert (mesh.colors == photo_colours().reshape(-1, 3)).all()
    # Every face's geometric normal points back at the camera (towards −z), as do vertex normals.
    a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
    assert (np.cross(b - a, c - a)[:, 2] < 0).all()
    assert np.allclose(mesh.normals, [0, 0, -1], atol=1e-6)


def test_no_triangle_spans_an_edge_the_point_filter_drops():
    depth = step_with_ramp()
    intrinsics = camera()
    mesh = make_mesh(depth, photo_colours(), intrinsics, PointCloudOptions())
    assert len(mesh.vertices) == 60 * 80  # every valid pixel is a vertex, flying ones included
    # The four column pairs 37|38 … 40|41 are steep, so their squares go: 59 rows × 75 pairs × 2.
    assert len(mesh.faces) == 59 * 75 * 2
    # Independently: map vertices back to pixels and check each triangle edge against the rule.
    rows, cols = np.divmod(np.arange(60 * 80), 80)
    edges = steep_edges(depth, intrinsics, 5.0)
    for first, second in ((0, 1), (1, 2), (0, 2)):
        p, q = mesh.faces[:, first], mesh.faces[:, second]
        top, left = np.minimum(rows[p], rows[q]), np.minimum(cols[p], cols[q])
        horizontal = rows[p] == rows[q]
        vertical = cols[p] == cols[q]
        diagonal = ~horizontal & ~vertical
        assert not edges["right"][top[horizontal], left[horizontal]].any()
        assert not edges["down"][top[vertical], left[vertical]].any()
        assert not edges["diagonal"][top[diagonal], left[diagonal]].any()
    z = mesh.vertices[mesh.faces][..., 2]
    assert (z.max(axis=1) - z.min(axis=1)).max() == 0  # only the flat box and the flat wall are left
    # Edge angle 0 keeps every triangle (the filter then keeps every point too).
    assert len(make_mesh(depth, photo_colours(), intrinsics, PointCloudOptions(edge_angle_deg=0)).faces) == 2 * 59 * 79


def test_a_slanted_floor_is_kept_and_missing_or_far_depth_has_no_vertex():
    rows = np.arange(60, dtype=np.float64)[:, None]
    floor = np.repeat(2.0 * (1 + 1 / np.tan(np.radians(20)) / 100.0) ** rows, 80, axis=1).astype(np.float32)
    assert len(make_mesh(floor, photo_colours(), camera(), PointCloudOptions()).faces) == 2 * 59 * 79
    depth = np.full((60, 80), 2.0, dtype=np.float32)
    depth[0, :10] = np.nan
    depth[1, :10] = 0.0
    depth[50:, :] = 9.0
    mesh = make_mesh(depth, photo_colours(), camera(), PointCloudOptions(max_depth=5.0))
    assert len(mesh.vertices) == 60 * 80 - 20 - 10 * 80
    assert np.isfinite(mesh.vertices).all() and mesh.faces.max() < len(mesh.vertices)


def test_the_mesh_uses_the_point_cloud_grid():
    depth = np.full((60, 80), 2.0, dtype=np.float32)
    mesh = make_mesh(depth, photo_colours(30, 40), camera(), PointCloudOptions(stride=2))
    assert len(mesh.vertices) == 30 * 40 and len(mesh.faces) == 2 * 29 * 39
    assert np.allclose(mesh.vertices[1] - mesh.vertices[0], [2 * 2.0 / 100, 0, 0])
    with pytest.raises(ValueError, match="colours of shape"):
        make_mesh(depth, photo_colours(), camera(), PointCloudOptions(stride=2))


def test_mesh_options_are_checked():
    with pytest.raises(InputError, match="--mesh-format 'stl'"):
        MeshOptions(format="stl")
    with pytest.raises(InputError, match="--mesh-triangles 0"):
        MeshOptions(target_triangles=0)
    with pytest.raises(InputError, match="a mesh is written as"):
        write_mesh("mesh.stl", make_mesh(np.ones((4, 4), np.float32), photo_colours(4, 4), camera(4, 4)))


def read_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON" and json_length % 4 == 0
    gltf = json.loads(data[20 : 20 + json_length])
    if len(data) == 20 + json_length:
        return gltf, b""  # no binary chunk: nothing to draw
    bin_length, bin_type = struct.unpack_from("<I4s", data, 20 + json_length)
    assert bin_type == b"BIN\0" and bin_length >= gltf["buffers"][0]["byteLength"]
    return gltf, data[28 + json_length : 28 + json_length + bin_length]


def test_glb_is_valid_gltf_with_the_scene_in_front_of_the_viewer():
    mesh = make_mesh(step_with_ramp(), photo_colours(), camera(), PointCloudOptions())
    gltf, binary = read_glb(glb_bytes(mesh))
    assert gltf["asset"]["version"] == "2.0" and gltf["asset"]["extras"]["unit"] == "metres"
    primitive = gltf["meshes"][0]["primitives"][0]
    position = gltf["accessors"][primitive["attributes"]["POSITION"]]
    view = gltf["bufferViews"][position["bufferView"]]
    positions = np.frombuffer(binary, np.float32, position["count"] * 3, view["byteOffset"]).reshape(-1, 3)
    assert np.allclose(positions, mesh.vertices * [1, -1, -1])  # y up, the scene along −z
    assert np.allclose(position["min"], positions.min(axis=0)) and np.allclose(position["max"], positions.max(axis=0))
    indices = gltf["accessors"][primitive["indices"]]
    assert indices["count"] == mesh.faces.size and all(v["byteOffset"] % 4 == 0 for v in gltf["bufferViews"])
    # An empty mesh is still a valid file (an empty scene).
    empty = make_mesh(np.full((4, 4), np.nan, np.float32), photo_colours(4, 4), camera(4, 4))
    gltf, binary = read_glb(glb_bytes(empty))
    assert gltf["scenes"] == [{}] and binary == b""


def test_glb_ply_and_obj_open_in_open3d_in_metres_with_their_colours(tmp_path, open3d):
    o3d = open3d
    mesh = make_mesh(step(), photo_colours(), camera(), PointCloudOptions())
    assert len(mesh.faces) == 59 * 78 * 2
    expected = {
        "glb": (mesh.vertices * [1, -1, -1], srgb_to_linear(mesh.colors)),
        "ply": (mesh.vertices, mesh.colors / 255.0),
        "obj": (mesh.vertices, mesh.colors / 255.0),
    }
    for suffix, (positions, colours) in expected.items():
        path = tmp_path / f"mesh.{suffix}"
        write_mesh(path, mesh, comments=("tr2m test mesh: metres",))
        loaded = o3d.io.read_triangle_mesh(str(path))
        vertices, faces = np.asarray(loaded.vertices), np.asarray(loaded.triangles)
        assert len(vertices) == len(mesh.vertices) and len(faces) == len(mesh.faces), suffix
        # glTF readers may reorder vertices: match them by position (all distinct here).
        order, loaded_order = np.lexsort(positions.T), np.lexsort(vertices.T)
        assert np.allclose(vertices[loaded_order], positions[order], atol=1e-5), suffix
        assert np.allclose(np.asarray(loaded.vertex_colors)[loaded_order], colours[order], atol=2e-3), suffix
        original_index = np.empty(len(vertices), dtype=np.int64)
        original_index[loaded_order] = order
        as_sets = lambda f: sorted(map(tuple, np.sort(f, axis=1)))  # noqa: E731
        assert as_sets(original_index[faces]) == as_sets(mesh.faces), suffix


def test_glb_and_ply_open_in_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh", reason="trimesh is not installed (pip install '.[dev]')")
    mesh = make_mesh(step(), photo_colours(), camera(), PointCloudOptions())
    write_mesh(tmp_path / "mesh.glb", mesh)
    write_mesh(tmp_path / "mesh.ply", mesh)
    (glb,) = trimesh.load(tmp_path / "mesh.glb", process=False).geometry.values()
    assert np.allclose(glb.vertices, mesh.vertices * [1, -1, -1], atol=1e-6) and (glb.faces == mesh.faces).all()
    # With a material, trimesh keeps glTF vertex colours as a vertex attribute (linear RGB).
    assert np.allclose(glb.visual.vertex_attributes["color"][:, :3], srgb_to_linear(mesh.colors), atol=1e-6)
    ply = trimesh.load(tmp_path / "mesh.ply", process=False)
    assert np.allclose(ply.vertices, mesh.vertices, atol=1e-6)
    assert (ply.visual.vertex_colors[:, :3] == mesh.colors).all()


def test_simplification_reaches_the_target_and_keeps_colours():
    pytest.importorskip("fast_simplification", reason="fast-simplification is not installed (pip install '.[3d]')")
    rows = np.arange(60, dtype=np.float32)[:, None]
    depth = np.repeat(2.0 + 0.01 * rows, 80, axis=1).astype(np.float32)
    colours = np.zeros((60, 80, 3), dtype=np.uint8)
    colours[:, :40] = (200, 30, 30)
    colours[:, 40:] = (30, 30, 200)
    mesh = make_mesh(depth, colours, camera(), PointCloudOptions())
    simple = simplify_mesh(mesh, 500)
    assert 0.9 * 500 <= len(simple.faces) <= 1.05 * 500 and simple.faces.max() < len(simple.vertices)
    assert len(simple.vertices) < len(mesh.vertices) and len(simple.normals) == len(simple.vertices)
    # Vertices keep the colour of their side of the photo, and the surface stays where it was.
    # (vertices merged across the colour border blend the two, so compare the sides' means)
    left = simple.colors[simple.vertices[:, 0] < -0.05].mean(axis=0)
    right = simple.colors[simple.vertices[:, 0] > 0.05].mean(axis=0)
    assert left[0] > 150 > 80 > left[2] and right[2] > 150 > 80 > right[0]
    assert simple.vertices[:, 2].min() >= 2.0 - 1e-3 and simple.vertices[:, 2].max() <= 2.59 + 1e-3
    assert simplify_mesh(mesh, 10**9) is mesh


def test_simplified_colours_agree_with_the_librarys_own_replay(monkeypatch):
    """Our collapse bookkeeping (fast) and the library's replay (slow, used if ours ever
    disagrees with its triangles) give the same mesh. Colours differ only where a vertex lost all
    its triangles without being collapsed: replay blends its colour into a neighbour, we drop it."""
    pytest.importorskip("fast_simplification", reason="fast-simplification is not installed (pip install '.[3d]')")
    import tr2m_cli.io.mesh as mesh_module

    depth = step()
    depth[::7, ::5] = np.nan  # holes
    mesh = make_mesh(depth, photo_colours(), camera(), PointCloudOptions())
    ours = simplify_mesh(mesh, 800)
    monkeypatch.setattr(mesh_module, "_collapse_mapping", lambda *args: None)
    replayed = simplify_mesh(mesh, 800)
    assert (ours.faces == replayed.faces).all() and np.allclose(ours.vertices, replayed.vertices)
    assert (ours.colors != replayed.colors).any(axis=1).mean() < 0.05
