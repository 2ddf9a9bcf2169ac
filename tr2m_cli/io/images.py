"""Reading photos as people have them: any mode, any orientation, any bit depth.

The network wants RGB; photos come as JPEG with an EXIF rotation flag, greyscale scans, RGBA
screenshots, palette PNGs, 16-bit TIFFs and CMYK prints. Everything becomes HxWx3 uint8, upright.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def pil_to_rgb(image: "PIL.Image.Image") -> np.ndarray:  # noqa: F821
    """A PIL image of any mode → upright HxWx3 uint8."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the full range to 8 bits; PIL's own convert would clip at 255.
        array = np.asarray(image)
        peak = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        grey = np.clip(array.astype(np.float64) / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        finite = array[np.isfinite(array)]
        top = finite.max(initial=1.0) if finite.size else 1.0
        grey = np.clip(np.nan_to_num(array) / (top if top > 0 else 1.0) * 255.0 + 0.5, 0, 255)
        return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
    if mode in ("P", "PA") and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


@contextlib.contextmanager
def image_errors(path: str | Path) -> Iterator[None]:
    """Turn whatever PIL or the OS raises while opening or decoding `path` into one InputError
    naming the file (readers that decode differently, e.g. at reduced size, share the wording)."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        message = str(exc).strip() or type(exc).__name__
        raise InputError(f"{path}: unreadable image ({message})") from None


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a photo file as upright HxWx3 uint8, or raise InputError naming the file."""
    from PIL import Image

    path = Path(path)
    with image_errors(path), Image.open(path) as image:
        image.load()
        return pil_to_rgb(image)
