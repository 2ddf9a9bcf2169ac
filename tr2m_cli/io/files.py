"""Reading files from trees we do not control: only regular files, never more than we asked for.

A photo folder may hold a FIFO named `b.jpg` (opening it blocks forever), a "caption" linked to
`/dev/zero` (reading it never ends) or a device. Every file tr2m reads as a photo, a caption or a
list is opened here: without blocking (`O_NONBLOCK`, which makes opening a FIFO return at once),
checked on the opened descriptor to be a regular file (so a name swapped after it was listed
cannot slip through), and read up to a stated size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

NONBLOCK = getattr(os, "O_NONBLOCK", 0)
NOCTTY = getattr(os, "O_NOCTTY", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
BINARY = getattr(os, "O_BINARY", 0)


def kind_of(mode: int) -> str:
    """'regular file', 'folder', 'FIFO', 'device', 'socket' — in words for messages."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


class NotRegularFile(InputError):
    """A path that is a FIFO, device, socket or folder where a file was expected."""


def open_regular(path: str | Path) -> BinaryIO:
    """Open `path` for reading if it is a regular file (links to one are fine); a NotRegularFile
    naming it otherwise. Never blocks on a FIFO."""
    # open() with an opener, not os.fdopen on a descriptor we hold: a Ctrl-C or SIGTERM raised
    # inside fdopen, after its file object took the descriptor, left both that object and our
    # cleanup closing it; the second close failed with EBADF, which replaced the interrupt (the
    # job then ran on). With an opener, the descriptor has exactly one owner at every moment.
    return open(path, "rb", opener=_open_regular_fd)


def _open_regular_fd(path: str | Path, flags: int) -> int:  # noqa: ARG001 - open()'s opener signature
    fd = os.open(path, os.O_RDONLY | NONBLOCK | NOCTTY | CLOEXEC | BINARY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path}: is a {kind_of(mode)}, not a regular file: skipped")
        if NONBLOCK:  # reads of a regular file never block anyway; clear it for libraries that care
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_capped(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The whole content of a regular file of at most `limit` bytes; InputError naming the file
    when it is bigger (or not a regular file). FileNotFoundError passes through. An object on a
    store (io.storage.Url) is read in one request."""
    from . import storage

    if storage.is_url(path):
        where = storage.location(path)
        if not storage.is_file(where):
            raise FileNotFoundError(str(where))
        if storage.stat(where).size > limit:
            raise InputError(f"{storage.describe(where)}: {what} is larger than {format_bytes(limit)}: not read")
        return storage.read_bytes(where)
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{path}: {what} is larger than {format_bytes(limit)}: not read")
    return data


def read_text_file(path: str | Path, limit: int, noun: str, *, not_a_folder: str) -> str:
    """A UTF-8 text file we were pointed at (a caption file, an intrinsics file …) read whole,
    at most `limit` bytes; every problem is one InputError naming the file. `noun`: what the
    file is ("caption file"); `not_a_folder`: what to say when it is a folder."""
    try:
        return read_capped(path, limit, f"the {noun}").decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such {noun}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, {not_a_folder}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {noun} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: {noun} is not UTF-8 text") from None


def read_head(path: str | Path, limit: int) -> tuple[bytes, bool]:
    """The first `limit` bytes of a regular file, and whether there was more."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    return data[:limit], len(data) > limit


def regular_file_problem(path: str | Path) -> str | None:
    """None when `path` is (or links to) a regular file; else why it cannot be read as one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if stat.S_ISREG(mode) else f"is a {kind_of(mode)}, not a regular file"


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"
