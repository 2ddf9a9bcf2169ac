"""Named models, the download cache, and model folders."""

from .download import download_file, sha256_of
from .folder import import_head, is_model_folder, read_model_folder, save_model_folder
from .load import load_model
from .registry import load_registry
from .resolve import DEFAULT_MODEL, download_model, fetch_encoders, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "download_file",
    "download_model",
    "fetch_encoders",
    "import_head",
    "is_model_folder",
    "load_model",
    "load_registry",
    "read_model_folder",
    "resolve_model",
    "save_model_folder",
    "sha256_of",
]
