"""Camera intrinsics for turning a depth map into 3-D points.

TR2M predicts depth, not the camera, so the focal length comes from, in order: the user
(`fx`, `fy`, `cx`, `cy` in pixels), a field of view the user gives, the photo's EXIF 35 mm
equivalent focal length, or a default horizontal field of view of 60° (between the Kinect-style
cameras of NYUv2/TUM, about 62°, and a phone's main camera, 65–70°).

Convention (OpenCV's): pixel (u, v) has its centre at integer coordinates, u along the width;
a point at depth Z (metres, along the optical axis) is X = (u − cx)·Z/fx, Y = (v − cy)·Z/fy, with
x right, y down, z forward. The default principal point is the image centre ((W−1)/2, (H−1)/2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError

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
    (`source`: options, fov, exif or default)."""

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
