"""Tiny copies of the nine datasets in their native layouts and encodings, for tests and for trying
`tr2m eval` / `tr2m train` without downloading anything.

    from tr2m_cli.data.fixtures import write_tiny_data_root
    tiny = write_tiny_data_root("/tmp/tiny-data")      # /tmp/tiny-data/<conventional folder>/...
    # test splits of the nine sets and training splits of nyu kitti void c3vd; then:
    #   tr2m eval --datasets all --zero-shot all --data-root /tmp/tiny-data \
    #             --captions /tmp/tiny-data/captions --model tiny-model
    #   tr2m train --datasets nyu kitti void c3vd --data-root /tmp/tiny-data \
    #             --captions /tmp/tiny-data/captions --out runs/try --model tiny-model --batch-size 2

Each writer picks raw stored values (uint16 millimetres, the C3VD TIFF scale, HyperSim ray
distances, …) and records the metres they stand for, computed here from the datasets' published
definitions, so a loader can be checked against them. Photos are random; depth is a smooth ramp
with holes where the dataset has invalid pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import DATASET_NAMES, canonical_name, conventional_folder

NATIVE_SIZES = {
    "nyu": (480, 640), "kitti": (375, 1242), "void": (480, 640), "c3vd": (1080, 1350),
    "sunrgbd": (530, 730), "ibims": (480, 640), "hypersim": (768, 1024), "diode": (768, 1024),
    "simcol": (475, 475),
}
RELEASE_CAPTION_FOLDERS = {
    "nyu": "nyu", "kitti": "kitti", "void": "void", "sunrgbd": "sunrgbd", "ibims": "ibims1",
    "hypersim": "hypersim", "diode": "diode_outdoor",
}


@dataclass
class TinyDataset:
    """What a writer put on disk: the root and, per sample key, the depth in metres it encodes."""

    name: str
    root: Path
    split: str = "test"
    keys: list[str] = field(default_factory=list)
    depth: dict[str, np.ndarray] = field(default_factory=dict)  # metres, 0 where invalid
    valid: dict[str, np.ndarray] = field(default_factory=dict)
    captions: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, depth: np.ndarray, valid: np.ndarray, captions: list[str] | None = None) -> None:
        self.keys.append(key)
        self.depth[key] = np.where(valid, depth, 0).astype(np.float32)
        self.valid[key] = valid
        if captions:
            self.captions[key] = captions


def _ramp(shape: tuple[int, int], low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth depth field in [low, high]: a tilted plane plus a bump, randomly oriented."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    a, b = rng.uniform(-1, 1, size=2)
    field_ = a * y / max(height - 1, 1) + b * x / max(width - 1, 1)
    field_ += 0.5 * np.exp(-(((y - height / 2) / height) ** 2 + ((x - width / 2) / width) ** 2) * 8)
    field_ = (field_ - field_.min()) / max(np.ptp(field_), 1e-9)
    return low + field_ * (high - low)


def _holes(shape: tuple[int, int], rng: np.random.Generator, share: float = 0.1) -> np.ndarray:
    return rng.random(shape) >= share  # True = measured


def _photo(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _save_image(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(array).save(path)


def _save_uint16_png(path: Path, raw: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, raw.astype(np.uint16))


def _captions_for(key: str, index: int) -> list[str]:
    # Three lines (not the release's 15): loaders must not assume a count.
    return [f"A tiny test scene number {index}.", f"An image with {index + 1} chairs.", f"Frame {key}."]


# -- one writer per dataset --------------------------------------------------------------------


def _write_nyu(root: Path, frames: int, shape, rng, split: str = "test") -> TinyDataset:
    from .nyu import TRAIN_VALID_COLS, TRAIN_VALID_ROWS

    tiny = TinyDataset("nyu", root, split)
    frames_folder = root / ("official_splits/test" if split == "test" else "sync")
    lines = []
    for i in range(frames):
        scene = "bathroom" if i % 2 == 0 else "kitchen"
        rel_rgb, rel_depth = f"{scene}/rgb_{i + 1:05d}.jpg", f"{scene}/sync_depth_{i + 1:05d}.png"
        valid = _holes(shape, rng)
        raw = np.where(valid, np.round(_ramp(shape, 0.7, 9.5, rng) * 1000), 0).astype(np.uint16)
        _save_image(frames_folder / rel_rgb, _photo(shape, rng))
        _save_uint16_png(frames_folder / rel_depth, raw)
        lines.append(f"{rel_rgb} {rel_depth} 518.8579")
        key = rel_rgb[:-4]
        usable = raw > 0
        if split == "train":  # the loader drops the Kinect registration border of training frames
            border = np.zeros_like(usable)
            border[slice(*TRAIN_VALID_ROWS), slice(*TRAIN_VALID_COLS)] = True
            usable &= border
        tiny.add(key, raw / 1000.0, usable, _captions_for(key, i))
    (root / f"nyudepthv2_{split}_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return tiny


def _write_kitti(root: Path, frames: int, shape, rng, split: str = "test") -> TinyDataset:
    tiny = TinyDataset("kitti", root, split)
    lines = []
    drive = "2011_09_26_drive_0002_sync" if split == "test" else "2011_09_26_drive_0001_sync"
    gt_folder = "val" if split == "test" else "train"
    for i in range(frames):
        frame = f"{5 + 3 * i:010d}"
        rel_rgb = f"2011_09_26/{drive}/image_02/data/{frame}.png"
        rel_depth = f"{drive}/proj_depth/groundtruth/image_02/{frame}.png"
        valid = _holes(shape, rng, share=0.6)
        valid[: shape[0] // 3] = False  # no lidar returns in the sky
        raw = np.where(valid, np.round(_ramp(shape, 4.0, 85.0, rng) * 256), 0).astype(np.uint16)
        _save_image(root / rel_rgb, _photo(shape, rng))
        _save_uint16_png(root / "data_depth_annotated" / gt_folder / rel_depth, raw)
        lines.append(f"{rel_rgb} {rel_depth} 721.5377")
        key = rel_rgb[:-4]
        tiny.add(key, raw / 256.0, raw > 0, _captions_for(key, i))
    lines.append(f"2011_09_26/{drive}/image_02/data/0000000099.png None 721.5377")  # no annotated depth
    (root / f"eigen_{split}_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return tiny


def _write_void(root: Path, frames: int, shape, rng, split: str = "test") -> TinyDataset:
    tiny = TinyDataset("void", root, split)
    images, depths, intrinsics = [], [], []
    for i in range(frames):
        scene = f"scene{i % 2}" if split == "test" else f"train_scene{i % 2}"
        rel_image = f"void_1500/data/{scene}/image/{1552097915.0 + i:.4f}.png"
        rel_depth = rel_image.replace("/image/", "/ground_truth/")
        valid = _holes(shape, rng, share=0.3)
        raw = np.where(valid, np.round(_ramp(shape, 0.15, 5.5, rng) * 256), 0).astype(np.uint16)
        _save_image(root / rel_image, _photo(shape, rng))
        _save_uint16_png(root / rel_depth, raw)
        k_file = root / f"void_1500/data/{scene}/K.txt"
        k_file.write_text("514.638 0 315.267\n0 518.858 247.358\n0 0 1\n")
        images.append(rel_image)
        depths.append(rel_depth)
        intrinsics.append(f"void_1500/data/{scene}/K.txt")
        key = rel_image[:-4]
        tiny.add(key, raw / 256.0, raw > 0, _captions_for(key, i))
    for split_name, paths in (("image", images), ("ground_truth", depths), ("intrinsics", intrinsics)):
        (root / f"void_1500/{split}_{split_name}.txt").write_text("\n".join(paths) + "\n")
    return tiny


def _write_c3vd(root: Path, frames: int, shape, rng, split: str = "test") -> TinyDataset:
    import tifffile

    from .c3vd import TEST_SEQUENCES, TRAIN_SEQUENCES

    tiny = TinyDataset("c3vd", root, split)
    sequences = TEST_SEQUENCES if split == "test" else TRAIN_SEQUENCES
    for i in range(frames):
        sequence = sequences[i % 2]
        frame = f"{i // 2:04d}"
        valid = _holes(shape, rng, share=0.05)
        raw = np.where(valid, np.round(_ramp(shape, 0.002, 0.09, rng) / 0.1 * 65535), 0).astype(np.uint16)
        _save_image(root / sequence / f"{frame}_color.png", _photo(shape, rng))
        tifffile.imwrite(root / sequence / f"{frame}_depth.tiff", raw)
        tiny.add(f"{sequence}/{frame}_color", raw.astype(np.float64) / 65535 * 0.1, raw > 0)
    if split == "test":
        (root / TRAIN_SEQUENCES[0]).mkdir(exist_ok=True)  # a training sequence, which the test split ignores
    return tiny


def _write_sunrgbd(root: Path, frames: int, shape, rng) -> TinyDataset:
    tiny = TinyDataset("sunrgbd", root)
    images = []
    for i in range(frames):
        scene = f"SUNRGBD/kv1/NYUdata/NYU{i + 1:04d}"
        rel_image = f"{scene}/image/NYU{i + 1:04d}.jpg"
        valid = _holes(shape, rng, share=0.2)
        millimetres = np.where(valid, np.round(_ramp(shape, 0.8, 9.0, rng) * 1000), 0).astype(np.uint32)
        stored = ((millimetres << 3) | (millimetres >> 13)) & 0xFFFF  # SUN RGB-D's rotated bits
        _save_image(root / rel_image, _photo(shape, rng))
        _save_uint16_png(root / f"{scene}/depth/NYU{i + 1:04d}.png", stored)
        (root / scene / "intrinsics.txt").write_text("518.857901 0 284.582449\n0 519.469611 208.736166\n0 0 1\n")
        images.append(rel_image)
        tiny.add(rel_image[:-4], millimetres / 1000.0, millimetres > 0)
    (root / "sunrgbd_testing_images.txt").write_text("\n".join(images) + "\n")
    return tiny


def _write_ibims(root: Path, frames: int, shape, rng) -> TinyDataset:
    tiny = TinyDataset("ibims", root)
    names = []
    for i in range(frames):
        name = f"corridor_{i + 1:02d}"
        raw = np.round(_ramp(shape, 0.5, 12.0, rng) / 50.0 * 65535).astype(np.uint16)
        invalid, transparent = _holes(shape, rng, 0.1), _holes(shape, rng, 0.05)
        _save_image(root / "rgb" / f"{name}.png", _photo(shape, rng))
        _save_uint16_png(root / "depth" / f"{name}.png", raw)
        _save_image(root / "mask_invalid" / f"{name}.png", invalid.astype(np.uint8))
        _save_image(root / "mask_transp" / f"{name}.png", transparent.astype(np.uint8) * 255)
        names.append(name)
        tiny.add(f"rgb/{name}", raw.astype(np.float64) * 50.0 / 65535, invalid & transparent & (raw > 0))
    (root / "imagelist.txt").write_text("\n".join(names) + "\n")
    return tiny


def _write_hypersim(root: Path, frames: int, shape, rng) -> TinyDataset:
    from ..extras import import_h5py

    h5py = import_h5py("writing tiny HyperSim files")

    tiny = TinyDataset("hypersim", root)
    height, width = shape
    focal = 886.81
    u = np.arange(width) - (width - 1) / 2.0
    v = np.arange(height) - (height - 1) / 2.0
    ray = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2 + focal**2) / focal  # distance / planar depth
    for i in range(frames):
        scene, camera = f"ai_001_00{1 + i % 2}", "cam_00"
        images = root / scene / "images"
        frame = f"frame.{i // 2:04d}"
        planar = _ramp(shape, 1.0, 12.0, rng)
        distance = (planar * ray).astype(np.float16)
        valid = _holes(shape, rng, 0.02)
        distance[~valid] = np.nan
        _save_image(images / f"scene_{camera}_final_preview/{frame}.tonemap.jpg", _photo(shape, rng))
        (images / f"scene_{camera}_geometry_hdf5").mkdir(parents=True, exist_ok=True)
        with h5py.File(images / f"scene_{camera}_geometry_hdf5/{frame}.depth_meters.hdf5", "w") as handle:
            handle.create_dataset("dataset", data=distance)
        key = f"{scene}/images/scene_{camera}_final_preview/{frame}.tonemap"
        tiny.add(key, distance.astype(np.float64) / ray, valid)
    return tiny


def _write_diode(root: Path, frames: int, shape, rng) -> TinyDataset:
    tiny = TinyDataset("diode", root)
    for i in range(frames):
        scene, scan = f"scene_{22 + i % 2:05d}", f"scan_{193 + i:05d}"
        name = f"{22 + i % 2:05d}_{193 + i:05d}_outdoor_000_000"
        folder = root / "val/outdoor" / scene / scan
        depth = _ramp(shape, 2.0, 75.0, rng).astype(np.float32)
        mask = _holes(shape, rng, 0.3)
        depth[~mask & (rng.random(shape) < 0.5)] = 0  # some masked pixels hold zeros, others junk
        _save_image(folder / f"{name}.png", _photo(shape, rng))
        np.save(folder / f"{name}_depth.npy", depth[..., None])
        np.save(folder / f"{name}_depth_mask.npy", mask.astype(np.float32))
        tiny.add(f"{scene}/{scan}/{name}", depth, mask & (depth > 0))
    return tiny


def _write_simcol(root: Path, frames: int, shape, rng) -> TinyDataset:
    tiny = TinyDataset("simcol", root)
    sequences = ["SyntheticColon_I/Frames_S5", "SyntheticColon_III/Frames_O1"]
    for i in range(frames):
        sequence = sequences[i % 2]
        frame = f"{i // 2:04d}"
        level = np.round(_ramp(shape, 0.006, 0.13, rng) / 0.2 * 255).astype(np.uint16)  # 8-bit depth
        raw = level * 256
        rgba = np.concatenate([_photo(shape, rng), np.full((*shape, 1), 255, np.uint8)], axis=2)
        _save_image(root / sequence / f"FrameBuffer_{frame}.png", rgba)
        _save_uint16_png(root / sequence / f"Depth_{frame}.png", raw)
        tiny.add(f"{sequence}/FrameBuffer_{frame}", level / 255.0 * 0.2, raw > 0)
    (root / "misc").mkdir(parents=True, exist_ok=True)
    (root / "misc/test_file.txt").write_text("".join(f"{s}/\n" for s in sequences[: max(1, min(frames, 2))]))
    return tiny


WRITERS: dict[str, Callable[..., TinyDataset]] = {
    "nyu": _write_nyu, "kitti": _write_kitti, "void": _write_void, "c3vd": _write_c3vd,
    "sunrgbd": _write_sunrgbd, "ibims": _write_ibims, "hypersim": _write_hypersim,
    "diode": _write_diode, "simcol": _write_simcol,
}


TRAINABLE = ("nyu", "kitti", "void", "c3vd")


def write_tiny_dataset(
    name: str, root: str | Path, *, frames: int = 2, seed: int = 0, size: tuple[int, int] | None = None,
    split: str = "test",
) -> TinyDataset:
    """Write `frames` samples of dataset `name`'s `split` under `root` in its native layout and
    encoding (training splits exist for the four in-domain sets)."""
    name = canonical_name(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = tuple(size or NATIVE_SIZES[name])
    if split == "test":
        return WRITERS[name](root, frames, shape, rng)
    if split != "train" or name not in TRAINABLE:
        raise ValueError(f"no tiny '{split}' split for {name} (training splits: {', '.join(TRAINABLE)})")
    return WRITERS[name](root, frames, shape, rng, split="train")


def write_caption_release(folder: str | Path, datasets: dict[str, TinyDataset]) -> Path:
    """Captions laid out as the paper's release (`text_all/`): per-image trees for the in-domain
    sets (`<set>/test/<key>.txt`), one line per image for the zero-shot ones (`<set>/<set>_all.txt`,
    in each dataset's documented order). C3VD and SimCol get theirs from sequence names."""
    folder = Path(folder)
    for name, tiny in datasets.items():
        release = RELEASE_CAPTION_FOLDERS.get(name)
        if release is None:
            continue
        captions = tiny.captions or {key: _captions_for(key, i) for i, key in enumerate(tiny.keys)}
        tiny.captions = captions
        if name in ("nyu", "kitti", "void"):
            for key, lines in captions.items():
                path = folder / release / tiny.split / f"{key}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path = folder / release / f"{release}_all.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(captions[key][0] + "\n" for key in tiny.keys), encoding="utf-8")
    return folder


def write_caption_mapping(path: str | Path, tiny: TinyDataset) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    captions = tiny.captions or {key: _captions_for(key, i) for i, key in enumerate(tiny.keys)}
    path.write_text(json.dumps(captions, indent=1), encoding="utf-8")
    return path


def write_tiny_data_root(
    folder: str | Path, names: tuple[str, ...] | list[str] = DATASET_NAMES, *, frames: int = 2, seed: int = 0,
    sizes: dict[str, tuple[int, int]] | None = None, train_frames: int = 2,
) -> dict[str, TinyDataset]:
    """Several tiny datasets under `folder/<conventional folder>/`, with the paper-style caption
    release in `folder/captions/`: the test split of each (what `tr2m eval` reads) and, with
    `train_frames` > 0, the training split of the in-domain ones among them (what `tr2m train`
    reads; `write_tiny_training_data`). Returns the test splits by name."""
    folder = Path(folder)
    sizes = sizes or {}
    written = {
        canonical_name(name): write_tiny_dataset(
            name, folder / conventional_folder(name), frames=frames, seed=seed + i, size=sizes.get(canonical_name(name))
        )
        for i, name in enumerate(names)
    }
    write_caption_release(folder / "captions", written)
    trainable = [name for name in written if name in TRAINABLE]
    if train_frames and trainable:
        write_tiny_training_data(folder, trainable, frames=train_frames, seed=seed + 100, sizes=sizes)
    return written


def write_tiny_training_data(
    folder: str | Path, names: tuple[str, ...] | list[str] = TRAINABLE, *, frames: int = 4, seed: int = 100,
    sizes: dict[str, tuple[int, int]] | None = None,
) -> dict[str, TinyDataset]:
    """Training splits of the in-domain sets under `folder/<conventional folder>/` (beside any test
    splits `write_tiny_data_root` wrote there), with their caption trees in `folder/captions/`, so
    `tr2m train --datasets nyu kitti void c3vd --data-root folder --captions folder/captions` runs."""
    folder = Path(folder)
    sizes = sizes or {}
    written = {
        canonical_name(name): write_tiny_dataset(
            name, folder / conventional_folder(name), frames=frames, seed=seed + i,
            size=sizes.get(canonical_name(name)), split="train",
        )
        for i, name in enumerate(names)
    }
    write_caption_release(folder / "captions", written)
    return written
