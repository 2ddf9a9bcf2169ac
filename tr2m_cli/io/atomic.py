"""Writing files so that a reader never sees half of one, and no write goes through a link.

Every output goes to a hidden temporary in the destination folder and is renamed into place
once complete (a rename within one folder is atomic on POSIX and Windows). An interrupted run
leaves at most a hidden temporary, never a truncated file under the real name.

Shared output folders are hostile places: anyone who can write there can plant a symbolic link
named like one of our files. So the temporary is created by us, exclusively (`O_CREAT|O_EXCL`,
a random name, `O_NOFOLLOW`): a link planted under its name makes the creation fail instead of
writing through it, and the rename replaces a link at the destination rather than following it.
Temporaries keep the destination's last suffix (image writers pick the format from it) and are
shortened when a long name plus the prefix would pass the file system's 255-byte limit. Files
get the mode the umask gives (0644 under the usual 022), whatever a writer library chose.

A destination on an object store (an `io.storage.Url`) is written to a local temporary and
uploaded in one piece once complete (io.storage.staged_write): no partial object either.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterator

TEMP_PREFIX = ".tr2m-tmp-"
NAME_MAX = 255  # bytes in one file name on ext4, XFS, APFS, NTFS (as UTF-16 units), tmpfs
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _fits(name: str, room: int) -> str:
    """`name` cut (keeping its last suffix) so that its encoded form takes at most `room` bytes."""
    if len(os.fsencode(name)) <= room:
        return name
    suffix = Path(name).suffix if len(os.fsencode(Path(name).suffix)) < room // 2 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    while stem and len(os.fsencode(stem + suffix)) > room:
        stem = stem[:-1]
    return stem + suffix


def temp_path_for(dest: Path) -> Path:
    """A hidden sibling with a random part, keeping the suffix, within the name-length limit."""
    head = f"{TEMP_PREFIX}{secrets.token_hex(6)}-"
    return dest.with_name(head + _fits(dest.name, NAME_MAX - len(head)))


def check_name_length(dest: Path) -> None:
    """An OSError naming the file when its name alone is over the file system's limit, before any
    work is spent on it (the error the OS would give, but said up front)."""
    if len(os.fsencode(dest.name)) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, f"file name longer than {NAME_MAX} bytes", str(dest))


def _create_exclusive(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, 0o666)


@contextlib.contextmanager
def _temporary(dest: str | Path) -> Iterator[tuple[Path, int, int]]:
    """(temporary path, its descriptor, its mode) for `dest`; the descriptor is closed on the way
    out, and the temporary removed if the body raised."""
    dest = Path(dest)
    check_name_length(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder should be, here or above
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)", str(dest.parent)) from None
    for _ in range(8):
        temp = temp_path_for(dest)
        try:
            fd = _create_exclusive(temp)
            break
        except FileExistsError:  # a name someone else holds (or planted): take another
            continue
    else:  # pragma: no cover - 8 collisions of 48 random bits
        raise OSError(errno.EEXIST, "cannot create a temporary file", str(dest))
    created = os.fstat(fd)
    try:
        yield temp, fd, stat.S_IMODE(created.st_mode)
    except BaseException:
        with contextlib.suppress(OSError):
            now = os.lstat(temp)
            if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
                os.unlink(temp)
        raise
    finally:
        os.close(fd)


def _finish(temp: Path, fd: int, dest: Path, fsync: bool, mode: int) -> None:
    """Make `temp` (open as `fd`, which this closes) the file at `dest`: give it the mode it was
    created with (some writers narrow it), flush it to disk, check the name still holds this
    file, rename it."""
    try:
        current = os.fstat(fd)
        if stat.S_IMODE(current.st_mode) != mode:
            os.fchmod(fd, mode)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    now = os.lstat(temp)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (current.st_dev, current.st_ino):
        raise OSError(errno.EEXIST, "the temporary file was replaced while being written (not renamed)", str(temp))
    os.replace(temp, dest)


@contextlib.contextmanager
def atomic_file(dest: str | Path, *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """An open binary file to write; on success it becomes `dest`, on error it is removed.
    Writers that accept file objects (numpy, PIL with `format=`, tifffile) should use this: the
    file they write is the one we created, whatever happens to names meanwhile."""
    if _is_url(dest):
        from . import storage

        with storage.staged_write(storage.location(dest)) as temp, open(temp, "wb") as handle:
            yield handle
        return
    dest = Path(dest)
    with _temporary(dest) as (temp, fd, mode):
        with os.fdopen(os.dup(fd), "wb") as handle:
            handle.raw.name = str(temp)  # writers that look at the name (tifffile) see the temporary
            yield handle
        _finish(temp, os.dup(fd), dest, fsync, mode)


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """A temporary path to write (for writers that only take a path); on success it replaces
    `dest`, on error it is removed. The file already exists, created by us, when it is yielded."""
    if _is_url(dest):
        from . import storage

        with storage.staged_write(storage.location(dest)) as temp:
            yield temp
        return
    dest = Path(dest)
    with _temporary(dest) as (temp, fd, mode):
        yield temp
        # The writer may have deleted and recreated the file: finish the one the name holds now
        # (never through a link).
        _finish(temp, os.open(temp, os.O_RDONLY | NOFOLLOW | CLOEXEC), dest, fsync, mode)


def _is_url(dest: Any) -> bool:
    from .storage import is_url

    return is_url(dest)


def write_bytes(dest: str | Path, data: bytes) -> None:
    with atomic_file(dest) as handle:
        handle.write(data)


def write_text(dest: str | Path, text: str) -> None:
    """UTF-8; characters that cannot be encoded (lone surrogates from undecodable file names) are
    written as backslash escapes rather than failing the write."""
    write_bytes(dest, text.encode("utf-8", "backslashreplace"))


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """JSON that any name survives: non-ASCII text is kept readable, and a lone surrogate (a file
    name byte that is not UTF-8, as Python decodes it) becomes a `\\udcXX` escape, which `json.loads`
    turns back into the same surrogate, and `os.fsencode` into the same byte."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False, default=str)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(dest: str | Path, data: Any) -> None:
    write_text(dest, json_text(data) + "\n")


def is_temporary(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporaries under `folder` left by killed runs (they are never valid outputs).
    Only call this while no other run can be writing there (see `jobs.lock.FolderLock`)."""
    count = 0
    for path in Path(folder).rglob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if not path.is_symlink() and path.is_dir():
                continue
            path.unlink()
            count += 1
    return count


def make_folders(root: str | Path, relative: str | os.PathLike) -> Path:
    """Make `root/relative` folder by folder, refusing any part below `root` that is a symbolic
    link (someone else's link in a shared output folder must not redirect our writes). `root`
    itself may be a link: the user chose it. Returns the folder."""
    root = Path(root)
    parts = [p for p in Path(relative).parts if p not in ("", ".")]
    if os.mkdir not in os.supports_dir_fd:  # pragma: no cover - Windows: no dir_fd; plain folders
        root.joinpath(*parts).mkdir(parents=True, exist_ok=True)
        return root.joinpath(*parts)
    if any(p == ".." for p in parts):
        raise OSError(errno.EINVAL, "a path leaving the output folder", str(root / relative))
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | CLOEXEC)
    try:
        where = root
        for part in parts:
            where = where / part
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW | CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if os.path.islink(where):
                    raise OSError(errno.ELOOP, "is a symbolic link (tr2m does not write through links it did not make)", str(where)) from None
                raise OSError(exc.errno, exc.strerror, str(where)) from None
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    return root.joinpath(*parts)
