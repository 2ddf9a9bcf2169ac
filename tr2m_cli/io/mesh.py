"""Triangle meshes of a depth map: the pixel grid in metres, coloured, torn at depth edges.

Every valid pixel of the sampling grid (the same grid, stride and `max_depth` as the point cloud,
`pointcloud.sample_depth`) becomes a vertex at its back-projected position; each square of four
neighbouring pixels becomes two triangles, (i, j)–(i+1, j)–(i+1, j+1) and
(i, j)–(i+1, j+1)–(i, j+1), wound counter-clockwise as seen from the camera so that their front
faces it. A triangle is dropped when a corner has no depth or when any of its three edges is steep
by the point-cloud filter's rule (`pointcloud.steep_edges`): a foreground object is then its own
piece instead of being joined to the wall behind it by a curtain of stretched triangles.
`simplify_mesh` reduces a mesh to a target triangle count (quadric edge collapse by
fast-simplification, `3d` extra).

Files, each written atomically, all in metres with per-vertex colours and normals:

| format | frame | notes |
|---|---|---|
| `.glb` | glTF's: x right, y up, z towards the viewer (the camera frame with y and z negated) | binary glTF 2.0; opens in Blender, browsers (three.js, model-viewer) and most viewers; colours in linear RGB as glTF requires, unlit material (the photo's lighting is in its colours) |
| `.ply` | the camera frame: x right, y down, z forward | binary; as the point clouds |
| `.obj` | the camera frame | text; colours as `v x y z r g b` (MeshLab, Blender, Open3D read them) |

numpy writes all three: no Open3D import per photo, and the base install can write meshes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from ..errors import InputError
from .atomic import atomic_file, write_bytes
from .intrinsics import Intrinsics
from .pointcloud import PointCloudOptions, backproject, ply_header, ply_vertices, sample_depth, steep_edges

MESH_FORMATS = ("glb", "ply", "obj")
DEFAULT_MESH_FORMAT = "glb"
# The camera frame (x right, y down, z forward) → glTF's (y up, the scene in front along −z).
GLTF_FROM_CAMERA = np.array([1.0, -1.0, -1.0], dtype=np.float32)


@dataclass(frozen=True)
class MeshOptions:
    """How meshes are written. The grid they are built on (stride, max points, max depth, edge
    angle) is the point cloud's, `PointCloudOptions`."""

    format: str = DEFAULT_MESH_FORMAT
    target_triangles: int | None = None  # None: keep every triangle of the grid

    def __post_init__(self) -> None:
        if self.format not in MESH_FORMATS:
            raise InputError(f"--mesh-format {self.format!r}: choose from {', '.join(MESH_FORMATS)}")
        if self.target_triangles is not None and self.target_triangles < 1:
            raise InputError(f"--mesh-triangles {self.target_triangles}: must be at least 1")


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in the camera frame (metres): vertices [N, 3] float32, colours [N, 3]
    uint8 (sRGB, as the photo), faces [M, 3] int64 vertex indices, normals [N, 3] float32."""

    vertices: np.ndarray
    colors: np.ndarray
    faces: np.ndarray
    normals: np.ndarray


def grid_faces(valid: np.ndarray, edges: dict[str, np.ndarray]) -> np.ndarray:
    """Triangles of an [h, w] pixel grid as flat pixel indices [M, 3]: both triangles of each
    square, less those with a corner not `valid` or an edge in `edges` (`steep_edges`' keys)."""
    height, width = valid.shape
    index = np.arange(height * width, dtype=np.int64).reshape(height, width)
    top_left, top_right = index[:-1, :-1], index[:-1, 1:]
    bottom_left, bottom_right = index[1:, :-1], index[1:, 1:]
    diagonal = edges["diagonal"]
    # Lower-left triangle: left edge (down, column j), bottom edge (right, row i+1), diagonal.
    lower = valid[:-1, :-1] & valid[1:, :-1] & valid[1:, 1:]
    lower &= ~edges["down"][:, :-1] & ~edges["right"][1:, :] & ~diagonal
    # Upper-right triangle: diagonal, right edge (down, column j+1), top edge (right, row i).
    upper = valid[:-1, :-1] & valid[1:, 1:] & valid[:-1, 1:]
    upper &= ~edges["down"][:, 1:] & ~edges["right"][:-1, :] & ~diagonal
    faces = [
        np.stack([top_left[lower], bottom_left[lower], bottom_right[lower]], axis=1),
        np.stack([top_left[upper], bottom_right[upper], top_right[upper]], axis=1),
    ]
    return np.concatenate(faces, axis=0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted mean of the adjacent faces' normals, unit length; vertices in no face get
    the direction back to the camera (−p/|p|), so they still face it."""
    vertices = vertices.astype(np.float64, copy=False)
    normals = np.zeros_like(vertices)
    if len(faces):
        a, b, c = (vertices[faces[:, k]] for k in range(3))
        face_normals = np.cross(b - a, c - a)  # length: twice the area
        for axis in range(3):  # bincount sums per vertex far faster than np.add.at
            normals[:, axis] = sum(
                np.bincount(faces[:, k], weights=face_normals[:, axis], minlength=len(vertices)) for k in range(3)
            )
    length = np.linalg.norm(normals, axis=1)
    lonely = length == 0
    normals[lonely] = -vertices[lonely]
    length = np.linalg.norm(normals, axis=1)
    length[length == 0] = 1.0
    return (normals / length[:, None]).astype(np.float32)


def make_mesh(
    depth: np.ndarray, colors: np.ndarray, intrinsics: Intrinsics, options: PointCloudOptions = PointCloudOptions()
) -> Mesh:
    """Full-size depth [H, W] (metres), colours at the sampling grid [h, w, 3] uint8 and the
    full-size intrinsics → the grid mesh (one vertex per valid grid pixel)."""
    sampled, grid, valid = sample_depth(depth, intrinsics, options)
    if colors.shape[:2] != sampled.shape:
        raise ValueError(f"colours of shape {colors.shape[:2]} for a sampled depth of {sampled.shape}")
    faces = grid_faces(valid, steep_edges(sampled, grid, options.edge_angle_deg))
    # Number the valid pixels 0..N−1 and renumber the faces' corners from pixels to vertices.
    vertex_of_pixel = np.full(valid.size, -1, dtype=np.int64)
    vertex_of_pixel[valid.ravel()] = np.arange(int(valid.sum()))
    faces = vertex_of_pixel[faces]
    vertices = backproject(sampled, grid)[valid]
    return Mesh(vertices, colors[valid], faces, vertex_normals(vertices, faces))


def simplify_mesh(mesh: Mesh, target_triangles: int) -> Mesh:
    """At most about `target_triangles` triangles by quadric edge collapse, which keeps flat
    regions coarse and edges sharp. Each remaining vertex takes the mean colour of the vertices
    collapsed into it. fast-simplification (the `3d` extra) does the collapsing: on a 12 MP
    photo's 1.5 M-triangle grid it takes seconds where Open3D's quadric decimation takes minutes
    (benchmarks/outputs_3d.py)."""
    if len(mesh.faces) <= target_triangles:
        return mesh
    from ..extras import require

    simplifier = require("fast_simplification", "3d", "mesh simplification (--mesh-triangles)")
    vertices, faces, collapses = simplifier.simplify(
        mesh.vertices.astype(np.float64), mesh.faces.astype(np.int32), target_count=int(target_triangles), return_collapses=True
    )
    faces = np.asarray(faces, dtype=np.int64)
    mapping = _collapse_mapping(len(mesh.vertices), mesh.faces, collapses, faces)
    if mapping is None:  # our bookkeeping disagrees with the library's: ask it to replay
        _, _, mapping = simplifier.replay_simplification(
            mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), collapses
        )
    kept = mapping >= 0
    counts = np.bincount(mapping[kept], minlength=len(vertices))
    colours = np.stack([np.bincount(mapping[kept], weights=mesh.colors[kept, c], minlength=len(vertices)) for c in range(3)], axis=1)
    colours = np.clip(np.round(colours / np.maximum(counts, 1)[:, None]), 0, 255).astype(np.uint8)
    vertices = np.asarray(vertices, dtype=np.float32)
    return Mesh(vertices, colours, faces, vertex_normals(vertices, faces))


def _collapse_mapping(count: int, faces: np.ndarray, collapses: np.ndarray, result_faces: np.ndarray) -> np.ndarray | None:
    """Original vertex → vertex of the simplified mesh (−1: gone), from the collapse history
    (`[i0, i1]`: i1 merged into i0): follow each vertex to the one it ended in, number those that
    a remaining triangle uses in their original order. None unless that reproduces the library's
    triangles exactly."""
    group = np.arange(count)
    if len(collapses):
        group[collapses[:, 1]] = collapses[:, 0]
    while not np.array_equal(group[group], group):  # pointer jumping: log(chain length) rounds
        group = group[group]
    corners = group[faces]
    alive = (corners[:, 0] != corners[:, 1]) & (corners[:, 1] != corners[:, 2]) & (corners[:, 0] != corners[:, 2])
    used = np.unique(corners[alive])
    number = np.full(count, -1, dtype=np.int64)
    number[used] = np.arange(len(used))
    if not np.array_equal(number[corners[alive]], result_faces):
        return None
    return number[group]


# -- files ---------------------------------------------------------------------------------------


def mesh_format(path: str | Path) -> str:
    suffix = PurePosixPath(str(path)).suffix.lower().lstrip(".")  # a local path or a storage URL
    if suffix not in MESH_FORMATS:
        raise InputError(f"{path}: a mesh is written as {', '.join('.' + f for f in MESH_FORMATS)}")
    return suffix


def write_mesh(path: str | Path, mesh: Mesh, comments: tuple[str, ...] = ()) -> None:
    """Write `mesh` in the format its suffix names (.glb, .ply or .obj), atomically (to a local
    path, or in one upload to a storage URL: io.atomic)."""
    writer = {"glb": _write_glb, "ply": _write_ply_mesh, "obj": _write_obj}[mesh_format(path)]
    writer(path, mesh, comments)


def _write_ply_mesh(path: Path, mesh: Mesh, comments: tuple[str, ...]) -> None:
    vertices = ply_vertices(mesh.vertices, mesh.colors, mesh.normals)
    faces = np.empty(len(mesh.faces), dtype=np.dtype([("count", "u1"), ("corners", "<i4", (3,))]))
    faces["count"] = 3
    faces["corners"] = mesh.faces
    with atomic_file(path) as handle:
        handle.write(ply_header(vertices, comments, faces=len(faces)))
        handle.write(vertices.tobytes())
        handle.write(faces.tobytes())


OBJ_CHUNK = 65536  # rows formatted at a time: text for a million vertices is built in pieces


def _obj_lines(template: str, rows: np.ndarray) -> Iterator[bytes]:
    """`template` (one row's line) filled with each row of `rows`, a chunk at a time (one
    %-format over a chunk is ~10× faster than np.savetxt's row-by-row loop)."""
    for start in range(0, len(rows), OBJ_CHUNK):
        chunk = rows[start : start + OBJ_CHUNK]
        yield ((template * len(chunk)) % tuple(chunk.ravel().tolist())).encode("ascii")


def _write_obj(path: Path, mesh: Mesh, comments: tuple[str, ...]) -> None:
    lines = [f"# {' '.join(c.split())}" for c in comments]
    header = ("\n".join(lines) + "\n" if lines else "").encode("utf-8", "replace")
    vertex_rows = np.concatenate([mesh.vertices, mesh.colors.astype(np.float32) / 255.0], axis=1)
    corners = np.repeat(mesh.faces + 1, 2, axis=1)  # OBJ counts from 1; v//vn pairs
    with atomic_file(path) as handle:
        handle.write(header)
        for part in _obj_lines("v %.6g %.6g %.6g %.4g %.4g %.4g\n", vertex_rows):
            handle.write(part)
        for part in _obj_lines("vn %.4f %.4f %.4f\n", mesh.normals):
            handle.write(part)
        for part in _obj_lines("f %d//%d %d//%d %d//%d\n", corners):
            handle.write(part)


_SRGB = np.arange(256, dtype=np.float64) / 255.0
SRGB_TO_LINEAR = np.where(_SRGB <= 0.04045, _SRGB / 12.92, ((_SRGB + 0.055) / 1.055) ** 2.4).astype(np.float32)


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """uint8 sRGB → float32 linear RGB in [0, 1] (glTF's vertex colours are linear)."""
    return SRGB_TO_LINEAR[colors]


# glTF constants
_FLOAT, _UNSIGNED_INT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES, _POINTS = 4, 0


def glb_bytes(mesh: Mesh, comments: tuple[str, ...] = ()) -> bytes:
    """A binary glTF 2.0 file holding `mesh` in glTF's frame (see the module docstring)."""
    from .. import __version__

    gltf: dict = {
        "asset": {
            "version": "2.0",
            "generator": f"tr2m {__version__}",
            "extras": {
                "unit": "metres",
                "frame": "glTF: x right, y up, z towards the viewer (camera frame with y and z negated)",
                "comments": list(comments),
            },
        },
        "scene": 0,
        "scenes": [{}],  # nothing to draw (glTF allows no empty list of nodes)
    }
    if len(mesh.vertices) == 0:
        return _glb_container(gltf, b"")
    positions = np.ascontiguousarray(mesh.vertices * GLTF_FROM_CAMERA, dtype=np.float32)
    normals = np.ascontiguousarray(mesh.normals * GLTF_FROM_CAMERA, dtype=np.float32)
    colors = np.ascontiguousarray(srgb_to_linear(mesh.colors))
    blobs = [positions.tobytes(), normals.tobytes(), colors.tobytes()]
    if len(mesh.faces):
        blobs.append(np.ascontiguousarray(mesh.faces, dtype=np.uint32).tobytes())
    views, offset = [], 0
    for number, blob in enumerate(blobs):  # every blob is a multiple of 4 bytes long
        target = _ELEMENT_ARRAY_BUFFER if number == 3 else _ARRAY_BUFFER
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob), "target": target})
        offset += len(blob)
    count = len(positions)
    accessors = [
        {
            "bufferView": 0,
            "componentType": _FLOAT,
            "count": count,
            "type": "VEC3",
            "min": positions.min(axis=0).tolist(),
            "max": positions.max(axis=0).tolist(),
        },
        {"bufferView": 1, "componentType": _FLOAT, "count": count, "type": "VEC3"},
        {"bufferView": 2, "componentType": _FLOAT, "count": count, "type": "VEC3"},
    ]
    primitive: dict = {"attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2}, "material": 0}
    if len(mesh.faces):
        accessors.append({"bufferView": 3, "componentType": _UNSIGNED_INT, "count": int(mesh.faces.size), "type": "SCALAR"})
        primitive.update(indices=3, mode=_TRIANGLES)
    else:
        primitive["mode"] = _POINTS  # no triangle survived: the vertices still show as points
    gltf.update(
        scenes=[{"nodes": [0]}],
        nodes=[{"mesh": 0, "name": "depth"}],
        meshes=[{"primitives": [primitive], "name": "depth"}],
        # Unlit where the viewer knows the extension (the photo already holds its lighting); a
        # rough dielectric elsewhere. Double-sided: the torn edges are seen from behind.
        materials=[
            {
                "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0, "roughnessFactor": 1.0},
                "doubleSided": True,
                "extensions": {"KHR_materials_unlit": {}},
            }
        ],
        extensionsUsed=["KHR_materials_unlit"],
        accessors=accessors,
        bufferViews=views,
        buffers=[{"byteLength": offset}],
    )
    return _glb_container(gltf, b"".join(blobs))


def _glb_container(gltf: dict, binary: bytes) -> bytes:
    """The GLB framing: a 12-byte header, a JSON chunk padded with spaces and a BIN chunk padded
    with zeros, both to 4 bytes."""
    text = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        chunks += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def _write_glb(path: Path, mesh: Mesh, comments: tuple[str, ...]) -> None:
    write_bytes(path, glb_bytes(mesh, comments))
