"""Manifests at scale: records written in parts by many workers, merged without holding them.

A run on many workers cannot append to one file (object stores have no append, and workers on
other machines share no file handle). Each worker batch writes its records as one *part*, a
whole file under `OUT/.tr2m-manifest-parts/<manifest name>/` (hidden: never taken for an input
or an output; one folder per manifest, so shards sharing an output folder keep theirs apart),
right after that batch's outputs are written. So a driver killed at any moment loses no finished
photo's record: the next run finds the parts.

`merge_manifest` folds the parts into `OUT/manifest.jsonl` by an external sort: records are read
in chunks, each chunk sorted and spilled to a local temporary file, and the sorted runs merged a
bounded number at a time, keeping each photo's newest record (the existing manifest is oldest;
parts are newer in the order of their names, which start with the run's time). Memory stays at
one chunk whatever the number of records, and the merged manifest is written as a whole file
(a rename locally, one upload on an object store). The parts merged are then deleted.

`iter_manifest` streams a manifest sorted by photo, so a planner can join it with the sorted
photo list in constant memory.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import Tr2mError
from . import storage
from .manifest import KEY, record_line
from .storage import Location

PARTS_FOLDER = ".tr2m-manifest-parts"
CHUNK_RECORDS = 20_000  # records sorted in memory at once
FAN_IN = 32  # sorted runs (or parts) open at once while merging


def new_run_id() -> str:
    """Sortable by start time, unique across machines: parts of later runs sort after."""
    return f"{time.time_ns():020d}-{secrets.token_hex(3)}"


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None  # a half line left by a killed local run
    return record if isinstance(record, dict) and isinstance(record.get(KEY), str) else None


def parts_folder(out: Location, manifest_name: str = "manifest.jsonl") -> Location:
    return storage.join(out, f"{PARTS_FOLDER}/{manifest_name}")


def write_part(out: Location, run_id: str, records: Iterable[Mapping[str, Any]],
               manifest_name: str = "manifest.jsonl") -> Location | None:  # fmt: skip
    """One whole-file part of `manifest_name` holding `records` (sorted by photo); None when
    there are none."""
    records = sorted(records, key=lambda r: r[KEY])
    if not records:
        return None
    name = f"{run_id}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
    where = storage.join(parts_folder(out, manifest_name), name)
    storage.write_bytes(where, b"".join(record_line(r) for r in records))
    return where


def list_parts(out: Location, manifest_name: str = "manifest.jsonl") -> list[Location]:
    """The parts of `manifest_name` waiting to be merged, oldest first."""
    folder = parts_folder(out, manifest_name)
    return [storage.join(folder, info.key) for info in storage.list_files(folder, recursive=False, hidden=True)
            if info.key.endswith(".jsonl")]  # fmt: skip


def _lines(where: Location) -> Iterator[str]:
    """The lines of a manifest or part, streamed (never the whole file in memory). A local file
    is opened without following links (a link planted at a manifest's name is refused)."""
    if isinstance(where, Path):
        import errno

        from ..errors import OutputError
        from .atomic import CLOEXEC, NOFOLLOW

        try:
            fd = os.open(where, os.O_RDONLY | NOFOLLOW | CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{where}: is a symbolic link; tr2m does not read or write through links it did not make") from None
            raise
        with open(fd, encoding="utf-8", errors="surrogateescape") as handle:
            yield from handle
        return
    if not storage.exists(where):
        return
    import io

    with storage.storage_errors(where, "read"), storage.filesystem(where).open(where.path, "rb") as raw:
        yield from io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape")


def iter_manifest(where: Location) -> Iterator[dict[str, Any]]:
    """The records of a manifest, in file order, skipping unreadable lines."""
    for line in _lines(where):
        record = _parse(line)
        if record is not None:
            yield record


class _Runs:
    """Sorted runs spilled to a local temporary folder: lines `[key, rank, index]\\t{record}`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: list[Path] = []

    def spill(self, entries: list[tuple[str, int, int, str]]) -> None:
        """Sort a chunk in memory and write it as one run."""
        if entries:
            entries.sort()
            self.spill_sorted(entries)

    def spill_sorted(self, entries: Iterable[tuple[str, int, int, str]]) -> None:
        path = self.folder / f"run-{len(self.paths):06d}.txt"
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            for key, rank, index, line in entries:
                handle.write(json.dumps([key, rank, index], ensure_ascii=False) + "\t" + line.rstrip("\n") + "\n")
        self.paths.append(path)


def _read_run(path: Path) -> Iterator[tuple[str, int, int, str]]:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            head, _, record = line.partition("\t")
            key, rank, index = json.loads(head)
            yield key, rank, index, record


def _newest_per_key(entries: Iterable[tuple[str, int, int, str]]) -> Iterator[tuple[str, int, int, str]]:
    for _, group in itertools.groupby(entries, key=lambda entry: entry[0]):
        *_, newest = group
        yield newest


def merge_manifest(out: Location, manifest_name: str = "manifest.jsonl", *, chunk: int = CHUNK_RECORDS,
                   fan_in: int = FAN_IN) -> int:  # fmt: skip
    """Fold the parts under `out` into `out/manifest_name` (one record per photo, its newest,
    sorted by photo), then delete the parts merged. Returns the number of records written.
    Memory: `chunk` records and `fan_in` open runs, whatever the total."""
    manifest = storage.join(out, manifest_name)
    parts = list_parts(out, manifest_name)
    if not parts:
        return -1  # nothing to fold in: the manifest stays as it is
    # A local manifest is shared with local runs appending to it: take its lock (io.manifest's),
    # so nothing appended meanwhile is lost. Object stores have no appenders.
    lock = contextlib.nullcontext()
    if isinstance(manifest, Path):
        from .locks import FileLock
        from .own_files import manifest_lock_name

        lock = FileLock(manifest.with_name(manifest_lock_name(manifest.name)))
    with lock:
        count = _merge(manifest, parts, chunk, fan_in)
    for part in parts:
        storage.remove(part)
    return count


def _merge(manifest: Location, parts: list[Location], chunk: int, fan_in: int) -> int:
    sources = [manifest, *parts]
    folder = Path(tempfile.mkdtemp(prefix="tr2m-manifest-"))
    try:
        runs = _Runs(folder)
        for rank, source in enumerate(sources):
            entries: list[tuple[str, int, int, str]] = []
            for index, line in enumerate(_lines(source)):
                record = _parse(line)
                if record is None:
                    continue
                entries.append((record[KEY], rank, index, line.rstrip("\n")))
                if len(entries) >= chunk:
                    runs.spill(entries)
                    entries = []
            runs.spill(entries)
        paths = runs.paths
        while len(paths) > fan_in:  # merge runs a bounded number at a time
            level = Path(tempfile.mkdtemp(dir=folder))
            merged_runs = _Runs(level)
            for start in range(0, len(paths), fan_in):
                group = paths[start : start + fan_in]
                merged_runs.spill_sorted(_newest_per_key(heapq.merge(*(_read_run(p) for p in group))))
                for path in group:
                    path.unlink()
            paths = merged_runs.paths
        count = 0
        with storage.staged_write(manifest) as temp:
            with open(temp, "w", encoding="utf-8", errors="surrogateescape") as handle:
                for _, _, _, line in _newest_per_key(heapq.merge(*(_read_run(p) for p in paths))):
                    handle.write(line.rstrip("\n") + "\n")
                    count += 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return count




class ManifestParts:
    """A run's records saved as parts while it goes, where no manifest can be appended to (an
    object store): `append` keeps a record and saves those kept as one part every `every` records
    or `seconds`; `close` saves the rest and merges every part into the manifest. It stands in for
    io.manifest.ManifestLog (the same `append`, `close`, `append_error`, `unreadable`)."""

    unreadable: tuple = ()  # parts are whole files: never a half line to report

    def __init__(self, out: Location, run_id: str, manifest_name: str = "manifest.jsonl", *, every: int = 64,
                 seconds: float = 10.0) -> None:  # fmt: skip
        self.out, self.run_id, self.manifest_name = out, run_id, manifest_name
        self.path = storage.join(out, manifest_name)
        self.every, self.seconds = max(1, every), seconds
        self.kept: list[dict[str, Any]] = []
        self.append_error: BaseException | None = None
        self._saved_at = time.monotonic()

    def append(self, record: Mapping[str, Any]) -> None:
        """Keep a record; save a part when enough are kept. A failure to save (the store is away)
        is remembered, not raised: the records stay kept and are saved later or at `close`."""
        self.kept.append(dict(record))
        if len(self.kept) >= self.every or time.monotonic() - self._saved_at > self.seconds:
            self._save()

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        try:
            write_part(self.out, self.run_id, self.kept, self.manifest_name)
        except (OSError, Tr2mError) as exc:
            if self.append_error is None:
                self.append_error = exc
            return
        self.kept = []

    def close(self) -> None:
        """Save what is kept and merge the parts into the manifest; OutputError in plain words
        when that cannot be done (the parts saved are kept: the next run merges them)."""
        from ..errors import OutputError

        try:
            if self.kept:
                write_part(self.out, self.run_id, self.kept, self.manifest_name)
                self.kept = []
            merge_manifest(self.out, self.manifest_name)
        except (OSError, Tr2mError) as exc:
            raise OutputError(f"cannot merge {storage.describe(self.path)}: {storage.redact(str(exc))}") from None
