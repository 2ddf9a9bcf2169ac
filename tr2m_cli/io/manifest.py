"""The run manifest: one JSON line per photo, kept right across interruptions and reruns.

During a run each photo's record is appended (and flushed) as soon as its outputs are written, so
a run killed at any moment leaves every finished photo recorded (at worst a half line at the end,
which is ignored). When the run ends, the file is rewritten atomically with exactly one record
per photo (the latest), sorted by photo: a run resumed after an interruption ends with the same
manifest a single uninterrupted run would have written. Records of photos that are not part of
this run are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from .atomic import write_text

KEY = "input"


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """{photo key: its latest record}; unreadable lines (a run killed mid-line) are skipped."""
    records: dict[str, dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get(KEY), str):
            records[record[KEY]] = record
    return records


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n"


class ManifestLog:
    """Append records during a run; `close()` compacts the file to one record per photo."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.previous = read_manifest(self.path)
        self.current: dict[str, dict[str, Any]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
            with open(self.path, "ab") as handle:  # end a half line left by a killed run
                handle.write(b"\n")
        self._handle = open(self.path, "a", encoding="utf-8")

    def append(self, record: Mapping[str, Any]) -> None:
        self.current[record[KEY]] = dict(record)
        self._handle.write(_line(record))
        self._handle.flush()

    def records(self) -> Iterator[dict[str, Any]]:
        merged = {**self.previous, **self.current}
        for key in sorted(merged):
            yield merged[key]

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.close()
        write_text(self.path, "".join(_line(record) for record in self.records()))

    def __enter__(self) -> "ManifestLog":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
