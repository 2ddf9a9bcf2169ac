"""The run manifest: one JSON line per photo, merged across reruns and concurrent runs, never lost.

During a run each photo's record is appended as soon as its outputs are written, so a run killed
at any moment leaves every finished photo recorded (at worst a half line at the end, which is
ignored). When the run ends the file is compacted: one record per photo (the latest), sorted by
photo, records of photos that are not part of this run kept. A resumed run ends with the manifest
a single uninterrupted run would have written.

Several runs may share one output folder (`tr2m convert` into shared scratch space). They
cooperate: appends and the compaction take a lock (`.<manifest>.lock`), the compaction merges
what is in the file at that moment with what this run could not append, and a run whose file
was compacted under it by another appends to the new file. No record is lost.

The file is opened without following links (a link planted under its name is refused, not
appended through) and written as UTF-8 JSON in which a file name that is not UTF-8 survives as
`\\udcXX` escapes. Lines that cannot be read are reported and kept aside in
`<manifest>.unreadable`, never silently dropped or rebuilt.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import OutputError
from .atomic import CLOEXEC, NOFOLLOW, json_text, write_bytes
from .locks import FileLock
from .own_files import manifest_lock_name

KEY = "input"


def record_line(record: Mapping[str, Any]) -> bytes:
    return (json_text(dict(record), indent=None) + "\n").encode("utf-8")


def parse_manifest(data: bytes) -> tuple[dict[str, dict[str, Any]], list[tuple[int, bytes]]]:
    """({photo key: its latest record}, [(line number, line) that could not be read]). A last
    line without its newline is a run killed mid-write: ignored, not reported."""
    records: dict[str, dict[str, Any]] = {}
    unreadable: list[tuple[int, bytes]] = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            record = None
        if isinstance(record, dict) and isinstance(record.get(KEY), str):
            records[record[KEY]] = record
        elif number < len(lines):  # complete lines only: the last one has no newline after it
            unreadable.append((number, line))
    return records, unreadable


def merge_records(*sources: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Latest record per photo over several sources (later sources win), sorted by photo: the
    merge of shards' or batches' manifests into one."""
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for record in source:
            merged[record[KEY]] = dict(record)
    return {key: merged[key] for key in sorted(merged)}


def _refuse_link(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise OutputError(f"{path}: is a symbolic link; tr2m does not write through links it did not make: remove it")
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: is not a regular file; move it away or choose another --out")


def _read_bytes(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """{photo key: its latest record}; lines that cannot be read are left out (see
    `ManifestLog.unreadable` for a reader that reports them)."""
    path = Path(path)
    try:
        return parse_manifest(path.read_bytes())[0]
    except FileNotFoundError:
        return {}


def read_manifest_checked(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[tuple[int, bytes]]]:
    """(records, unreadable lines) of an existing manifest, without following a link; an
    OutputError when `path` is a link or not a regular file, or when no line of it is a record
    (someone else's file: not to be rebuilt over)."""
    path = Path(path)
    _refuse_link(path)
    data = _read_bytes(path)
    records, unreadable = parse_manifest(data)
    if unreadable and not records:
        raise OutputError(
            f"{path}: not a tr2m manifest (line {unreadable[0][0]} unreadable); move it away or choose another --out"
        )
    return records, unreadable


def write_manifest(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Atomically replace `path` with these records, one line each."""
    write_bytes(path, b"".join(record_line(r) for r in records))


class ManifestLog:
    """Append records during a run; `close()` merges and compacts the file.

    `previous`: the records found when the run started. `unreadable`: lines that could not be
    read (kept aside in `<manifest>.unreadable`). `append_error`: the first error that kept a
    record from being appended (the record is kept and written by `close`).
    Raises OutputError when the file is a link, or holds no readable record at all.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(self.path.with_name(manifest_lock_name(self.path.name)))
        self.current: dict[str, dict[str, Any]] = {}
        self.unwritten: dict[str, dict[str, Any]] = {}
        self.append_error: OSError | None = None
        self._fd: int | None = None
        self._closed = False
        with self.lock:
            self.previous, self.unreadable = read_manifest_checked(self.path)
            data = _read_bytes(self.path)
            if self.unreadable:
                self._keep_aside(self.unreadable)
            self._open()
            if data and not data.endswith(b"\n"):
                self._write(b"\n")  # end the half line a killed run left

    def _keep_aside(self, lines: list[tuple[int, bytes]]) -> None:
        aside = self.path.with_name(self.path.name + ".unreadable")
        _refuse_link(aside)
        old = _read_bytes(aside)
        write_bytes(aside, old + b"".join(line + b"\n" for _, line in lines))

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse_link(self.path)
            raise

    def _ensure_current(self) -> None:
        """Another run may have compacted the file (a new file under the name): follow it."""
        mine = os.fstat(self._fd)
        try:
            now = os.lstat(self.path)
            same = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
        except FileNotFoundError:
            same = False
        if not same:
            os.close(self._fd)
            self._fd = None
            _refuse_link(self.path)
            self._open()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def append(self, record: Mapping[str, Any]) -> None:
        """Record one photo now. A failure to append (disk full) is remembered, not raised: the
        record is written at `close`, and the caller can warn with `append_error`."""
        record = dict(record)
        key = record[KEY]
        self.current[key] = record
        try:
            line = record_line(record)
            with self.lock:
                self._ensure_current()
                self._write(line)
            self.unwritten.pop(key, None)
        except OSError as exc:
            self.unwritten[key] = record
            if self.append_error is None:
                self.append_error = exc

    def records(self) -> Iterator[dict[str, Any]]:
        yield from merge_records(self.previous.values(), self.current.values()).values()

    def close(self) -> None:
        """Merge what is in the file now (this run's records and other runs') with records that
        could not be appended, and rewrite it compacted. Raises OutputError in plain words when
        it cannot be written (the appended lines are then still there)."""
        if self._closed:
            return
        self._closed = True
        try:
            with self.lock:
                _refuse_link(self.path)
                on_disk, _ = parse_manifest(_read_bytes(self.path))
                merged = merge_records(on_disk.values(), self.unwritten.values())
                write_manifest(self.path, merged.values())
                self.unwritten.clear()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self.lock.close()

    def __enter__(self) -> "ManifestLog":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def describe_os_error(exc: OSError) -> str:
    """'no space left on device', 'read-only file system', … — the OS's words, lower case."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]
