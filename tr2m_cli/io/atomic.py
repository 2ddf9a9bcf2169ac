"""Writing files so that a reader never sees half of one.

Every output goes to a hidden temporary file in the destination folder and is renamed into place
once complete (a rename within one folder is atomic on POSIX and Windows). An interrupted run
leaves at most a hidden temporary, never a truncated file under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterable, Iterator

TEMP_PREFIX = ".tr2m-tmp-"


def temp_path_for(dest: Path) -> Path:
    """A hidden sibling that keeps the suffix (image writers pick the format from it)."""
    return dest.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{dest.name}")


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `dest`, on error it is removed.
    A storage URL (io.storage.Url) is written locally, then uploaded whole."""
    from . import storage

    if storage.is_url(dest):
        with storage.staged_write(storage.location(dest)) as temp:
            yield temp
        return
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(dest)
    try:
        yield temp
        if fsync:
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def write_bytes(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as temp:
        temp.write_bytes(data)


def write_text(dest: str | Path, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def write_json(dest: str | Path, data: Any) -> None:
    write_text(dest, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporaries left by a killed run (they are never valid outputs)."""
    count = 0
    for path in Path(folder).rglob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()
            count += 1
    return count


def remove_stale_temporaries_of(destinations: Iterable[str | Path]) -> int:
    """Delete temporaries left for these destinations only: several writers sharing one folder
    (shards of one job) each clear their own, never a temporary another is still writing."""
    by_folder: dict[Path, set[str]] = {}
    for dest in destinations:
        dest = Path(dest)
        by_folder.setdefault(dest.parent, set()).add(dest.name)
    count = 0
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            # temp_path_for's layout: PREFIX + 8 hex digits + "-" + the destination's name
            if entry.name.startswith(TEMP_PREFIX) and entry.name[len(TEMP_PREFIX) + 9 :] in names:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    count += 1
    return count
