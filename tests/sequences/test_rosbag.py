"""ROS 1 and ROS 2 recordings as clips: topics, pixels, stamps and the camera's intrinsics."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the 'ros' extra is not installed")

from tr2m_cli.errors import InputError, MissingExtraError  # noqa: E402
from tr2m_cli.sequences.frames import FrameSelection, Position  # noqa: E402
from tr2m_cli.sequences.rosbag import (  # noqa: E402
    BagSource,
    camera_info_from_message,
    camera_info_topic_for,
    ros_image_to_rgb,
)
from tr2m_cli.sequences.sources import clip_frames, describe, is_clip_path, open_clip  # noqa: E402
from tr2m_cli.sequences.testing import moving_pattern, write_bag  # noqa: E402

FRAMES = moving_pattern(12, 48, 64)
START = 1_700_000_000_000_000_000
K = (50.0, 52.0, 31.5, 23.5)

BAGS = {
    "ros1-raw": ("rec.bag", dict(camera_info=K)),
    "ros1-compressed": ("rec.bag", dict(compressed=True, camera_info=K)),
    "ros2-sqlite-raw-bgr": ("rec2", dict(encoding="bgr8", camera_info=K)),
    "ros2-sqlite-compressed": ("rec2", dict(compressed=True)),
    "ros2-mcap-raw": ("rec3", dict(storage="mcap", camera_info=K)),
    "ros2-mcap-compressed-no-info": ("rec3", dict(storage="mcap", compressed=True)),
}


@pytest.fixture(scope="module", params=list(BAGS))
def bag(request, tmp_path_factory):
    name, options = BAGS[request.param]
    path = write_bag(tmp_path_factory.mktemp(request.param) / name, FRAMES, fps=10, start_ns=START, **options)
    return path, options


def test_every_image_comes_back_exact_with_its_header_stamp(bag):
    path, options = bag
    source = open_clip(path)
    assert source.kind == ("ros1" if path.suffix == ".bag" else "ros2")
    assert source.info.frame_count == 12
    assert source.info.topic.endswith("/compressed") == bool(options.get("compressed"))
    frames = list(clip_frames(source))
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp_ns for f in frames] == [START + i * 100_000_000 for i in range(12)]  # not the receive time
    assert [f.time_s for f in frames] == pytest.approx([i / 10 for i in range(12)])
    for frame in frames:
        assert np.array_equal(frame.rgb, FRAMES[frame.index])  # raw and PNG are lossless; bgr8 swapped back


def test_intrinsics_come_from_the_camera_info_beside_the_image_topic(bag):
    path, options = bag
    info = open_clip(path).info.camera_info
    if "camera_info" not in options:
        assert info is None and "no CameraInfo" in open_clip(path).info.camera_info_note
        return
    assert info.topic == "/camera/color/camera_info" and info.matrix == "K"
    intrinsics = info.for_size(48, 64)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == K
    assert intrinsics.source == "camera_info" and "/camera/color/camera_info" in intrinsics.detail
    scaled = info.for_size(96, 128)  # images published at twice the calibrated size
    assert (scaled.fx, scaled.fy, scaled.cx, scaled.cy) == (100.0, 104.0, 63.5, 47.5)
    with pytest.raises(InputError, match="64×48 image but each frame is 128×48, another aspect ratio"):
        info.for_size(48, 128)  # stretched, not resized: refused as a camera file's would be
    assert describe(open_clip(path))["camera_info"]["fx"] == 50.0


def test_selection_by_frames_and_by_seconds(bag):
    source = open_clip(bag[0])
    pick = lambda **kw: [f.index for f in clip_frames(source, FrameSelection(**kw))]  # noqa: E731
    assert pick(every=4) == [0, 4, 8]
    assert pick(start=Position.parse("0.3s"), end=Position.parse("0.6s")) == [3, 4, 5]
    assert pick(start=Position.parse("9"), max_frames=2) == [9, 10]


def test_rectified_topics_use_the_projection_matrix(tmp_path):
    path = write_bag(tmp_path / "rect.bag", FRAMES[:2], topic="/cam/image_rect", camera_info=K, rectified_p=(45.0, 45.0, 30.0, 22.0))
    info = open_clip(path).info.camera_info
    assert info.matrix == "P" and (info.fx, info.fy, info.cx, info.cy) == (45.0, 45.0, 30.0, 22.0)


def test_a_bag_with_several_colour_topics_asks_for_one_and_topic_chooses(tmp_path):
    path = write_bag(tmp_path / "two.bag", FRAMES[:3], extra_image_topics=["/right/image_raw", "/depth/image_raw"])
    with pytest.raises(InputError) as caught:
        open_clip(path)
    message = str(caught.value)
    assert "--topic" in message and "/right/image_raw" in message and "/camera/color/image_raw" in message
    from tr2m_cli.sequences.sources import ClipOptions

    source = open_clip(path, ClipOptions(topic="/right/image_raw"))
    assert source.info.topic == "/right/image_raw" and len(list(clip_frames(source))) == 3
    with pytest.raises(InputError, match="no topic /left"):
        open_clip(path, ClipOptions(topic="/left"))


def test_ros2_bags_open_as_folders_or_bare_storage_files(tmp_path):
    folder = write_bag(tmp_path / "rec", FRAMES[:3], storage="mcap")
    assert is_clip_path(folder)
    bare = next(folder.glob("*.mcap"))
    assert [f.index for f in clip_frames(open_clip(bare))] == [0, 1, 2]


def test_unreadable_bags_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"#ROSBAG V2.0\n" + bytes(100))
    with pytest.raises(InputError) as caught:
        BagSource(junk)
    assert str(junk) in str(caught.value) and "\n" not in str(caught.value)


def _image(encoding, array, big_endian=False):
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
    return SimpleNamespace(encoding=encoding, height=height, width=width, step=data.size // height, is_bigendian=big_endian, data=data)


def test_raw_encodings_become_rgb():
    rgb = FRAMES[0]
    assert np.array_equal(ros_image_to_rgb(_image("rgb8", rgb)), rgb)
    assert np.array_equal(ros_image_to_rgb(_image("bgra8", np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 9, np.uint8)]))), rgb)
    grey = ros_image_to_rgb(_image("mono8", rgb[..., 0]))
    assert grey.shape == (48, 64, 3) and np.array_equal(grey[..., 2], rgb[..., 0])
    sixteen = (rgb[..., 0].astype(np.uint16) << 8) | 0x7F
    assert np.array_equal(ros_image_to_rgb(_image("mono16", sixteen))[..., 0], rgb[..., 0])
    assert np.array_equal(ros_image_to_rgb(_image("mono16", sixteen.byteswap(), big_endian=True))[..., 0], rgb[..., 0])


def test_padded_rows_bayer_and_yuv_are_read():
    rgb = FRAMES[0]
    padded = np.zeros((48, 64 * 3 + 8), np.uint8)
    padded[:, : 64 * 3] = rgb.reshape(48, -1)
    message = SimpleNamespace(encoding="rgb8", height=48, width=64, step=64 * 3 + 8, is_bigendian=0, data=padded.reshape(-1))
    assert np.array_equal(ros_image_to_rgb(message), rgb)
    flat = np.zeros((8, 8, 3), np.uint8) + np.array([200, 100, 50], np.uint8)
    mosaic = np.zeros((8, 8), np.uint8)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 200, 100, 100, 50  # RGGB
    assert np.abs(ros_image_to_rgb(_image("bayer_rggb8", mosaic)).astype(int) - flat).max() <= 1
    # UYVY of a flat grey (Y 126 ≈ RGB 128 in video range, U = V = 128)
    uyvy = np.tile(np.array([128, 126, 128, 126], np.uint8), (4, 4)).reshape(4, 16)
    grey = ros_image_to_rgb(SimpleNamespace(encoding="uyvy", height=4, width=8, step=16, is_bigendian=0, data=uyvy.reshape(-1)))
    assert grey.shape == (4, 8, 3) and np.abs(grey.astype(int) - 128).max() <= 1


def test_depth_encodings_are_refused_as_not_photos():
    with pytest.raises(InputError, match="not a photo"):
        ros_image_to_rgb(_image("16UC1", np.zeros((4, 4), np.uint16)))
    with pytest.raises(InputError, match="not supported"):
        ros_image_to_rgb(_image("nv21", np.zeros((6, 4), np.uint8)))


def test_camera_info_beside_the_topic_even_for_compressed_images():
    topics = ["/cam/left/camera_info", "/cam/right/camera_info"]
    assert camera_info_topic_for("/cam/right/image_raw/compressed", topics) == "/cam/right/camera_info"
    assert camera_info_topic_for("/cam/left/image_rect_color", topics) == "/cam/left/camera_info"
    assert camera_info_topic_for("/other/image", topics) is None  # two candidates: no guessing
    assert camera_info_topic_for("/other/image", ["/only/camera_info"]) == "/only/camera_info"


def test_binning_and_region_of_interest_move_the_intrinsics():
    roi = SimpleNamespace(x_offset=100, y_offset=50, width=400, height=300)
    message = SimpleNamespace(k=[500, 0, 320, 0, 500, 240, 0, 0, 1], p=[0] * 12, d=[], width=640, height=480,
                              binning_x=2, binning_y=2, roi=roi, distortion_model="")  # fmt: skip
    info = camera_info_from_message(message, "/c/camera_info", rectified=False)
    assert (info.fx, info.fy, info.cx, info.cy, info.width, info.height) == (250, 250, 110, 95, 200, 150)
    uncalibrated = SimpleNamespace(**{**vars(message), "k": [0] * 9})
    assert camera_info_from_message(uncalibrated, "/c/camera_info", rectified=False) is None


def test_without_the_ros_extra_the_message_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rosbags", None)
    with pytest.raises(MissingExtraError, match=r"tr2m\[ros\]"):
        BagSource(tmp_path / "x.bag")
