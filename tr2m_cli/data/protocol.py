"""How a dataset is evaluated: depth range, crop, network input size, and the reference release's
resizes. One frozen dataclass, one named preset per dataset, every field overridable.

The presets are the paper's protocol as the authors' evaluation code runs it (spec §5–§6):

| preset   | range (m)     | crop  | input      | before the network                         |
|----------|---------------|-------|------------|--------------------------------------------|
| nyu      | 1e-3 – 10     | eigen | 434×560    |                                            |
| kitti    | 1e-3 – 80     | garg  | 350×1204   | KITTI benchmark crop 352×1216 (photo + GT) |
| void     | 0.2 – 5       | eigen | 434×560    |                                            |
| c3vd     | 1e-4 – 0.1    | none  | 434×560    | photo and GT resized to 480×640            |
| sunrgbd  | 1e-3 – 8      | eigen | 518×728    |                                            |
| ibims    | 1e-3 – 10     | eigen | 434×560    |                                            |
| hypersim | 1e-3 – 80     | none  | 434×560    | photo resized to 480×640 (float, antialiased) |
| diode    | 1e-3 – 80     | garg  | 434×560    | photo resized to 480×640 (float, antialiased) |
| simcol   | 1e-4 – 0.1    | none  | 434×560    | photo resized to 480×640                   |

The first resize to 480×640 follows the reference exactly: C3VD and SimCol resize the decoded photo
(torchvision's Resize on a PIL image: PIL bilinear, which antialiases, to uint8); HyperSim and DIODE
resize the float tensor after normalisation (torchvision's Resize on a tensor: bilinear,
antialiased, in float). Normalising first or last gives the same numbers (both are linear).

The Garg crop on KITTI is taken on the 352×1216 cropped ground truth, as the authors' (and
ZoeDepth's) evaluation does; `crop_ground_truth=False` takes it on the full-size ground truth with
the prediction pasted into the benchmark window, as BTS-style evaluation does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

import numpy as np

from ..errors import InputError

# tr2m_cli.model.config.PATCH_SIZE, restated so that reading datasets never imports torch (the
# model package does); tests/data/test_protocol.py keeps the two equal.
PATCH_SIZE = 14

CROPS = ("eigen", "garg", "kb")
EIGEN_ROWS = (45, 471)  # the Eigen crop for 480×640 frames (NYUv2), in pixels
EIGEN_COLS = (41, 601)
GARG_ROWS = (0.40810811, 0.99189189)  # Garg et al.'s KITTI crop, as fractions of the frame
GARG_COLS = (0.03594771, 0.96405229)
KB_SIZE = (352, 1216)  # the KITTI depth benchmark crop: bottom 352 rows, centred 1216 columns
REPORT_UNITS = {"metres": 1.0, "millimetres": 1000.0}
RESIZE_TARGETS = ("photo", "tensor")


@dataclass(frozen=True)
class EvalProtocol:
    """One dataset's evaluation settings. Depths are in metres.

    min_depth, max_depth: ground truth counts only where min < gt < max (strict), and predictions
        are clamped to [min, max].
    crop: evaluation mask on the ground truth: "eigen" (rows 45:471, cols 41:601), "garg"
        (fractions of the frame), "kb" (the KITTI benchmark window) or None.
    input_size: (H, W) network input, multiples of 14; None keeps the aspect ratio at the model's
        patch-token budget.
    input_crop: "kb" crops the photo to the KITTI benchmark window before anything else, and the
        ground truth too when `crop_ground_truth` (the authors' code); otherwise the prediction is
        placed back into the full-size frame and compared there (BTS-style evaluation).
    image_resize: the reference release first resizes some photos (to 480×640) before the network
        resize; kept for parity. image_resize_on: "photo" resizes the uint8 photo with PIL (bilinear,
        antialiased), "tensor" the float pixels with torch (bilinear, antialiased), as the reference
        does for each set. depth_resize: ground truth resized (nearest) before comparing (C3VD).
    normalize: ImageNet-normalise the photo (every set; the authors' code skips it for iBims, which
        `normalize=False` reproduces).
    domain: scene domain handed to the model ("surgical" makes millimetre-trained weights answer in
        metres, see ModelSpec.domain_units).
    report_unit: the unit the paper reports RMSE and SqRel in for this set (tables only).
    """

    name: str = "custom"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    crop: str | None = None
    input_size: tuple[int, int] | None = (434, 560)
    input_crop: str | None = None
    image_resize: tuple[int, int] | None = None
    depth_resize: tuple[int, int] | None = None
    domain: str | None = None
    report_unit: str = "metres"
    crop_ground_truth: bool = True
    image_resize_on: str = "photo"
    normalize: bool = True

    def __post_init__(self) -> None:
        for key in ("crop", "input_crop", "image_resize", "depth_resize", "input_size"):
            if isinstance(getattr(self, key), str) and getattr(self, key).lower() in ("none", ""):
                object.__setattr__(self, key, None)  # "none" from a command line
        for key in ("input_size", "image_resize", "depth_resize"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _size_pair(value, key))
        if not (0 < self.min_depth < self.max_depth):
            raise InputError(
                f"depth range {self.min_depth:g}–{self.max_depth:g} m: need 0 < min < max (metres)"
            )
        if self.crop not in (None, *CROPS):
            raise InputError(f"crop '{self.crop}': expected one of {', '.join(CROPS)} or none")
        if self.input_crop not in (None, "kb"):
            raise InputError(f"input crop '{self.input_crop}': expected 'kb' or none")
        if self.input_size is not None and any(side % PATCH_SIZE for side in self.input_size):
            h, w = self.input_size
            raise InputError(f"input size {h}x{w}: both sides must be multiples of {PATCH_SIZE}")
        if self.image_resize_on not in RESIZE_TARGETS:
            raise InputError(f"image_resize_on '{self.image_resize_on}': expected {' or '.join(RESIZE_TARGETS)}")
        if self.report_unit not in REPORT_UNITS:
            raise InputError(f"report unit '{self.report_unit}': expected {' or '.join(REPORT_UNITS)}")

    def replace(self, **changes: Any) -> "EvalProtocol":
        """A copy with some fields changed and checked ("none" clears a crop or a size)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("input_size", "image_resize", "depth_resize"):
            if data[key] is not None:
                data[key] = list(data[key])
        data["units"] = "metres"
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalProtocol":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def crop_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean HxW mask of the evaluated region (all True without a crop)."""
        return crop_mask(shape, self.crop)

    def describe(self) -> str:
        parts = [f"range {self.min_depth:g}–{self.max_depth:g} m", f"crop {describe_crop(self.crop)}"]
        if self.input_crop:
            target = "photo and ground truth" if self.crop_ground_truth else "photo (ground truth kept whole)"
            parts.append(f"KITTI benchmark crop 352x1216 of the {target} first")
        if self.image_resize:
            how = " (float, antialiased)" if self.image_resize_on == "tensor" else ""
            parts.append("photo resized to {}x{}{} first".format(*self.image_resize, how))
        if self.depth_resize:
            parts.append("ground truth resized (nearest) to {}x{}".format(*self.depth_resize))
        size = "{}x{}".format(*self.input_size) if self.input_size else "aspect-keeping"
        parts.append(f"network input {size}")
        if not self.normalize:
            parts.append("photo not ImageNet-normalised")
        if self.domain:
            parts.append(f"domain {self.domain}")
        return ", ".join(parts)


def _size_pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, str):
        value = value.lower().replace("×", "x").split("x")
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} {value!r}: expected HxW, e.g. 434x560") from None
    if height < 1 or width < 1:
        raise InputError(f"{what} {height}x{width}: both sides must be positive")
    return height, width


def parse_size(text: str) -> tuple[int, int]:
    """'434x560' → (434, 560)."""
    return _size_pair(text, "size")


def describe_crop(crop: str | None) -> str:
    return {
        None: "none",
        "eigen": "eigen (rows {}:{}, cols {}:{})".format(*EIGEN_ROWS, *EIGEN_COLS),
        "garg": "garg (rows {:.4f}–{:.4f}, cols {:.4f}–{:.4f} of the frame)".format(*GARG_ROWS, *GARG_COLS),
        "kb": "kb (bottom 352 rows, centred 1216 columns)",
    }[crop]


def kb_window(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns of the KITTI benchmark crop in an HxW frame (bottom rows, centred)."""
    height, width = shape
    rows, cols = KB_SIZE
    if height < rows or width < cols:
        raise InputError(f"frame of {height}x{width} is smaller than the KITTI benchmark crop {rows}x{cols}")
    top, left = height - rows, int((width - cols) / 2)
    return slice(top, top + rows), slice(left, left + cols)


def crop_mask(shape: tuple[int, int], crop: str | None) -> np.ndarray:
    height, width = shape
    mask = np.zeros((height, width), dtype=bool)
    if crop is None:
        mask[:] = True
    elif crop == "eigen":
        # Fixed pixel indices (the crop was defined for 480×640); other sizes get the same rows and
        # columns, clipped to the frame, as the reference does for SUN RGB-D.
        mask[slice(*EIGEN_ROWS), slice(*EIGEN_COLS)] = True
    elif crop == "garg":
        rows = slice(int(GARG_ROWS[0] * height), int(GARG_ROWS[1] * height))
        cols = slice(int(GARG_COLS[0] * width), int(GARG_COLS[1] * width))
        mask[rows, cols] = True
    elif crop == "kb":
        mask[kb_window(shape)] = True
    else:
        raise InputError(f"crop '{crop}': expected one of {', '.join(CROPS)} or none")
    return mask


_REFERENCE_480 = (434, 560)  # 480×640 frames: the reference's fixed input (spec §2)

PRESETS: dict[str, EvalProtocol] = {
    "nyu": EvalProtocol("nyu", 1e-3, 10.0, "eigen", _REFERENCE_480, domain="indoor"),
    "kitti": EvalProtocol("kitti", 1e-3, 80.0, "garg", (350, 1204), input_crop="kb", domain="outdoor"),
    "void": EvalProtocol("void", 0.2, 5.0, "eigen", _REFERENCE_480, domain="indoor"),
    # C3VD and SimCol: 0.1–100 mm, reported in millimetres by the paper.
    "c3vd": EvalProtocol(
        "c3vd", 1e-4, 0.1, None, _REFERENCE_480, image_resize=(480, 640), depth_resize=(480, 640),
        domain="surgical", report_unit="millimetres",
    ),
    "sunrgbd": EvalProtocol("sunrgbd", 1e-3, 8.0, "eigen", (518, 728), domain="indoor"),
    "ibims": EvalProtocol("ibims", 1e-3, 10.0, "eigen", _REFERENCE_480, domain="indoor"),
    "hypersim": EvalProtocol(
        "hypersim", 1e-3, 80.0, None, _REFERENCE_480, image_resize=(480, 640), image_resize_on="tensor", domain="indoor"
    ),
    "diode": EvalProtocol(
        "diode", 1e-3, 80.0, "garg", _REFERENCE_480, image_resize=(480, 640), image_resize_on="tensor", domain="outdoor"
    ),
    "simcol": EvalProtocol(
        "simcol", 1e-4, 0.1, None, _REFERENCE_480, image_resize=(480, 640), domain="surgical",
        report_unit="millimetres",
    ),
}


def preset(name: str) -> EvalProtocol:
    """The paper's protocol for a dataset (see the table at the top of this module)."""
    from . import canonical_name

    return PRESETS[canonical_name(name)]
