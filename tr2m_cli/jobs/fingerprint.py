"""Per-photo fingerprints: what made an output, so a rerun redoes exactly what is stale.

A photo's settings are everything that changes its outputs: the model (name and head sha256),
the caption, the size policy, the precision, the domain and unit conversion, the output options,
and the input file itself (size and modification time). They are recorded in its manifest record
(`"settings"`) and TIFF tags, with a short hash of them (`"fingerprint"`). A rerun skips a photo
only when its last record is `ok`, its fingerprint equals the one the run would write and its
files are all there; any other photo is converted, and one whose settings changed is counted as
redone, with the names of what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

FINGERPRINT_VERSION = 1


def input_file_identity(path: str | Path) -> dict[str, int]:
    """What tells a replaced photo from the one converted: its size and modification time (of a
    local file, or of an object on a store: io.storage)."""
    from ..io import storage

    if storage.is_url(path):
        info = storage.stat(storage.location(path))
        return {"bytes": int(info.size), "mtime_ns": int((info.mtime or 0) * 1e9)}
    stat = os.stat(path)
    return {"bytes": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns)}


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short, stable hash of JSON-able settings (key order does not matter)."""
    text = json.dumps({"v": FINGERPRINT_VERSION, **settings}, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:24]


def changed_settings(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Names of the settings that differ (all of them when nothing was recorded)."""
    if not isinstance(previous, Mapping):
        return sorted(current)
    return sorted(key for key in set(previous) | set(current) if previous.get(key) != current.get(key))


def is_current(previous: Mapping[str, Any] | None, current_fingerprint: str, outputs_present: bool) -> bool:
    """Skip a photo only when its last record is ok, made with these settings, and its files exist."""
    return (
        isinstance(previous, Mapping)
        and previous.get("status") == "ok"
        and previous.get("fingerprint") == current_fingerprint
        and outputs_present
    )
