"""Where tr2m keeps what it downloads.

Our own files (head weights, model folders) live under $TR2M_HOME, else the platform's user cache
folder (~/.cache/tr2m on Linux). Encoders live in the Hugging Face cache ($HF_HOME), so they are
shared with every other tool that uses them.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    override = os.environ.get("TR2M_HOME", "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tr2m", appauthor=False))


def models_root() -> Path:
    return cache_root() / "models"


def downloads_root() -> Path:
    return cache_root() / "downloads"
