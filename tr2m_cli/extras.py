"""Optional dependencies: one place that imports them and says which extra brings each.

The base install (`pip install tr2m`) covers converting photos to depth files. Features that only
some users need pull in large libraries, so they live in named extras; asking for such a feature
without its extra is one line naming the extra to install, never a traceback.

| extra      | brings                          | for                                             |
|------------|---------------------------------|-------------------------------------------------|
| `3d`       | open3d (+ libusb-package),      | normals, outlier removal, `tr2m view`; mesh     |
|            | fast-simplification             | simplification                                  |
| `exr`      | OpenEXR                         | `--outputs exr`, `save_exr`                     |
| `hypersim` | h5py                            | reading HyperSim depth (`tr2m eval --zero-shot`)|
| `ray`      | ray[data]                       | `--engine ray` for convert and caption          |
| `s3`, `gcs`, `azure` | s3fs, gcsfs, adlfs    | inputs and outputs on object stores (io.storage)|
| `video`    | av (PyAV: FFmpeg in a wheel)    | videos in, depth preview videos out             |
| `ros`      | rosbags                         | ROS 1 `.bag` and ROS 2 `.db3`/`.mcap` recordings |
"""

from __future__ import annotations

import ctypes
import importlib
from types import ModuleType

from .errors import MissingExtraError, first_line

def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError: "`feature` needs X: pip install 'tr2m[extra]'"."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but one of its own imports is broken: not ours to hide
        raise MissingExtraError(
            f"{feature} needs the Python package '{module}', which is not installed: "
            f"pip install 'tr2m[{extra}]'"
        ) from None


_libusb_loaded = False


def _preload_libusb() -> None:
    """open3d's wheels link against the system library libusb-1.0.so.0, which a fresh machine
    lacks. The `libusb-package` wheel ships that library; loading it globally first satisfies the
    link (the dynamic linker matches loaded libraries by soname), so no system package is needed.
    Where the system has its own libusb, the same soname is satisfied either way."""
    global _libusb_loaded
    if _libusb_loaded:
        return
    try:
        import libusb_package
    except ImportError:
        return  # open3d then needs the system library; its import error says so
    path = libusb_package.get_library_path()
    if path is not None:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    _libusb_loaded = True


def import_open3d(feature: str = "this 3-D feature") -> ModuleType:
    """open3d, importable on a machine with nothing but Python (see `_preload_libusb`)."""
    _preload_libusb()
    try:
        return require("open3d", "3d", feature)
    except ImportError as exc:  # present but a system library is missing
        first = first_line(exc)
        raise MissingExtraError(
            f"{feature} needs open3d, which is installed but cannot be loaded ({first}): "
            f"pip install 'tr2m[3d]' (it brings libusb-package, the library open3d links against)"
        ) from None


def import_openexr(feature: str = "writing EXR depth") -> ModuleType:
    return require("OpenEXR", "exr", feature)


def import_h5py(feature: str = "reading HyperSim depth") -> ModuleType:
    return require("h5py", "hypersim", feature)
