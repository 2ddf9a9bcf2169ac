"""tr2m: metric depth in metres from a photo and a short description of it (TR2M).

    import tr2m_cli
    model = tr2m_cli.load_model("tr2m-official", device="cuda")
    depth = model.predict("kitchen.jpg", "A kitchen with a table and chairs.")  # float32 [H, W], metres

Importing this package is instant; torch and transformers load when a model is first asked for.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = _metadata.version("tr2m")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "load_model": "tr2m_cli.weights.load",
    "TR2M": "tr2m_cli.model.tr2m",
    "Prediction": "tr2m_cli.model.inference",
    "SizePolicy": "tr2m_cli.model.preprocess",
    "HeadConfig": "tr2m_cli.model.config",
    "import_head": "tr2m_cli.weights.folder",
    "download_model": "tr2m_cli.weights.resolve",
    "resolve_model": "tr2m_cli.weights.resolve",
    "Intrinsics": "tr2m_cli.io.intrinsics",
    "PointCloudOptions": "tr2m_cli.io.pointcloud",
    "save_depth_tiff": "tr2m_cli.io.save",
    "save_exr": "tr2m_cli.io.save",
    "save_ply": "tr2m_cli.io.save",
    "save_mesh": "tr2m_cli.io.save",
    "save_render": "tr2m_cli.io.save",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from .io.intrinsics import Intrinsics
    from .io.pointcloud import PointCloudOptions
    from .io.save import save_depth_tiff, save_exr, save_mesh, save_ply, save_render
    from .model.config import HeadConfig
    from .model.preprocess import SizePolicy
    from .model.inference import Prediction
    from .model.tr2m import TR2M
    from .weights.folder import import_head
    from .weights.load import load_model
    from .weights.resolve import download_model, resolve_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tr2m_cli' has no attribute {name!r}")
