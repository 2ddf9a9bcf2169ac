"""Datasets: one module per dataset (layout, split lists, depth decoding, range, crop), shared by
`tr2m eval` and `tr2m train`. Every dataset yields `DepthSample`s in metres.

    from tr2m_cli.data import open_dataset
    nyu = open_dataset("nyu", "test", data_root="/data")      # reads /data/nyu
    sample = nyu[0]          # DepthSample: image uint8 HxWx3, depth float32 metres, valid, captions
    nyu.protocol             # EvalProtocol: range, crop, network input size

Roots: `root=` > `data_root=/<conventional folder>` > $TR2M_<NAME>_ROOT > $TR2M_DATA_ROOT/<folder>.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from ..errors import DatasetError
from .base import DepthSample
from .dataset import DepthDataset
from .protocol import PRESETS, EvalProtocol
from .roots import DatasetMissing, resolve_root

IN_DOMAIN = ("nyu", "kitti", "void", "c3vd")
ZERO_SHOT = ("sunrgbd", "ibims", "hypersim", "diode", "simcol")
DATASET_NAMES = IN_DOMAIN + ZERO_SHOT

# name → (module, class, conventional sub-folders under a data root; the first is documented)
_REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "nyu": ("nyu", "NYUv2", ("nyu", "nyu_depth_v2", "NYUv2")),
    "kitti": ("kitti", "KITTI", ("kitti", "KITTI")),
    "void": ("void", "VOID", ("void", "void_release", "VOID")),
    "c3vd": ("c3vd", "C3VD", ("c3vd", "C3VD")),
    "sunrgbd": ("sunrgbd", "SUNRGBD", ("sunrgbd", "SUNRGBD", "sun")),
    "ibims": ("ibims", "IBims", ("ibims", "ibims1_core_raw", "iBims-1")),
    "hypersim": ("hypersim", "HyperSim", ("hypersim", "HyperSim")),
    "diode": ("diode", "DIODEOutdoor", ("diode", "DIODE", "diode_outdoor")),
    "simcol": ("simcol", "SimCol", ("simcol", "SimCol3D", "simcol3d")),
}

ALIASES = {
    "nyuv2": "nyu", "nyudepthv2": "nyu", "nyu-depth-v2": "nyu",
    "kitti-eigen": "kitti",
    "void1500": "void", "void-1500": "void",
    "sun": "sunrgbd", "sun-rgbd": "sunrgbd", "sun_rgbd": "sunrgbd",
    "ibims1": "ibims", "ibims-1": "ibims", "ibims_1": "ibims",
    "diode-outdoor": "diode", "diode_outdoor": "diode",
    "simcol3d": "simcol", "simcol-3d": "simcol",
}


def canonical_name(name: str) -> str:
    """'SUN-RGBD', 'sun' → 'sunrgbd'; an unknown name is a DatasetError listing the known ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise DatasetError(f"unknown dataset '{name}' (known: {', '.join(DATASET_NAMES)})")
    return key


def dataset_class(name: str) -> type[DepthDataset]:
    module, attribute, _ = _REGISTRY[canonical_name(name)]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


def conventional_folder(name: str) -> str:
    return _REGISTRY[canonical_name(name)][2][0]


def find_root(name: str, *, root: str | Path | None = None, data_root: str | Path | None = None) -> Path:
    """The folder `open_dataset` would read; DatasetMissing when none is given or found."""
    name = canonical_name(name)
    return resolve_root(name, _REGISTRY[name][2], root=root, data_root=data_root)


def open_dataset(
    name: str,
    split: str = "test",
    *,
    root: str | Path | None = None,
    data_root: str | Path | None = None,
    captions: "str | Path | Mapping | None" = None,
    **options: Any,
) -> DepthDataset:
    """One split of a dataset, read lazily, in a fixed order.

    `captions`: the paper's caption folder (`text_all/`), a per-image tree, a JSON mapping, a
    one-caption-per-line file (paired in the dataset's documented order, count checked), or a dict;
    default: $TR2M_CAPTIONS, then `<root>/captions`; C3VD and SimCol derive theirs from sequence
    names. `options` are the dataset's own (e.g. `depth_encoding=` for SUN RGB-D, `gt_root=` for
    KITTI, `split_file=`, `protocol=`, `require_captions=False`); see each module.
    """
    name = canonical_name(name)
    folder = find_root(name, root=root, data_root=data_root)
    cls = dataset_class(name)
    try:
        return cls(folder, split, captions=captions, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise DatasetError(f"{name}: {exc}".replace("__init__() ", "")) from None
        raise


__all__ = [
    "DATASET_NAMES",
    "IN_DOMAIN",
    "ZERO_SHOT",
    "DatasetMissing",
    "DepthDataset",
    "DepthSample",
    "EvalProtocol",
    "PRESETS",
    "canonical_name",
    "conventional_folder",
    "dataset_class",
    "find_root",
    "open_dataset",
]
