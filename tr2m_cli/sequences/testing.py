"""Short clips and robot recordings written on the spot, for tests and benchmarks (no download).

    frames = moving_pattern(12, 48, 64)
    write_video("clip.mp4", frames, fps=10)
    write_bag("rec.bag", frames, camera_info=(50.0, 50.0, 31.5, 23.5))          # ROS 1
    write_bag("rec2", frames, compressed=True)                                   # ROS 2, sqlite
    write_bag("rec3", frames, storage="mcap")                                    # ROS 2, MCAP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".avi": "mjpeg", ".webm": "libvpx-vp9"}


def moving_pattern(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """`count` HxWx3 uint8 frames: a smooth background with a bright square sliding across, so
    frames differ from each other and a decoded frame can be matched to its original."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([cols / width * 200, rows / height * 200, 80 + 40 * rng.random() + 0 * rows], axis=-1)
    frames = []
    side = max(4, min(height, width) // 4)
    for i in range(count):
        frame = base.copy()
        x = int((i * 3) % max(1, width - side))
        frame[height // 3 : height // 3 + side, x : x + side] = (250, 250, 250)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float = 10, codec: str | None = None) -> Path:
    """Encode `frames` (HxWx3 uint8, even sides) as a video; the codec follows the suffix
    (H.264 in mp4/mov/mkv, Motion JPEG in avi, VP9 in webm) unless given."""
    import av

    path = Path(path)
    codec = codec or VIDEO_CODECS[path.suffix.lower()]
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=int(fps) if float(fps).is_integer() else fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "12"}
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def video_packets(path: str | Path) -> list[tuple[int, int]]:
    """(byte offset, size) of each video packet in the file, in decoding order."""
    import av

    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]


def damage_packet(path: str | Path, number: int) -> None:
    """Overwrite the payload of video packet `number` (keeping its first bytes), in place: the
    decoder then fails at that frame (for codecs without frame reordering)."""
    offset, size = video_packets(path)[number]
    data = bytearray(Path(path).read_bytes())
    data[offset + 4 : offset + size] = bytes(size - 4)
    Path(path).write_bytes(bytes(data))


def write_bag(
    path: str | Path,
    frames: Sequence[np.ndarray],
    *,
    topic: str = "/camera/color/image_raw",
    encoding: str = "rgb8",
    compressed: bool = False,
    camera_info: tuple[float, float, float, float] | None = None,
    camera_info_topic: str | None = None,
    rectified_p: tuple[float, float, float, float] | None = None,
    storage: str = "sqlite3",
    fps: float = 10.0,
    start_ns: int = 1_700_000_000_000_000_000,
    extra_image_topics: Sequence[str] = (),
) -> Path:
    """A recording of `frames` on `topic`: ROS 1 when `path` ends in `.bag`, else a ROS 2 bag
    folder (`storage` "sqlite3" → .db3 inside, "mcap" → .mcap). Raw images in `encoding` (rgb8,
    bgr8, mono8) or, with `compressed`, PNG CompressedImages on `topic + "/compressed"`.
    `camera_info` (fx, fy, cx, cy) adds a CameraInfo topic (default: beside the image topic),
    published once before the first image; `rectified_p` puts other values in its P matrix.
    Header stamps are `start_ns` + i/fps; the bag's receive times lag them by 5 ms."""
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    ros1 = path.suffix == ".bag"
    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    types = store.types
    namespace = topic.rsplit("/", 1)[0]
    info_topic = camera_info_topic or f"{namespace}/camera_info"
    image_topic = f"{topic}/compressed" if compressed else topic

    def header(ns: int, seq: int):
        stamp = types["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        if ros1:
            return types["std_msgs/msg/Header"](seq=seq, stamp=stamp, frame_id="camera")
        return types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera")

    def image_message(rgb: np.ndarray, ns: int, seq: int):
        if compressed:
            import io

            from PIL import Image

            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="PNG")
            data = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
            return types["sensor_msgs/msg/CompressedImage"](header=header(ns, seq), format="rgb8; png compressed rgb8", data=data)
        pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": rgb[..., :1]}[encoding]
        height, width, channels = pixels.shape
        return types["sensor_msgs/msg/Image"](
            header=header(ns, seq), height=height, width=width, encoding=encoding, is_bigendian=0,
            step=width * channels, data=np.ascontiguousarray(pixels).reshape(-1),
        )  # fmt: skip

    def info_message(ns: int):
        fx, fy, cx, cy = camera_info
        px, py, pcx, pcy = rectified_p or camera_info
        height, width = frames[0].shape[:2]
        fields = {
            "d": np.zeros(5), "k": np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], float), "r": np.eye(3).reshape(-1),
            "p": np.array([px, 0, pcx, 0, 0, py, pcy, 0, 0, 0, 1, 0], float),
        }  # fmt: skip
        if ros1:
            fields = {name.upper(): value for name, value in fields.items()}
        roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return types["sensor_msgs/msg/CameraInfo"](
            header=header(ns, 0), height=height, width=width, distortion_model="plumb_bob",
            binning_x=0, binning_y=0, roi=roi, **fields,
        )  # fmt: skip

    serialize = store.serialize_ros1 if ros1 else store.serialize_cdr
    image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    with _bag_writer(path, ros1, storage) as writer:
        image_connection = writer.add_connection(image_topic, image_type, typestore=store)
        extra = [writer.add_connection(name, image_type, typestore=store) for name in extra_image_topics]
        if camera_info is not None:
            info_connection = writer.add_connection(info_topic, "sensor_msgs/msg/CameraInfo", typestore=store)
            writer.write(info_connection, start_ns, serialize(info_message(start_ns), "sensor_msgs/msg/CameraInfo"))
        for i, rgb in enumerate(frames):
            stamp = start_ns + round(i * 1e9 / fps)
            message = image_message(rgb, stamp, i)
            writer.write(image_connection, stamp + 5_000_000, serialize(message, image_type))
            for connection in extra:
                writer.write(connection, stamp + 6_000_000, serialize(message, image_type))
    return path


def _bag_writer(path: Path, ros1: bool, storage: str):
    if ros1:
        from rosbags.rosbag1 import Writer

        return Writer(path)
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    return Writer(path, version=9, storage_plugin=plugin)
