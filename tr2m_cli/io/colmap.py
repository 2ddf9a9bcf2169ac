"""Cameras of a COLMAP model: which camera each image was taken with.

A COLMAP sparse model folder holds `cameras.txt` and `images.txt` (or their binary twins
`cameras.bin`, `images.bin`, which `colmap mapper` writes by default). `read_colmap_cameras(folder)`
returns {image NAME (its path under COLMAP's image folder): ColmapCamera}. Points are not read.

Facts of the format that matter here (COLMAP's documentation, "Output Format" and "Camera
Models"): parameters start with the focal length(s) and the principal point, in pixels of an image
of WIDTH × HEIGHT; COLMAP puts the centre of the top-left pixel at (0.5, 0.5), so its principal
point is 0.5 px right of and below ours (OpenCV's, pixel centres at integers); in images.txt every
image takes two lines, the second (its 2-D points) possibly empty.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

# model id → (name, number of parameters, whether it is a perspective camera)
COLMAP_MODELS: dict[int, tuple[str, int, bool]] = {
    0: ("SIMPLE_PINHOLE", 3, True),  # f, cx, cy
    1: ("PINHOLE", 4, True),  # fx, fy, cx, cy
    2: ("SIMPLE_RADIAL", 4, True),  # f, cx, cy, k
    3: ("RADIAL", 5, True),  # f, cx, cy, k1, k2
    4: ("OPENCV", 8, True),  # fx, fy, cx, cy, k1, k2, p1, p2
    5: ("OPENCV_FISHEYE", 8, False),
    6: ("FULL_OPENCV", 12, True),  # fx, fy, cx, cy, k1, k2, p1, p2, k3..k6
    7: ("FOV", 5, False),
    8: ("SIMPLE_RADIAL_FISHEYE", 4, False),
    9: ("RADIAL_FISHEYE", 5, False),
    10: ("THIN_PRISM_FISHEYE", 12, False),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16, False),
}
MODEL_BY_NAME = {name: (model_id, count, perspective) for model_id, (name, count, perspective) in COLMAP_MODELS.items()}
SINGLE_FOCAL = {"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"}
UNDISTORTED = {"SIMPLE_PINHOLE", "PINHOLE"}
COLMAP_PIXEL_CENTRE = 0.5  # COLMAP's coordinate of the top-left pixel's centre


@dataclass(frozen=True)
class ColmapCamera:
    camera_id: int
    model: str
    width: int
    height: int
    params: tuple[float, ...]

    @property
    def is_perspective(self) -> bool:
        return MODEL_BY_NAME[self.model][2]

    def pinhole(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in our convention (pixel centres at integers)."""
        p = self.params
        fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if self.model in SINGLE_FOCAL else p[:4]
        return fx, fy, cx - COLMAP_PIXEL_CENTRE, cy - COLMAP_PIXEL_CENTRE


def _model_file(folder: Path, stem: str) -> Path:
    for suffix in (".txt", ".bin"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    hint = ""
    if (folder / "sparse").is_dir():
        hint = f" (a model folder is usually {folder / 'sparse' / '0'})"
    raise InputError(f"{folder}: no {stem}.txt or {stem}.bin, so not a COLMAP model folder (--colmap){hint}")


def _camera(camera_id: int, model: str, width: int, height: int, params: list[float], where: str) -> ColmapCamera:
    if model not in MODEL_BY_NAME:
        raise InputError(f"{where}: unknown COLMAP camera model {model!r}")
    expected = MODEL_BY_NAME[model][1]
    if len(params) != expected:
        raise InputError(f"{where}: camera model {model} takes {expected} parameters, found {len(params)}")
    if width < 1 or height < 1:
        raise InputError(f"{where}: image size {width}×{height}")
    return ColmapCamera(camera_id, model, width, height, tuple(params))


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for number, line in enumerate(_text_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path} line {number}"
        parts = line.split()
        try:
            camera_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
            params = [float(p) for p in parts[4:]]
        except (IndexError, ValueError):
            raise InputError(f"{where}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS…") from None
        cameras[camera_id] = _camera(camera_id, model, width, height, params, where)
    return cameras


def _read_images_txt(path: Path) -> dict[str, int]:
    """{NAME: CAMERA_ID}. Each image is a line `IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`
    followed by one line of 2-D points, which may be empty: after a header line the next line is
    skipped whatever it holds; blank lines are skipped only where a header is expected."""
    names: dict[str, int] = {}
    lines = [(n, line) for n, line in enumerate(_text_lines(path), start=1) if not line.lstrip().startswith("#")]
    index = 0
    while index < len(lines):
        number, line = lines[index]
        index += 1
        if not line.strip():
            continue
        parts = line.split(maxsplit=9)
        try:
            camera_id, name = int(parts[8]), parts[9].strip()
            int(parts[0])
        except (IndexError, ValueError):
            raise InputError(f"{path} line {number}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME") from None
        names[name] = camera_id
        index += 1  # its 2-D points
    return names


COLMAP_TEXT_LIMIT = 1 << 30  # images.txt with every 2-D point of a large model


def _text_lines(path: Path) -> list[str]:
    from .files import read_capped

    try:
        return read_capped(path, COLMAP_TEXT_LIMIT, "the COLMAP file").decode("utf-8", "replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _unpack(handle: BinaryIO, fmt: str, path: Path) -> tuple:
    size = struct.calcsize(fmt)
    data = handle.read(size)  # a truncated file fails here, not with a struct error
    if len(data) != size:
        raise InputError(f"{path}: ends early, not a complete COLMAP binary file")
    return struct.unpack(fmt, data)


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    from .files import open_regular

    with open_regular(path) as handle:
        (count,) = _unpack(handle, "<Q", path)
        for _ in range(count):
            camera_id, model_id, width, height = _unpack(handle, "<iiQQ", path)
            if model_id not in COLMAP_MODELS:
                raise InputError(f"{path}: unknown COLMAP camera model id {model_id}")
            name, params, _ = COLMAP_MODELS[model_id]
            values = list(_unpack(handle, f"<{params}d", path))
            cameras[camera_id] = _camera(camera_id, name, width, height, values, f"{path} camera {camera_id}")
    return cameras


def _read_images_bin(path: Path) -> dict[str, int]:
    from .files import open_regular

    names = {}
    with open_regular(path) as handle:
        (count,) = _unpack(handle, "<Q", path)
        for _ in range(count):
            _unpack(handle, "<I7d", path)  # image id, rotation quaternion, translation
            (camera_id,) = _unpack(handle, "<I", path)
            name = bytearray()
            while (char := handle.read(1)) not in (b"\0", b""):
                name += char
            (points,) = _unpack(handle, "<Q", path)
            _unpack(handle, f"<{24 * points}x", path)  # x, y (doubles) and a 3-D point id (int64) each
            names[name.decode("utf-8", "replace")] = camera_id
    return names


def read_colmap_cameras(folder: str | Path) -> dict[str, ColmapCamera]:
    """{image NAME: its camera} from a COLMAP model folder (text or binary)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such COLMAP model folder (--colmap)")
    cameras_file, images_file = _model_file(folder, "cameras"), _model_file(folder, "images")
    try:
        cameras = _read_cameras_txt(cameras_file) if cameras_file.suffix == ".txt" else _read_cameras_bin(cameras_file)
        images = _read_images_txt(images_file) if images_file.suffix == ".txt" else _read_images_bin(images_file)
    except OSError as exc:
        raise InputError(f"{exc.filename or folder}: cannot read ({exc.strerror or exc})") from None
    result = {}
    for name, camera_id in images.items():
        if camera_id not in cameras:
            raise InputError(f"{images_file}: image {name!r} uses camera {camera_id}, which {cameras_file.name} lacks")
        result[name] = cameras[camera_id]
    if not result:
        raise InputError(f"{images_file}: lists no images")
    return result
