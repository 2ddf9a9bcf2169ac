"""Small readers shared by the dataset modules: split lists, 16-bit depth images, masks.

Each dataset module decides what the numbers mean (its scale, its invalid value); these functions
only get the numbers off the disk, raising DatasetError that names the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DatasetError


def read_lines(path: Path) -> list[str]:
    """Non-empty lines, stripped (split lists are written with \\n or \\r\\n)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_file(names: Iterable[str], folders: Iterable[Path]) -> Path | None:
    """The first existing folder/name among the combinations (folders outer, names inner)."""
    names = list(names)
    for folder in folders:
        for name in names:
            candidate = Path(folder) / name
            if candidate.is_file():
                return candidate
    return None


def read_uint16_image(path: Path) -> np.ndarray:
    """A 16-bit depth image (PNG or TIFF) as uint16 HxW, exactly as stored.

    Single-channel files are returned as is; files with several channels (some copies of C3VD,
    SimCol) give their first channel, as the reference's `cv2.imread(path, 3)[..., 0]` does.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as image:
                if image.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "L", "RGB", "RGBA", "LA"):
                    raise DatasetError(f"{path}: depth image in mode {image.mode}, expected 16-bit grey")
                array = np.asarray(image)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except DatasetError:
        raise
    except Exception as exc:  # PIL, tifffile: truncated or not an image
        raise DatasetError(f"{path}: unreadable depth image ({type(exc).__name__}: {exc})") from None
    if array.ndim == 3:
        array = array[..., 0]
    if array.ndim != 2:
        raise DatasetError(f"{path}: depth image of shape {array.shape}, expected HxW")
    if array.dtype.kind not in "ui" or array.max(initial=0) > 65535 or array.min(initial=0) < 0:
        raise DatasetError(f"{path}: depth image of type {array.dtype}, expected 16-bit integers")
    return array.astype(np.uint16, copy=False)


def read_scaled_depth(path: Path, metres_per_unit: float) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 depth image whose unit is `metres_per_unit` and where 0 means no measurement →
    (float32 metres, valid). The scale is the calling dataset's fact; this only applies it."""
    raw = read_uint16_image(path)
    return (raw.astype(np.float64) * metres_per_unit).astype(np.float32), raw > 0


def read_focal(path: Path) -> float | None:
    """fx from a 3x3 intrinsics text file (VOID's K.txt, SUN RGB-D's intrinsics.txt); None if
    absent or unreadable (the focal length is informative, not required)."""
    try:
        return float(np.loadtxt(path).reshape(-1)[0])
    except (OSError, ValueError, IndexError):
        return None


def read_mask_image(path: Path) -> np.ndarray:
    """A mask image (any bit depth) as bool HxW: nonzero = True."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except Exception as exc:
        raise DatasetError(f"{path}: unreadable mask ({type(exc).__name__}: {exc})") from None
    if array.ndim == 3:
        array = array[..., 0]
    return array != 0


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable .npy ({exc})") from None


KEY_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".txt"})


def relative_key(path: str | Path) -> str:
    """A list path → a stable sample key: forward slashes, no leading ./ or /, no image (or .txt)
    extension; other dots stay (HyperSim's `frame.0000.tonemap`)."""
    text = str(path).replace("\\", "/").strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.lstrip("/")
    stem, dot, suffix = text.rpartition(".")
    if dot and f".{suffix.lower()}" in KEY_SUFFIXES:
        text = stem
    return text
