"""Which camera a point cloud uses, and that the numbers are right."""

from __future__ import annotations

import math

import numpy as np

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


# -- cameras per photo ---------------------------------------------------------------------------

import json  # noqa: E402
import struct  # noqa: E402
from pathlib import Path  # noqa: E402

from tr2m_cli.io.inputs import collect_images  # noqa: E402
from tr2m_cli.io.intrinsics import CameraResolver, load_intrinsics_file  # noqa: E402


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for name in ["kitchen/a.jpg", "kitchen/b.png", "street/c.jpg"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")  # only names matter here: sizes are passed in
    return root


def cameras(photos: Path, size=(480, 640), exif=None, **options):
    images = collect_images([photos])
    resolver = CameraResolver(CameraOptions(**options), images)
    return {image.key: resolver.resolve(image, *size, exif) for image in images}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_an_intrinsics_file_in_each_format_gives_each_photo_its_camera(photos, tmp_path):
    as_json = write(
        tmp_path / "cams.json",
        json.dumps(
            {
                "kitchen/a.jpg": {"fx": 500, "fy": 510, "cx": 320, "cy": 240},
                "b": {"K": [[600, 0, 300], [0, 600, 200], [0, 0, 1]]},  # keyed by stem, a K matrix
            }
        ),
    )
    found = cameras(photos, intrinsics_file=as_json)
    a, b, c = found["kitchen/a.jpg"], found["kitchen/b.png"], found["street/c.jpg"]
    assert (a.fx, a.fy, a.cx, a.cy, a.source) == (500, 510, 320, 240, "intrinsics-file")
    assert "cams.json ['kitchen/a.jpg']" in a.detail
    assert (b.fx, b.fy, b.cx, b.cy, b.source) == (600, 600, 300, 200, "intrinsics-file")
    assert c.source == "default"  # not in the file: the next rule
    as_jsonl = write(tmp_path / "cams.jsonl", '{"image": "c.jpg", "fx": 700, "cx": 300, "cy": 250}\n\n')
    as_csv = write(tmp_path / "cams.csv", "image,fx,fy,cx,cy\nstreet/c.jpg,700,700,300,250\n")
    for path in (as_jsonl, as_csv):
        c = cameras(photos, intrinsics_file=path)["street/c.jpg"]
        assert (c.fx, c.fy, c.cx, c.cy, c.source) == (700, 700, 300, 250, "intrinsics-file"), path.name
    # Without a principal point: the centre of the photo.
    centre = write(tmp_path / "centre.json", '{"a.jpg": {"fx": 400}}')
    a = cameras(photos, intrinsics_file=centre)["kitchen/a.jpg"]
    assert (a.fx, a.fy, a.cx, a.cy) == (400, 400, 319.5, 239.5)


def test_cameras_for_another_size_are_rescaled_and_other_shapes_refused(photos, tmp_path):
    # Calibrated on the 4032×3024 original; the photo here is a 1008×756 copy (a quarter).
    file = write(tmp_path / "cams.json", '{"a.jpg": {"fx": 3000, "fy": 3000, "cx": 2015.5, "cy": 1511.5, "width": 4032, "height": 3024}}')
    a = cameras(photos, size=(756, 1008), intrinsics_file=file)["kitchen/a.jpg"]
    # Pixel centres stay put: u' = (u + ½)/4 − ½, so the centre of the original is the centre here.
    assert (a.fx, a.fy, a.cx, a.cy) == (750, 750, 503.5, 377.5)
    assert "rescaled from 4032×3024" in a.detail
    with pytest.raises(InputError, match=r"4032×3024 image but kitchen/a.jpg is 1008×1008, another aspect ratio"):
        cameras(photos, size=(1008, 1008), intrinsics_file=file)


def test_a_principal_point_outside_the_photo_is_refused_not_guessed(photos, tmp_path):
    file = write(tmp_path / "cams.json", '{"a.jpg": {"fx": 3000, "cx": 2015.5, "cy": 1511.5}}')
    with pytest.raises(InputError, match=r"cams.json \['a.jpg'\]: principal point \(2015.5, 1511.5\) lies outside the 640×480"):
        cameras(photos, intrinsics_file=file)
    with pytest.raises(InputError, match=r"--cx 700 --cy 200: the principal point lies outside the 640×480"):
        cameras(photos, fx=500.0, cx=700.0, cy=200.0)
    assert cameras(photos, size=(480, 800), fx=500.0, cx=700.0, cy=200.0)["kitchen/a.jpg"].cx == 700


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"a.jpg": {"fy": 500}}', r"\['a.jpg'\]: give fx \(fy, cx, cy\) or K"),
        ('{"a.jpg": {"fx": -5}}', "focal lengths must be positive"),
        ('{"a.jpg": {"fx": "wide"}}', "fx must be a number"),
        ('{"a.jpg": {"fx": 500, "cx": 3}}', "cx and cy go together"),
        ('{"a.jpg": {"K": [[500, 1, 3], [0, 500, 2], [0, 0, 1]]}}', "no skew"),
        ('{"a.jpg": {"fx": 500, "width": 640}}', "width and height go together"),
        ('[{"fx": 500}]', "item 0: missing 'image'"),
        ("image,cx\na.jpg,3\n", "expected a header with 'image' and 'fx'"),
        ('{"a.jpg": {"fx": 500}', "not valid JSON"),
    ],
)
def test_malformed_intrinsics_files_are_one_line_naming_the_place(tmp_path, text, message):
    suffix = ".csv" if text.startswith("image") else ".json"
    with pytest.raises(InputError, match=message):
        load_intrinsics_file(write(tmp_path / f"cams{suffix}", text))


def test_ambiguous_keys_stop_the_run_before_it_starts(photos, tmp_path):
    (photos / "street" / "a.jpg").write_bytes(b"x")
    file = write(tmp_path / "cams.json", '{"a.jpg": {"fx": 500}}')
    with pytest.raises(InputError, match="key 'a.jpg' matches 2 photos"):
        cameras(photos, intrinsics_file=file)
    two = write(tmp_path / "two.json", '{"kitchen/b.png": {"fx": 500}, "b": {"fx": 600}}')
    with pytest.raises(InputError, match="give different cameras"):
        cameras(photos, intrinsics_file=two)


def colmap_text_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    write(
        folder / "cameras.txt",
        "# Camera list with one line of data per camera:\n"
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
        "1 PINHOLE 640 480 520 521 320 240\n"
        "2 SIMPLE_RADIAL 1280 960 1000 640 480 -0.02\n"
        "3 OPENCV_FISHEYE 640 480 300 300 320 240 0.1 0 0 0\n",
    )
    write(
        folder / "images.txt",
        "# Image list with two lines of data per image:\n"
        "1 1 0 0 0 0 0 0 1 kitchen/a.jpg\n"
        "\n"  # an image without 2-D points: its second line is empty
        "2 1 0 0 0 0 0 0 2 kitchen/b.png\n"
        "10.5 20.5 -1 11.5 21.5 7\n"
        "3 1 0 0 0 0 0 0 3 street/c.jpg\n"
        "1 2 -1\n",
    )
    return folder


def test_colmap_text_models_give_cameras_in_our_pixel_convention(photos, tmp_path):
    images = collect_images([photos])
    resolver = CameraResolver(CameraOptions(colmap=colmap_text_model(tmp_path / "sparse")), images)
    by_key = {image.key: image for image in images}
    a = resolver.resolve(by_key["kitchen/a.jpg"], 480, 640)
    # COLMAP puts the top-left pixel's centre at (0.5, 0.5): its (320, 240) is our (319.5, 239.5).
    assert (a.fx, a.fy, a.cx, a.cy, a.source) == (520, 521, 319.5, 239.5, "colmap")
    b = resolver.resolve(by_key["kitchen/b.png"], 480, 640)  # SIMPLE_RADIAL at 1280×960, halved
    assert (b.fx, b.fy, b.cx, b.cy) == (500, 500, 319.5, 239.5)
    assert "distortion ignored" in b.detail and "rescaled from 1280×960" in b.detail
    with pytest.raises(InputError, match="OPENCV_FISHEYE is a fisheye model; undistort"):
        resolver.resolve(by_key["street/c.jpg"], 480, 640)


def test_colmap_binary_models_read_like_text_ones(photos, tmp_path):
    folder = tmp_path / "sparse-bin"
    folder.mkdir()
    cameras_bin = struct.pack("<Q", 1) + struct.pack("<iiQQ", 7, 0, 640, 480) + struct.pack("<3d", 480.0, 320.0, 240.0)
    images_bin = struct.pack("<Q", 1) + struct.pack("<I7d", 1, 1, 0, 0, 0, 0, 0, 0) + struct.pack("<I", 7)
    images_bin += b"c.jpg\0" + struct.pack("<Q", 2) + struct.pack("<ddq", 1.5, 2.5, -1) * 2
    (folder / "cameras.bin").write_bytes(cameras_bin)
    (folder / "images.bin").write_bytes(images_bin)
    c = cameras(photos, colmap=folder)["street/c.jpg"]
    assert (c.fx, c.fy, c.cx, c.cy, c.source) == (480, 480, 319.5, 239.5, "colmap")
    (folder / "images.bin").write_bytes(images_bin[:-10])
    with pytest.raises(InputError, match="images.bin: ends early"):
        cameras(photos, colmap=folder)
    with pytest.raises(InputError, match="no cameras.txt or cameras.bin"):
        cameras(photos, colmap=tmp_path)


def test_sidecars_then_flags_then_exif_then_default_in_that_order(photos, tmp_path):
    write(photos / "kitchen" / "a.camera.json", '{"fx": 450, "cx": 300, "cy": 200}')
    file = write(tmp_path / "cams.json", '{"b.png": {"fx": 800}}')
    colmap = colmap_text_model(tmp_path / "sparse")
    write(colmap / "images.txt", "1 1 0 0 0 0 0 0 1 kitchen/a.jpg\n\n2 1 0 0 0 0 0 0 1 kitchen/b.png\n\n")
    found = cameras(photos, intrinsics_file=file, colmap=colmap, fx=555.0)
    assert found["kitchen/b.png"].source == "intrinsics-file"  # the file before COLMAP
    assert found["kitchen/a.jpg"].source == "colmap"  # COLMAP before the sidecar
    assert found["street/c.jpg"].source == "options"  # the flags for the rest
    found = cameras(photos, exif=28.0)
    assert (found["kitchen/a.jpg"].source, found["kitchen/a.jpg"].fx) == ("sidecar", 450)
    assert found["kitchen/a.jpg"].detail.endswith("a.camera.json")
    assert found["street/c.jpg"].source == "exif"
    assert cameras(photos, sidecars=False)["kitchen/a.jpg"].source == "default"
    # Our own .intrinsics.json output reads back as a sidecar (extra fields are ignored).
    own = resolve_intrinsics(480, 640, CameraOptions(fx=610.0)).to_json()
    write(photos / "street" / "c.camera.json", json.dumps(own))
    c = cameras(photos)["street/c.jpg"]
    assert (c.fx, c.cx, c.source) == (610.0, 319.5, "sidecar")


def test_a_python_caller_gives_cameras_in_any_form():
    from tr2m_cli.io.intrinsics import camera_for_photo

    K = [[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]]
    from_k = camera_for_photo(K, 480, 640)
    assert (from_k.fx, from_k.cx, from_k.source) == (500.0, 319.5, "argument")
    assert camera_for_photo(np.array(K), 480, 640) == from_k
    half = camera_for_photo(from_k, 240, 320)  # an Intrinsics for 640×480, used on a half-size copy
    assert (half.fx, half.cx, half.cy, half.width) == (250.0, 159.5, 119.5, 320)
    assert camera_for_photo({"fx": 300}, 480, 640).cx == 319.5
    assert camera_for_photo(None, 480, 640, exif_focal_mm=28).source == "exif"
    assert camera_for_photo(CameraOptions(fov_deg=90), 480, 640).fx == pytest.approx(320.0)
    with pytest.raises(InputError, match="3×3 K matrix"):
        camera_for_photo("wide", 480, 640)
    with pytest.raises(InputError, match="lies outside the 640×480"):
        camera_for_photo([[500, 0, 900], [0, 500, 200], [0, 0, 1]], 480, 640)
