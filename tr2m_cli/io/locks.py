"""Advisory locks between tr2m processes (on one machine, or on a shared file system that
supports `flock`, as Linux NFS does).

A lock is a hidden file beside what it protects, opened without following links, locked with
`flock` (per open file, so two locks in one process exclude each other as two processes do) and
never deleted (deleting a lock file races with a process about to lock it). The lock is released
when the process ends, however it ends: a killed run never leaves a folder locked.
On systems without `fcntl` (Windows) locks are no-ops: concurrent runs there are the user's call.
"""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import CLOEXEC, NOFOLLOW

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FileLock:
    """`with FileLock(path): ...` holds an exclusive lock; `acquire(shared=True)` a shared one;
    `acquire(blocking=False)` returns False instead of waiting."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.mode: str | None = None  # "shared" | "exclusive" while held

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW | CLOEXEC, 0o666)
        return self._fd

    def acquire(self, *, shared: bool = False, blocking: bool = True) -> bool:
        fd = self._open()
        if fcntl is not None:
            flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                return False
        self.mode = "shared" if shared else "exclusive"
        return True

    def release(self) -> None:
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.mode = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock too
            self._fd = None
            self.mode = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
