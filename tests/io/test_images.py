"""Photos in every mode, orientation and state of damage."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.errors import InputError
from tr2m_cli.io.images import read_rgb


def _gradient(h=40, w=60):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 4 % 256, y * 6 % 256, (x + y) % 256]).astype(np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(_gradient())
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    rgb = read_rgb(path)
    assert rgb.shape == (60, 40, 3)


@pytest.mark.parametrize(
    "mode,suffix",
    [("L", ".png"), ("LA", ".png"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"), ("1", ".bmp"), ("RGB", ".webp"), ("RGB", ".tif")],
)
def test_modes_become_rgb_uint8(tmp_path, mode, suffix):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(_gradient()).convert(mode).save(path)
    rgb = read_rgb(path)
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8


def test_sixteen_bit_greyscale_keeps_its_range(tmp_path):
    import imageio.v3 as iio

    grey = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
    path = tmp_path / "deep.png"
    iio.imwrite(path, grey)
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (40, 60, 3)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert 120 <= rgb[20, 30, 0] <= 135  # mid-range stays mid-range (no clipping at 255)


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "not an image"),
        (b"this is a text file, not a photo", "not an image"),
    ],
)
def test_not_images(tmp_path, content, expected):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as info:
        read_rgb(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_gradient(200, 300)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="unreadable image") as info:
        read_rgb(path)
    assert str(path) in str(info.value)


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_rgb(tmp_path / "absent.png")
    with pytest.raises(InputError, match="is a folder"):
        read_rgb(tmp_path)


def test_reading_photos_does_not_bring_back_warnings_already_shown(tmp_path):
    import warnings

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    read_rgb(path)  # our filter for PIL's size warning is in place from here on
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each warning once per place, as Python shows them
        for _ in range(3):
            warnings.warn("a library's one-time notice", UserWarning)
            read_rgb(path)
    assert len(caught) == 1
