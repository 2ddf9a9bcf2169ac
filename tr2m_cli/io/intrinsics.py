"""Camera intrinsics for turning a depth map into 3-D points.

TR2M predicts depth, not the camera, so each photo's camera comes from the first of:

1. an intrinsics file (`intrinsics_file`, `--intrinsics F`): JSON, JSON Lines or CSV keyed like
   caption files (`io/photo_keys.py`), each entry fx, fy, cx, cy or a 3×3 K, and optionally the
   width and height of the image they describe;
2. a COLMAP model (`colmap`, `--colmap DIR`: cameras/images .txt or .bin, `io/colmap.py`),
   matched by the image NAME; distortion parameters are ignored (undistort such photos first)
   and fisheye models refused;
3. a sidecar beside the photo, `<stem>.camera.json`, one entry as in the file;
4. the user's flags for every photo (`fx`, `fy`, `cx`, `cy` in pixels), else a field of view;
5. the photo's EXIF 35 mm-equivalent focal length;
6. a default horizontal field of view of 60° (between the Kinect-style cameras of NYUv2/TUM,
   about 62°, and a phone's main camera, 65–70°).

Intrinsics that say the image size they describe are rescaled to the photo when it differs (a
resized copy), and refused when its aspect ratio differs (a crop or a rotation). Intrinsics
without a size whose principal point lies outside the photo are refused: they belong to another
size, and guessing which would silently bend every point. `Intrinsics.source` records which rule
gave each camera and `detail` from where.

Convention (OpenCV's): pixel (u, v) has its centre at integer coordinates, u along the width;
a point at depth Z (metres, along the optical axis) is X = (u − cx)·Z/fx, Y = (v − cy)·Z/fy, with
x right, y down, z forward. The default principal point is the image centre ((W−1)/2, (H−1)/2).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import InputError
from .inputs import InputImage
from .photo_keys import IMAGE_FIELDS, find_key, match_keys, normalise_key

DEFAULT_HORIZONTAL_FOV_DEG = 60.0
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # the 35 mm-equivalent focal length refers to it
EXIF_IFD = 0x8769
EXIF_FOCAL_LENGTH_35MM = 0xA405


@dataclass(frozen=True)
class CameraOptions:
    """What the user says about the camera; anything left None is looked up or defaulted."""

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    fov_deg: float | None = None  # horizontal field of view
    use_exif: bool = True
    default_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG
    intrinsics_file: Path | None = None  # per-photo cameras: JSON, JSON Lines or CSV
    colmap: Path | None = None  # a COLMAP model folder
    sidecars: bool = True  # <stem>.camera.json beside a photo

    def __post_init__(self) -> None:
        if self.fy is not None and self.fx is None:
            raise InputError("--fy needs --fx")
        if (self.cx is None) != (self.cy is None):
            raise InputError("--cx and --cy go together")
        if self.fx is not None and self.fov_deg is not None:
            raise InputError("give either --fx/--fy or --fov, not both")
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"--{name} {value}: must be a positive number of pixels")
        for name in ("fov_deg", "default_fov_deg"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 180:
                raise InputError(f"field of view {value}°: must be between 0 and 180 degrees")


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of `width` × `height`, and where they came from
    (`source`: intrinsics-file, colmap, sidecar, options, fov, exif or default; `detail`: which
    file and entry, and any rescaling)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str
    detail: str = ""

    @property
    def horizontal_fov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width / (2 * self.fx)))

    def for_stride(self, stride: int) -> "Intrinsics":
        """The intrinsics of the image sampled at every `stride`-th pixel (pixel (i, j) of the
        sampled image is pixel (i·stride, j·stride) of this one)."""
        if stride == 1:
            return self
        return Intrinsics(
            fx=self.fx / stride,
            fy=self.fy / stride,
            cx=self.cx / stride,
            cy=self.cy / stride,
            width=-(-self.width // stride),
            height=-(-self.height // stride),
            source=self.source,
            detail=self.detail,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "intrinsics") -> "Intrinsics":
        """Back from `to_json` (an .intrinsics.json file, the TIFF's or EXR's metadata)."""
        try:
            return cls(
                *(float(data[k]) for k in ("fx", "fy", "cx", "cy")),
                int(data["width"]),
                int(data["height"]),
                str(data.get("source", "file")),
                str(data.get("detail", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: not tr2m intrinsics (needs fx, fy, cx, cy, width, height): {exc}") from None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["matrix"] = [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]
        data["horizontal_fov_deg"] = round(self.horizontal_fov_deg, 4)
        data["unit"] = "pixels"
        data["convention"] = "OpenCV pinhole: x right, y down, z forward; pixel centres at integer (u, v)"
        return data


def exif_focal_35mm(pil_image: "PIL.Image.Image") -> float | None:  # noqa: F821
    """The EXIF 35 mm-equivalent focal length in millimetres, or None when absent or zero."""
    try:
        value = pil_image.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_LENGTH_35MM)
        focal = float(value) if value is not None else None
    except (AttributeError, KeyError, TypeError, ValueError, OSError, SyntaxError):
        return None
    return focal if focal and focal > 0 else None


def focal_from_fov(width: int, fov_deg: float) -> float:
    return (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def resolve_intrinsics(
    height: int, width: int, options: CameraOptions = CameraOptions(), exif_focal_mm: float | None = None
) -> Intrinsics:
    """Intrinsics for a `height` × `width` photo by the order in the module docstring."""
    cx = options.cx if options.cx is not None else (width - 1) / 2.0
    cy = options.cy if options.cy is not None else (height - 1) / 2.0
    if options.fx is not None:
        fy = options.fy if options.fy is not None else options.fx
        return Intrinsics(options.fx, fy, cx, cy, width, height, "options", "--fx/--fy")
    if options.fov_deg is not None:
        focal = focal_from_fov(width, options.fov_deg)
        return Intrinsics(focal, focal, cx, cy, width, height, "fov", f"--fov {options.fov_deg:g}° horizontal")
    if options.use_exif and exif_focal_mm:
        # The 35 mm equivalent scales the frame diagonal: f_px / diagonal_px = f_mm / 43.27 mm.
        focal = exif_focal_mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        return Intrinsics(focal, focal, cx, cy, width, height, "exif", f"EXIF 35 mm-equivalent focal length {exif_focal_mm:g} mm")
    focal = focal_from_fov(width, options.default_fov_deg)
    return Intrinsics(
        focal, focal, cx, cy, width, height, "default", f"default {options.default_fov_deg:g}° horizontal field of view"
    )


# -- per-photo cameras ---------------------------------------------------------------------------

ASPECT_TOLERANCE = 0.01  # a resized copy keeps its aspect ratio to within rounding
SIDECAR_SUFFIX = ".camera.json"
INTRINSICS_FILE_LIMIT = 512 << 20  # --intrinsics: a million photos' cameras is ~100 MB
SIDECAR_LIMIT = 64 << 10  # one camera is a few hundred bytes


@dataclass(frozen=True)
class CameraEntry:
    """One camera as a file gives it: pixels of an image of `width` × `height` when those are
    known; cx, cy None for the image centre."""

    fx: float
    fy: float
    cx: float | None = None
    cy: float | None = None
    width: int | None = None
    height: int | None = None
    note: str = ""  # e.g. distortion a COLMAP model had and we ignore
    unusable: str = ""  # why a photo cannot use this camera (a fisheye model), said when one tries


def _number(value: Any, name: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or isinstance(value, bool):
        raise InputError(f"{where}: {name} must be a finite number, not {value!r}")
    return number


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_camera_entry(record: Mapping[str, Any], where: str) -> CameraEntry:
    """An entry from {fx, fy, cx, cy} or {K} (alias "matrix", 3×3 or 9 numbers), with optional
    width and height; other fields are ignored (so our own .intrinsics.json files read back)."""
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    matrix = next((fields[k] for k in ("k", "matrix") if not _blank(fields.get(k))), None)
    if not _blank(fields.get("fx")):
        fx = _number(fields["fx"], "fx", where)
        fy = fx if _blank(fields.get("fy")) else _number(fields["fy"], "fy", where)
        cx = None if _blank(fields.get("cx")) else _number(fields["cx"], "cx", where)
        cy = None if _blank(fields.get("cy")) else _number(fields["cy"], "cy", where)
    elif matrix is not None:
        flat = [v for row in matrix for v in (row if isinstance(row, (list, tuple)) else [row])] if isinstance(matrix, (list, tuple)) else []
        if len(flat) != 9:
            raise InputError(f"{where}: K must be a 3×3 matrix")
        k = [_number(v, "K", where) for v in flat]
        if k[1] != 0 or k[3] != 0 or k[6:] != [0, 0, 1]:
            raise InputError(f"{where}: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    else:
        raise InputError(f"{where}: give fx (fy, cx, cy) or K, in pixels")
    if (cx is None) != (cy is None):
        raise InputError(f"{where}: cx and cy go together")
    if not (fx > 0 and fy > 0):
        raise InputError(f"{where}: focal lengths must be positive pixels, not fx={fx:g}, fy={fy:g}")
    width, height = (None if _blank(fields.get(k)) else _number(fields[k], k, where) for k in ("width", "height"))
    if (width is None) != (height is None):
        raise InputError(f"{where}: width and height go together")
    if width is not None and not (width >= 1 and height >= 1 and width == int(width) and height == int(height)):
        raise InputError(f"{where}: width and height must be whole numbers of pixels")
    return CameraEntry(fx, fy, cx, cy, None if width is None else int(width), None if height is None else int(height))


def _principal_point_inside(cx: float, cy: float, width: int, height: int) -> bool:
    return -0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5


def fit_camera(
    entry: CameraEntry, height: int, width: int, source: str, detail: str, photo: str = "the photo"
) -> Intrinsics:
    """`entry` as intrinsics of a `height` × `width` photo: rescaled when the entry's image size
    differs (pixel centres stay put: u' = (u + ½)·s − ½), refused when its aspect ratio differs
    or, without a size, when its principal point lies outside the photo."""
    if entry.unusable:
        raise InputError(f"{detail}: {entry.unusable}")
    fx, fy, cx, cy = entry.fx, entry.fy, entry.cx, entry.cy
    notes = [entry.note] if entry.note else []
    if entry.width is not None and entry.height is not None:
        if cx is not None and not _principal_point_inside(cx, cy, entry.width, entry.height):
            raise InputError(
                f"{detail}: principal point ({cx:g}, {cy:g}) lies outside the {entry.width}×{entry.height} image it is given for"
            )
        if (entry.width, entry.height) != (width, height):
            scale_x, scale_y = width / entry.width, height / entry.height
            if abs(scale_x - scale_y) > ASPECT_TOLERANCE * max(scale_x, scale_y):
                raise InputError(
                    f"{detail}: the camera is given for a {entry.width}×{entry.height} image but {photo} is "
                    f"{width}×{height}, another aspect ratio (cropped or rotated?): give its own intrinsics"
                )
            fx, fy = fx * scale_x, fy * scale_y
            if cx is not None:
                cx, cy = (cx + 0.5) * scale_x - 0.5, (cy + 0.5) * scale_y - 0.5
            notes.append(f"rescaled from {entry.width}×{entry.height}")
    elif cx is not None and not _principal_point_inside(cx, cy, width, height):
        raise InputError(
            f"{detail}: principal point ({cx:g}, {cy:g}) lies outside the {width}×{height} {photo}: these "
            f"intrinsics are for another image size; give the width and height they refer to, to have them rescaled"
        )
    if cx is None:
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return Intrinsics(fx, fy, cx, cy, width, height, source, "; ".join([detail, *notes]))


def _records_from_json(data: Any, path: Path) -> list[tuple[str, Any, str]]:
    """(key, record, where) from a JSON object {key: record} or a list of records with "image"."""
    if isinstance(data, dict):
        return [(key, value, f"{path} [{key!r}]") for key, value in data.items()]
    if isinstance(data, list):
        result = []
        for number, record in enumerate(data):
            result.append(_keyed_record(record, f"{path} item {number}"))
        return result
    raise InputError(f"{path}: expected a JSON object mapping image → camera, or a list of cameras")


def _keyed_record(record: Any, where: str) -> tuple[str, Any, str]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object with \"image\" and the camera")
    key = next((record[f] for f in IMAGE_FIELDS if f in record), None)
    if not isinstance(key, str) or not key.strip():
        raise InputError(f"{where}: missing 'image', the photo the camera belongs to")
    return key, record, f"{where} ({key!r})"


def load_intrinsics_file(path: str | Path) -> dict[str, CameraEntry]:
    """{normalised key: camera} from JSON, JSON Lines or CSV/TSV (columns image, fx, fy, cx, cy,
    optionally width, height); any problem is one InputError naming the file and the place."""
    from .files import read_text_file

    path = Path(path)
    not_a_folder = "not an intrinsics file (did you mean --colmap?)"
    if path.is_dir():
        raise InputError(f"{path}: is a folder, {not_a_folder}")
    text = read_text_file(path, INTRINSICS_FILE_LIMIT, "intrinsics file", not_a_folder=not_a_folder)
    suffix, start = path.suffix.lower(), text.lstrip()[:1]
    records: list[tuple[str, Any, str]] = []
    if suffix in (".jsonl", ".ndjson"):
        records = _records_from_json_lines(text, path)
    elif suffix == ".json" or (suffix not in (".csv", ".tsv") and start in ("{", "[")):
        try:
            records = _records_from_json(json.loads(text), path)
        except json.JSONDecodeError as exc:
            if suffix == ".json" and exc.msg == "Extra data" and start == "{":
                records = _records_from_json_lines(text, path)  # JSON Lines saved under a .json name
            else:
                raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        reader.fieldnames = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
        column = next((f for f in IMAGE_FIELDS if f in reader.fieldnames), None)
        if column is None or "fx" not in reader.fieldnames:
            raise InputError(f"{path}: expected a header with 'image' and 'fx' (fy, cx, cy, width, height) columns")
        try:
            for row in reader:
                if any((value or "").strip() for value in row.values() if isinstance(value, str)):
                    records.append((row.get(column) or "", row, f"{path} line {reader.line_num}"))
        except csv.Error as exc:
            raise InputError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    table: dict[str, CameraEntry] = {}
    for key, record, where in records:
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected an object with fx, fy, cx, cy or K")
        key = normalise_key(key)
        if not key:
            raise InputError(f"{where}: the image key must be a non-empty text")
        entry = parse_camera_entry(record, where)
        if table.get(key, entry) != entry:
            raise InputError(f"{path}: key {key!r} is given twice with different cameras")
        table[key] = entry
    if not table:
        raise InputError(f"{path}: holds no cameras")
    return table


def _records_from_json_lines(text: str, path: Path) -> list[tuple[str, Any, str]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(_keyed_record(json.loads(line), f"{path} line {number}"))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
    return records


def colmap_entries(folder: str | Path) -> dict[str, CameraEntry]:
    """{image NAME: camera} from a COLMAP model; photos taken with a fisheye model are refused
    where they are used (`CameraResolver`), pinhole models with distortion noted."""
    from .colmap import UNDISTORTED, read_colmap_cameras

    table = {}
    for name, camera in read_colmap_cameras(folder).items():
        note = f"COLMAP camera {camera.camera_id} {camera.model}"
        if not camera.is_perspective:
            unusable = f"{note} is a fisheye model; undistort the photos to pinhole ones first (colmap image_undistorter)"
            table[normalise_key(name)] = CameraEntry(1.0, 1.0, None, None, camera.width, camera.height, note, unusable)
            continue
        if camera.model not in UNDISTORTED:
            note += ", its lens distortion ignored"
        table[normalise_key(name)] = CameraEntry(*camera.pinhole(), camera.width, camera.height, note)
    return table


def sidecar_camera_paths(image: InputImage) -> list[Path]:
    """`<stem>.camera.json` beside the photo (`<name>.camera.json` first when photos share a stem)."""
    own = image.path.parent / f"{image.output_stem.name}{SIDECAR_SUFFIX}"
    shared = image.path.parent / f"{image.path.stem}{SIDECAR_SUFFIX}"
    return list(dict.fromkeys([own, shared]))


def read_sidecar_camera(path: Path) -> CameraEntry | None:
    """The camera in a sidecar, or None when there is none. Only regular files of at most
    SIDECAR_LIMIT bytes are read (a FIFO or a link to /dev/zero is an InputError, not a hang)."""
    from .files import read_capped

    try:
        text = read_capped(path, SIDECAR_LIMIT, "the camera file").decode("utf-8-sig")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the camera ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: expected an object with fx, fy, cx, cy or K")
    return parse_camera_entry(record, str(path))


class CameraResolver:
    """Each photo's intrinsics by the order in the module docstring. The intrinsics file and the
    COLMAP model are read, and their keys checked against every photo of the run (`images`, before
    any sharding), when the resolver is made: malformed files and ambiguous keys fail here."""

    def __init__(self, options: CameraOptions = CameraOptions(), images: Iterable[InputImage] = ()) -> None:
        self.options = options
        images = list(images)
        self.tables: list[tuple[str, str, dict[str, CameraEntry], dict[Path, str]]] = []
        if options.intrinsics_file is not None:
            table = load_intrinsics_file(options.intrinsics_file)
            chosen = match_keys(table, images, options.intrinsics_file, "cameras")
            self.tables.append(("intrinsics-file", str(options.intrinsics_file), table, chosen))
        if options.colmap is not None:
            table = colmap_entries(options.colmap)
            chosen = match_keys(table, images, options.colmap, "cameras")
            self.tables.append(("colmap", str(options.colmap), table, chosen))
        # On an object store one listing says which camera sidecars exist (not two requests per photo).
        self._listed_sidecars: set[str] | None = None
        if options.sidecars:
            from . import storage

            remote_roots = {image.root for image in images if isinstance(image.root, storage.Url)}
            if remote_roots:
                self._listed_sidecars = {
                    str(storage.join(prefix, info.key))
                    for prefix in remote_roots
                    for info in storage.list_files(prefix)
                    if info.key.endswith(SIDECAR_SUFFIX)
                }

    def unmatched(self, images: Iterable[InputImage]) -> dict[str, int]:
        """{file: how many of `images` it names no camera for} (typos, other sets)."""
        images = list(images)
        return {
            origin: sum(1 for image in images if image.path not in chosen and find_key(table, image) is None)
            for _, origin, table, chosen in self.tables
        }

    def _entry(self, image: InputImage) -> tuple[CameraEntry, str, str] | None:
        """The per-photo camera for `image` (entry, source, where), or None to use the run-wide rules."""
        for source, origin, table, chosen in self.tables:
            key = chosen.get(image.path) or find_key(table, image)
            if key is not None:
                return table[key], source, f"{origin} [{key!r}]"
        if self.options.sidecars:
            for path in sidecar_camera_paths(image):
                if self._listed_sidecars is not None and str(path) not in self._listed_sidecars:
                    continue
                entry = read_sidecar_camera(path)
                if entry is not None:
                    return entry, "sidecar", str(path)
        return None

    def describe(self, image: InputImage) -> dict[str, Any] | None:
        """The per-photo camera a file gives `image`, as data (for its fingerprint: a changed
        entry makes its outputs stale); None when the run-wide rules apply."""
        try:
            found = self._entry(image)
        except InputError as exc:
            return {"error": str(exc)}
        if found is None:
            return None
        entry, source, where = found
        return {"source": source, "from": where, **asdict(entry)}

    def resolve(
        self, image: InputImage | None, height: int, width: int, exif_focal_mm: float | None = None
    ) -> Intrinsics:
        """Intrinsics for `image`, a `height` × `width` photo (None: only the run-wide rules)."""
        described = self.describe(image) if image is not None else None
        photo = image.key if image is not None else "the photo"
        return described_camera(described, self.options, height, width, exif_focal_mm, photo)


def described_camera(
    described: Mapping[str, Any] | None,
    options: CameraOptions,
    height: int,
    width: int,
    exif_focal_mm: float | None = None,
    photo: str = "the photo",
) -> Intrinsics:
    """Intrinsics of a `height` × `width` photo from what `CameraResolver.describe` said about it
    (as data, e.g. through JSON: a per-photo camera, the error reading it, or None for the
    run-wide rules of `options`). So a photo's camera is looked up once, where the run is
    planned, and used wherever the photo is converted; InputError when it cannot be used."""
    if described is not None:
        if "error" in described:
            raise InputError(str(described["error"]))
        entry = CameraEntry(**{f.name: described[f.name] for f in fields(CameraEntry) if f.name in described})
        return fit_camera(entry, height, width, str(described["source"]), str(described["from"]), photo)
    intrinsics = resolve_intrinsics(height, width, options, exif_focal_mm)
    if not _principal_point_inside(intrinsics.cx, intrinsics.cy, width, height):
        raise InputError(
            f"--cx {intrinsics.cx:g} --cy {intrinsics.cy:g}: the principal point lies outside the "
            f"{width}×{height} {photo}: give per-photo intrinsics with their image size (--intrinsics)"
        )
    return intrinsics


def camera_for_photo(camera: Any, height: int, width: int, exif_focal_mm: float | None = None) -> Intrinsics:
    """The intrinsics a Python caller means by `camera` for a `height` × `width` photo:

    - None: the photo's EXIF focal length, else the default field of view;
    - an Intrinsics (rescaled, by its width and height, when the photo's size differs);
    - a 3×3 K matrix (array or nested lists) or a mapping as in an intrinsics file, in pixels of
      this photo unless it says its width and height;
    - CameraOptions: the run-wide rules (flags, field of view, EXIF, default).
    """
    if camera is None:
        return resolve_intrinsics(height, width, CameraOptions(), exif_focal_mm)
    if isinstance(camera, CameraOptions):
        return resolve_intrinsics(height, width, camera, exif_focal_mm)
    if isinstance(camera, Intrinsics):
        entry = CameraEntry(camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height)
        fitted = fit_camera(entry, height, width, camera.source, camera.detail or "intrinsics")
        return fitted if (camera.width, camera.height) != (width, height) else camera
    if isinstance(camera, Mapping):
        return fit_camera(parse_camera_entry(camera, "intrinsics"), height, width, "argument", "intrinsics argument")
    try:
        import numpy as np

        matrix = np.asarray(camera, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (3, 3):
        raise InputError(
            f"intrinsics of type {type(camera).__name__}: give an Intrinsics, a 3×3 K matrix, a mapping "
            f"with fx fy cx cy, or CameraOptions"
        )
    entry = parse_camera_entry({"K": matrix.tolist()}, "intrinsics K")
    return fit_camera(entry, height, width, "argument", "intrinsics argument (K)")
