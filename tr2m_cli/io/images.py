"""Reading photos as people have them: any mode, any orientation, any bit depth.

The network wants RGB; photos come as JPEG with an EXIF rotation flag, greyscale scans, RGBA
screenshots, palette PNGs, 16-bit TIFFs and CMYK prints. Everything becomes HxWx3 uint8, upright.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError

HEIF_SUFFIXES = frozenset({".heic", ".heif"})
AVIF_SUFFIXES = frozenset({".avif"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}) | HEIF_SUFFIXES | AVIF_SUFFIXES
# A photo over this many pixels fails alone, before it is decoded: a 20 KB PNG can declare
# 13000×13000 pixels (3.6 GB to decode, a 676 MB depth TIFF). 100 MP passes every camera sold
# today, medium format included; `--max-megapixels` raises it for panoramas and scans.
DEFAULT_MAX_PIXELS = 100_000_000


@functools.lru_cache(maxsize=None)
def heif_available() -> bool:
    """HEIC/HEIF photos (iPhones) are read through pillow-heif, the `heif` extra."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@functools.lru_cache(maxsize=None)
def avif_available() -> bool:
    from PIL import features

    return bool(features.check("avif"))


def unsupported_reason(path: str | Path) -> str | None:
    """Why a photo with this name cannot be read on this installation, or None when it can."""
    suffix = Path(str(path)).suffix.lower()  # a local path or a storage URL
    if suffix in HEIF_SUFFIXES and not heif_available():
        return "a HEIC/HEIF photo: reading it needs pillow-heif (pip install 'tr2m[heif]')"
    if suffix in AVIF_SUFFIXES and not avif_available():
        return "an AVIF photo: reading it needs Pillow built with AVIF (Pillow 11.3 or later)"
    return None


def _ignore_bomb_warnings() -> None:
    """PIL warns about images over its limit while opening them; our refusal (below) says it
    better, so that warning category is ignored: a process-wide filter, added once (adding a
    filter, even one already there, resets which warnings were shown, so every "once" warning
    of other libraries would come back after each photo)."""
    import warnings

    from PIL import Image

    if not any(f[0] == "ignore" and f[2] is Image.DecompressionBombWarning for f in warnings.filters):
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@contextlib.contextmanager
def open_image(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator["PIL.Image.Image"]:  # noqa: F821
    """A PIL image of the file at `path`, header read, pixels not yet decoded. Refuses (as one
    InputError naming the file) anything that is not a regular file, formats this installation
    cannot read, and images over `max_pixels` (None: no limit). Errors while the caller decodes
    inside the block are worded by `image_errors` too."""
    from PIL import Image

    from .files import open_regular

    reason = unsupported_reason(path)
    if reason is not None:
        raise InputError(f"{path}: {reason}")
    if max_pixels is not None and (Image.MAX_IMAGE_PIXELS or 0) < max_pixels:
        # PIL's own guard warns above its limit and refuses above twice it; ours is the one users
        # set, so PIL's is moved out of its way (a process-wide setting, only ever raised).
        Image.MAX_IMAGE_PIXELS = max_pixels
    from . import storage

    def opened():  # within image_errors: a missing file is its one-line error
        # A photo on an object store is read in one request; a local one only if it is a regular file.
        return storage.open_for_reading(storage.location(path)) if storage.is_url(path) else open_regular(path)

    _ignore_bomb_warnings()
    with image_errors(path), opened() as handle, Image.open(handle) as image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise InputError(
                f"{path}: {width}×{height} is {width * height / 1e6:.0f} megapixels, over the limit of "
                f"{max_pixels / 1e6:g} (raise it with --max-megapixels)"
            )
        yield image


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
    except InputError:
        raise
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


def read_rgb(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a photo file as upright HxWx3 uint8, or raise InputError naming the file."""
    with open_image(path, max_pixels=max_pixels) as image:
        image.load()
        return pil_to_rgb(image)
