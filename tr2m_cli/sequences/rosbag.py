"""Image topics of robot recordings as clips: ROS 1 `.bag` and ROS 2 bags (a folder with
`metadata.yaml`, or a bare `.db3` / `.mcap` file), read with the pure-Python `rosbags` library
(the `ros` extra; no ROS installation needed).

- **Topic**: `topic`, else the bag's only colour image topic (`sensor_msgs/Image` or
  `sensor_msgs/CompressedImage`; topics named `depth` and compressed depth are not colour); a bag
  with several is an error listing them.
- **Pixels**: raw images in rgb8, bgr8, rgba8, bgra8, mono8, 8UC1/3/4, their 16-bit forms (scaled
  to 8 bits), Bayer mosaics (demosaiced by averaging each 2×2 cell, then resized back up) and
  YUV 4:2:2 (uyvy, yuyv); compressed images (JPEG, PNG) decoded by Pillow. Depth encodings
  (16UC1, 32FC1) and compressed depth are refused: they are not photos.
- **Time**: each frame's `header.stamp` (the sensor's clock; the bag's receive time when the
  stamp is unset), in nanoseconds, and seconds since the clip's first frame.
- **Intrinsics**: from the `sensor_msgs/CameraInfo` topic beside the image topic
  (`/cam/color/image_raw[/compressed]` → `/cam/color/camera_info`), else the bag's only
  CameraInfo topic, else none (the caller's defaults apply). K for raw images, P for rectified ones
  (`image_rect*`), corrected for binning and region of interest, and scaled when the images were
  resized after calibration. Lens distortion is recorded, not applied: use a rectified topic for
  exact 3-D.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError, first_line
from ..extras import require
from ..io.intrinsics import CameraEntry, Intrinsics, fit_camera
from .frames import FrameReadError, RawFrame

IMAGE_TYPES = {"sensor_msgs/msg/Image": "raw", "sensor_msgs/msg/CompressedImage": "compressed"}
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
# image_transport's sub-topics: the camera's namespace is above them.
TRANSPORT_SUFFIXES = ("compressed", "compressedDepth", "theora", "ffmpeg", "h264", "zstd")


# -- pixels -----------------------------------------------------------------------------------


def _to_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    return (values >> 8).astype(np.uint8)  # 16-bit: keep the high byte (full range to 8 bits)


def _debayer(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """HxW Bayer mosaic → HxWx3 RGB: each 2×2 cell gives one colour (greens averaged), then the
    half-size image is resized back to the mosaic's size."""
    from PIL import Image

    height, width = mosaic.shape
    cells = {}
    for position, (dy, dx) in zip(pattern, ((0, 0), (0, 1), (1, 0), (1, 1))):
        cells.setdefault(position, []).append(mosaic[dy : height - height % 2 : 2, dx : width - width % 2 : 2].astype(np.float32))
    half = np.stack([np.mean(cells[c], axis=0) for c in "rgb"], axis=-1)
    half = np.clip(half + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(half).resize((width, height), Image.BILINEAR))


def _yuv422_to_rgb(packed: np.ndarray, order: str) -> np.ndarray:
    """Packed 4:2:2 (two pixels in four bytes; `order` "uyvy" or "yuyv") → RGB, BT.601 video range."""
    quads = packed.reshape(packed.shape[0], -1, 4).astype(np.float32)
    if order == "uyvy":
        u, y0, v, y1 = (quads[..., i] for i in range(4))
    else:
        y0, u, y1, v = (quads[..., i] for i in range(4))
    y = np.stack([y0, y1], axis=-1).reshape(packed.shape[0], -1)
    u, v = np.repeat(u, 2, axis=1) - 128.0, np.repeat(v, 2, axis=1) - 128.0
    c = (y - 16.0) * 1.164
    rgb = np.stack([c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


_CHANNELS = {
    "rgb8": ("rgb", 3, np.uint8), "bgr8": ("bgr", 3, np.uint8), "rgba8": ("rgb", 4, np.uint8),
    "bgra8": ("bgr", 4, np.uint8), "mono8": ("mono", 1, np.uint8), "8uc1": ("mono", 1, np.uint8),
    "8uc3": ("bgr", 3, np.uint8), "8uc4": ("bgr", 4, np.uint8), "rgb16": ("rgb", 3, np.uint16),
    "bgr16": ("bgr", 3, np.uint16), "rgba16": ("rgb", 4, np.uint16), "bgra16": ("bgr", 4, np.uint16),
    "mono16": ("mono", 1, np.uint16),
}  # fmt: skip
_NOT_COLOUR = {"16uc1", "32fc1", "16sc1", "32sc1", "64fc1"}


def ros_image_to_rgb(msg: Any) -> np.ndarray:
    """A `sensor_msgs/Image` → HxWx3 uint8 RGB (InputError for encodings that are not photos)."""
    encoding = str(msg.encoding).strip()
    key = encoding.lower()
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if height < 1 or width < 1:
        raise InputError(f"empty image ({width}×{height})")
    if data.size < height * step:
        raise InputError(f"image data too short: {data.size} bytes for {height} rows of {step}")
    rows = data[: height * step].reshape(height, step)
    if key in _NOT_COLOUR:
        raise InputError(f"encoding {encoding} holds depth or measurements, not a photo: choose a colour topic (--topic)")
    if key.startswith("bayer_"):
        pattern, bits = key[len("bayer_") : len("bayer_") + 4], key[len("bayer_") + 4 :]
        dtype = np.uint16 if bits == "16" else np.uint8
        mosaic = _rows_as(rows, width, 1, dtype, msg.is_bigendian)[..., 0]
        return _debayer(_to_uint8(mosaic), pattern)
    if key in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv"):
        return _yuv422_to_rgb(rows[:, : width * 2], "uyvy" if key in ("yuv422", "uyvy") else "yuyv")
    if key not in _CHANNELS:
        raise InputError(f"image encoding '{encoding}' is not supported (use rgb8, bgr8, mono8, bayer_*, yuv422 or compressed)")
    order, channels, dtype = _CHANNELS[key]
    pixels = _to_uint8(_rows_as(rows, width, channels, dtype, msg.is_bigendian))
    if order == "mono":
        return np.repeat(pixels, 3, axis=2)
    pixels = pixels[..., :3]
    return np.ascontiguousarray(pixels[..., ::-1] if order == "bgr" else pixels)


def _rows_as(rows: np.ndarray, width: int, channels: int, dtype, big_endian: Any) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    used = rows[:, : width * channels * size]
    if used.shape[1] < width * channels * size:
        raise InputError(f"row step {rows.shape[1]} bytes is shorter than {width} pixels of {channels}×{size} bytes")
    values = np.ascontiguousarray(used).view(np.dtype(dtype).newbyteorder(">" if big_endian else "<"))
    return values.reshape(rows.shape[0], width, channels).astype(dtype)


def compressed_image_to_rgb(msg: Any) -> np.ndarray:
    """A `sensor_msgs/CompressedImage` (JPEG, PNG, …) → HxWx3 uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    from ..io.images import pil_to_rgb

    if "compresseddepth" in str(msg.format).lower():
        raise InputError("compressed depth images are not photos: choose a colour topic (--topic)")
    try:
        with Image.open(io.BytesIO(np.asarray(msg.data, dtype=np.uint8).tobytes())) as image:
            image.load()
            return pil_to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"compressed image ({msg.format or 'unknown format'}) cannot be decoded ({first_line(exc)})") from None


# -- intrinsics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraInfo:
    """A calibration from a CameraInfo message, for images of `width` × `height`."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    topic: str
    matrix: str  # "K" or "P"
    distortion_model: str = ""
    distortion: tuple[float, ...] = ()

    def for_size(self, height: int, width: int) -> Intrinsics:
        """Intrinsics for frames of `height` × `width`, rescaled if the images were resized after
        calibration, refused if their aspect ratio differs — as a camera file's are (fit_camera)."""
        entry = CameraEntry(self.fx, self.fy, self.cx, self.cy, self.width or None, self.height or None)
        return fit_camera(entry, height, width, "camera_info", f"{self.topic} ({self.matrix})", "each frame")

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "matrix": self.matrix,
            "fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
            "width": self.width, "height": self.height,
            "distortion_model": self.distortion_model,
            "distortion": list(self.distortion),
        }  # fmt: skip


def _field(msg: Any, name: str):
    """ROS 2 spells CameraInfo's matrices in lower case (k, p, d), ROS 1 in upper case."""
    value = getattr(msg, name.lower(), None)
    return getattr(msg, name.upper(), None) if value is None else value


def camera_info_from_message(msg: Any, topic: str, rectified: bool) -> CameraInfo | None:
    """None when the message holds no calibration (an uncalibrated driver publishes zeros)."""
    k = np.asarray(_field(msg, "k"), dtype=np.float64).reshape(-1)
    p = np.asarray(_field(msg, "p"), dtype=np.float64).reshape(-1)
    if rectified and p.size == 12 and p[0] > 0 and p[5] > 0:
        fx, fy, cx, cy, matrix = p[0], p[5], p[2], p[6], "P"
    elif k.size == 9 and k[0] > 0 and k[4] > 0:
        fx, fy, cx, cy, matrix = k[0], k[4], k[2], k[5], "K"
    else:
        return None
    width, height = int(msg.width), int(msg.height)
    binning_x, binning_y = max(1, int(msg.binning_x or 0)), max(1, int(msg.binning_y or 0))
    roi = getattr(msg, "roi", None)
    if roi is not None and int(roi.width) > 0 and int(roi.height) > 0:
        # REP 104: the image is the region of interest of the calibrated sensor, then binned.
        cx, cy = cx - int(roi.x_offset), cy - int(roi.y_offset)
        width, height = int(roi.width), int(roi.height)
    return CameraInfo(
        fx=float(fx / binning_x), fy=float(fy / binning_y), cx=float(cx / binning_x), cy=float(cy / binning_y),
        width=width // binning_x, height=height // binning_y, topic=topic, matrix=matrix,
        distortion_model=str(getattr(msg, "distortion_model", "") or ""),
        distortion=tuple(float(v) for v in np.asarray(_field(msg, "d"), dtype=np.float64).reshape(-1)),
    )  # fmt: skip


def camera_info_topic_for(image_topic: str, candidates: list[str]) -> str | None:
    """The CameraInfo topic that belongs to `image_topic`: the one in its camera's namespace,
    else the bag's only one."""
    parts = image_topic.rstrip("/").split("/")
    if parts and parts[-1] in TRANSPORT_SUFFIXES:
        parts = parts[:-1]
    sibling = "/".join(parts[:-1]) + "/camera_info"
    if sibling in candidates:
        return sibling
    return candidates[0] if len(candidates) == 1 else None


# -- the bag ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagInfo:
    topic: str
    message_type: str  # "raw" or "compressed"
    frame_count: int
    fps: float | None  # from the bag's index (messages over the recording's span); refined per clip
    duration_s: float | None
    camera_info: CameraInfo | None
    camera_info_note: str | None  # why there is none, when there is none
    image_topics: tuple[str, ...] = field(default=())
    ros_version: int = 2


def _typestore(ros_version: int):
    from rosbags.typesys import Stores, get_typestore

    # Bags normally carry their message definitions; older ROS 2 bags (sqlite, before Iron) do not.
    return get_typestore(Stores.ROS1_NOETIC if ros_version == 1 else Stores.ROS2_HUMBLE)


def _stamp_ns(msg: Any) -> int:
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return 0
    return int(stamp.sec) * 1_000_000_000 + int(getattr(stamp, "nanosec", getattr(stamp, "nsec", 0)))


class BagSource:
    """One image topic of a ROS bag as a clip."""

    def __init__(self, path: str | Path, topic: str | None = None, camera_info_topic: str | None = None) -> None:
        require("rosbags", "ros", "reading ROS bags")
        self.path = Path(path)
        self.ros_version = 1 if self.path.suffix.lower() == ".bag" else 2
        self.kind = f"ros{self.ros_version}"
        with self._open() as reader:
            self.info = self._describe(reader, topic, camera_info_topic)

    @property
    def fps(self) -> float | None:
        return self.info.fps

    def _open(self):
        from rosbags.highlevel import AnyReader, AnyReaderError

        try:
            reader = AnyReader([self.path], default_typestore=_typestore(self.ros_version))
            reader.open()
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file") from None
        except (AnyReaderError, OSError, ValueError, KeyError, AssertionError) as exc:
            message = first_line(exc)
            hint = "; a recording that was cut short: run `rosbag reindex` on it" if "index" in message.lower() else ""
            raise FrameReadError(f"{self.path}: not a readable ROS bag ({message}{hint})", 0) from None
        return contextlib.closing(reader)

    def _describe(self, reader, topic: str | None, camera_info_topic: str | None) -> BagInfo:
        topics = reader.topics
        image_topics = sorted(name for name, info in topics.items() if info.msgtype in IMAGE_TYPES)
        if topic is None:
            colour = [t for t in image_topics if "depth" not in t.lower()]
            if len(colour) != 1:
                listed = ", ".join(image_topics) or "none"
                raise InputError(
                    f"{self.path}: {'no' if not colour else len(colour)} colour image topics "
                    f"(image topics: {listed}): choose one with --topic"
                )
            topic = colour[0]
        elif topic not in topics:
            raise InputError(f"{self.path}: no topic {topic} (image topics: {', '.join(image_topics) or 'none'})")
        elif topics[topic].msgtype not in IMAGE_TYPES:
            raise InputError(f"{self.path}: {topic} holds {topics[topic].msgtype}, not images")
        count = int(topics[topic].msgcount)
        if count == 0:
            raise InputError(f"{self.path}: topic {topic} has no messages")
        span = reader.duration / 1e9 if reader.message_count > 1 else None
        fps = (count - 1) / span if span and count > 1 else None
        info_topics = sorted(name for name, info in topics.items() if info.msgtype == CAMERA_INFO_TYPE)
        if camera_info_topic is not None and camera_info_topic not in info_topics:
            raise InputError(f"{self.path}: no CameraInfo topic {camera_info_topic} (CameraInfo topics: {', '.join(info_topics) or 'none'})")
        chosen = camera_info_topic or camera_info_topic_for(topic, info_topics)
        camera_info, note = None, None
        if chosen is None:
            note = "no CameraInfo topic in the bag" if not info_topics else f"no CameraInfo beside {topic} (found {', '.join(info_topics)}; pick one with --camera-info)"
        else:
            rectified = re.search(r"(?:^|[/_])rect(?:$|[/_])", topic) is not None  # image_rect, image_rect_color
            connections = [c for c in reader.connections if c.topic == chosen]
            for connection, _, rawdata in reader.messages(connections=connections):
                camera_info = camera_info_from_message(reader.deserialize(rawdata, connection.msgtype), chosen, rectified)
                break
            if camera_info is None:
                note = f"{chosen} holds no calibration (K is zero)"
        return BagInfo(
            topic=topic, message_type=IMAGE_TYPES[topics[topic].msgtype], frame_count=count, fps=fps,
            duration_s=span, camera_info=camera_info, camera_info_note=note,
            image_topics=tuple(image_topics), ros_version=self.ros_version,
        )  # fmt: skip

    def raw_frames(self) -> Iterator[RawFrame]:
        """The topic's images in recording order, each with its stamp (ns) and time (s)."""
        convert = ros_image_to_rgb if self.info.message_type == "raw" else compressed_image_to_rgb
        first_ns: int | None = None
        index = 0
        with self._open() as reader:
            connections = [c for c in reader.connections if c.topic == self.info.topic]
            messages = reader.messages(connections=connections)
            while True:
                try:
                    item = next(messages, None)
                    if item is None:
                        return
                    connection, logged_ns, rawdata = item
                    msg = reader.deserialize(rawdata, connection.msgtype)
                except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds on damaged data
                    raise FrameReadError(f"{self.path}: frame {index} of {self.info.topic} cannot be read ({first_line(exc)})", index) from None
                stamp = _stamp_ns(msg) or int(logged_ns)
                first_ns = stamp if first_ns is None else first_ns

                def load(msg=msg, index=index):
                    try:
                        return convert(msg)
                    except InputError as exc:
                        raise InputError(f"{self.info.topic} frame {index}: {exc}") from None

                yield RawFrame(index, (stamp - first_ns) / 1e9, load, timestamp_ns=stamp)
                index += 1

