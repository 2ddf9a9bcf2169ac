"""Decoding photos for the network, cheaply even when they are huge.

The network sees about 1240 patch tokens (≈ 430×570 pixels) whatever the photo's size, and the
outputs only need the photo's size, not its pixels. So a 48 MP JPEG is decoded at 1/2, 1/4 or 1/8
scale by libjpeg itself (PIL's `draft`), and any photo still more than twice the needed size is
box-reduced by an integer factor before the bilinear resize to the network size (no aliasing,
and no full-size copy kept). Photos within twice the network size are read exactly as
`TR2M.predict` reads them, so both give the same depth.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import InputError
from ..io.captions import Caption
from ..io.images import DEFAULT_MAX_PIXELS, open_image, pil_to_rgb
from ..io.inputs import InputImage
from ..io.intrinsics import exif_focal_35mm
from ..model.preprocess import SizePolicy, normalize_and_resize, to_float_tensor

EXIF_ORIENTATION = 0x0112
BIG_PHOTO_PIXELS = 24_000_000


@dataclass
class DecodedPhoto:
    """A photo ready for the network, and what its outputs need to know about it."""

    image: InputImage
    caption: Caption
    size: tuple[int, int]  # upright (H, W) of the photo: the outputs' size
    network_size: tuple[int, int]
    pixels: torch.Tensor  # [3, h, w] ImageNet-normalised, at network_size
    colors: np.ndarray | None  # [gh, gw, 3] uint8 at the point-cloud grid, when one is written
    exif_focal_mm: float | None
    seconds: float


def decode_photo(
    image: InputImage,
    caption: Caption,
    policy: SizePolicy,
    cloud_grid: Callable[[int, int], tuple[int, int]] | None = None,
    big_photo_slots: threading.Semaphore | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> DecodedPhoto:
    """Read `image` and prepare its network input (and point-cloud colours when `cloud_grid`
    maps the photo's (H, W) to the grid the cloud is sampled on). Raises InputError naming the
    file for anything unreadable, not a regular file, or over `max_pixels`.

    Photos that must be decoded at full size and are over BIG_PHOTO_PIXELS (a 100 MP PNG holds
    ~600 MB while it is converted) take one of `big_photo_slots` first, so a pool of decoding
    threads never holds more than a few of them at once."""
    from PIL import Image

    start = time.perf_counter()
    with contextlib.ExitStack() as big_photo_slot:  # held until the full-size copy is reduced
        with open_image(image.path, max_pixels=max_pixels) as pil:
            stored_width, stored_height = pil.size
            try:
                orientation = int(pil.getexif().get(EXIF_ORIENTATION, 1))
            except (TypeError, ValueError, OSError, SyntaxError):
                orientation = 1
            turned = orientation in (5, 6, 7, 8)
            height, width = (stored_width, stored_height) if turned else (stored_height, stored_width)
            if height < 1 or width < 1:
                raise InputError(f"{image.path}: empty image ({width}×{height})")
            network_size = policy.network_size(height, width)
            need = (min(height, 2 * network_size[0]), min(width, 2 * network_size[1]))
            if cloud_grid is not None:
                grid = cloud_grid(height, width)
                need = (max(need[0], grid[0]), max(need[1], grid[1]))
            drafted = pil.format == "JPEG" and max(height / need[0], width / need[1]) >= 2
            if big_photo_slots is not None and not drafted and height * width > BIG_PHOTO_PIXELS:
                big_photo_slots.acquire()
                big_photo_slot.callback(big_photo_slots.release)
            if drafted:
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below the requested size.
                pil.draft(None, (need[0], need[1]) if turned else (need[1], need[0]))
            focal = exif_focal_35mm(pil)
            pil.load()
            rgb = pil_to_rgb(pil)
        if not drafted and rgb.shape[:2] != (height, width):
            # The decoded size is the truth (an orientation tag stored after the pixels, in a PNG).
            height, width = rgb.shape[:2]
            network_size = policy.network_size(height, width)
        factor = min(rgb.shape[0] // need[0], rgb.shape[1] // need[1])
        if factor >= 2:
            rgb = np.array(Image.fromarray(rgb).reduce(factor))  # a writable copy, as torch wants
    pixels = normalize_and_resize(to_float_tensor(rgb)[None], network_size)[0]
    colors = None
    if cloud_grid is not None:
        grid = cloud_grid(height, width)
        colors = rgb if rgb.shape[:2] == grid else np.asarray(Image.fromarray(rgb).resize(grid[::-1], Image.BOX))
    return DecodedPhoto(
        image=image,
        caption=caption,
        size=(height, width),
        network_size=network_size,
        pixels=pixels,
        colors=colors,
        exif_focal_mm=focal,
        seconds=time.perf_counter() - start,
    )
