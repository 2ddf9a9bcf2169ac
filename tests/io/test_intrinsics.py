"""Which camera a point cloud uses, and that the numbers are right."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from tr2m_cli.errors import InputError
from tr2m_cli.io.intrinsics import CameraOptions, exif_focal_35mm, resolve_intrinsics


def test_precedence_options_then_fov_then_exif_then_default():
    explicit = resolve_intrinsics(480, 640, CameraOptions(fx=500.0, cx=300.0, cy=200.0), exif_focal_mm=28)
    assert (explicit.fx, explicit.fy, explicit.cx, explicit.cy, explicit.source) == (500.0, 500.0, 300.0, 200.0, "options")
    fov = resolve_intrinsics(480, 640, CameraOptions(fov_deg=90.0), exif_focal_mm=28)
    assert fov.source == "fov" and fov.fx == pytest.approx(320.0) and fov.cx == 319.5 and fov.cy == 239.5
    exif = resolve_intrinsics(480, 640, CameraOptions(), exif_focal_mm=28)
    # 35 mm equivalent: f_px = f_mm · (image diagonal in px) / (full-frame diagonal 43.27 mm)
    assert exif.source == "exif" and exif.fx == pytest.approx(28 * 800 / math.hypot(36, 24))
    default = resolve_intrinsics(480, 640, CameraOptions(use_exif=False), exif_focal_mm=28)
    assert default.source == "default" and default.horizontal_fov_deg == pytest.approx(60.0)


def test_stride_scales_focal_and_principal_point():
    base = resolve_intrinsics(480, 640, CameraOptions(fx=500.0, cx=320.0, cy=240.0))
    half = base.for_stride(2)
    assert (half.fx, half.cx, half.cy, half.width, half.height) == (250.0, 160.0, 120.0, 320, 240)
    assert base.to_json()["matrix"] == [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]


def test_exif_focal_length_is_read_from_the_photo(tmp_path):
    image = Image.new("RGB", (64, 48))
    exif = image.getexif()
    exif[0x8769] = {0xA405: 26}
    image.save(tmp_path / "phone.jpg", exif=exif)
    image.save(tmp_path / "plain.jpg")
    assert exif_focal_35mm(Image.open(tmp_path / "phone.jpg")) == 26.0
    assert exif_focal_35mm(Image.open(tmp_path / "plain.jpg")) is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"fy": 500.0}, "--fy needs --fx"),
        ({"fx": 500.0, "cx": 3.0}, "--cx and --cy go together"),
        ({"fx": 500.0, "fov_deg": 60.0}, "either --fx/--fy or --fov"),
        ({"fx": -1.0}, "--fx -1.0: must be a positive"),
        ({"fov_deg": 180.0}, "between 0 and 180"),
    ],
)
def test_contradictory_or_impossible_cameras_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        CameraOptions(**kwargs)
