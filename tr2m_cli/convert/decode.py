"""Reading photos for `convert`: the inference core's decode policy, plus what convert's outputs
need besides the network input (point-cloud colours, timing).

The network sees about 1240 patch tokens (≈ 430×570 pixels) whatever the photo's size, so huge
photos are reduced while decoding (`model.inference.prepare_photo`: JPEGs by libjpeg at 1/2–1/8
scale, anything still at least four times the network size by a box average). `predict` reads
photos the same way, so both give the same depth. Point-cloud colours are sampled from the photo
the network input was made from.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..io.captions import Caption
from ..io.images import DEFAULT_MAX_PIXELS
from ..io.inputs import InputImage
from ..io.pointcloud import resample_colours
from ..model.inference import NetworkInput, prepare_photo
from ..model.preprocess import SizePolicy


@dataclass
class DecodedPhoto:
    """A photo ready for the network, and what its outputs need to know about it."""

    image: InputImage
    caption: Caption
    photo: NetworkInput
    colors: np.ndarray | None  # [gh, gw, 3] uint8 at the point-cloud grid, when one is written
    seconds: float

    @property
    def size(self) -> tuple[int, int]:
        """Upright (H, W) of the photo: the outputs' size."""
        return self.photo.size

    @property
    def network_size(self) -> tuple[int, int]:
        return self.photo.network_size

    @property
    def exif_focal_mm(self) -> float | None:
        return self.photo.exif_focal_35mm


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
    file for anything unreadable, not a regular file, or over `max_pixels`. Photos decoded at
    full size above the core's BIG_PHOTO_PIXELS take one of `big_photo_slots` first."""
    start = time.perf_counter()
    photo = prepare_photo(
        image.path, policy, keep_rgb=cloud_grid is not None, big_photo_slots=big_photo_slots, max_pixels=max_pixels
    )
    colors = None
    if cloud_grid is not None:
        colors = resample_colours(photo.rgb, cloud_grid(*photo.size))
        photo.rgb = None
    return DecodedPhoto(image, caption, photo, colors, time.perf_counter() - start)
