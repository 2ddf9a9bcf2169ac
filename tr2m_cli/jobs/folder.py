"""The output folder of a job: checked before any work, shared safely while the job runs.

Every run holds a shared lock on `OUT/.tr2m-run.lock` while it writes there. A run that finds
no other run live (it gets the lock exclusively for a moment) deletes temporaries that killed
runs left; a run that finds others live leaves every temporary alone, since it may be theirs. So
concurrent runs into one folder never delete each other's files in flight. Creating the lock
file is also the check that the folder can be written (no probe file that could follow a link).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputError
from ..io.atomic import remove_stale_temporaries
from ..io.locks import FileLock
from ..io.manifest import describe_os_error
from ..io.own_files import RUN_LOCK


def check_output_folder(out_dir: str | Path, what: str = "--out") -> None:
    """Refuse an output folder that cannot be made, before anything is written or loaded."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder ({what})")
    probe = out_dir
    while not probe.exists() and not probe.is_symlink():
        probe = probe.parent
    if not probe.is_dir():
        kind = "a file" if probe.is_file() else "not a folder"
        raise OutputError(f"{out_dir}: cannot be created: {probe} is {kind} ({what})")
    if not os.access(probe, os.W_OK | os.X_OK):  # root passes this; open() below is the real test
        raise OutputError(f"{out_dir}: cannot be written: permission denied on {probe} ({what})")


class OutputFolder:
    """`with OutputFolder(path) as folder:` makes the folder, holds its run lock, and clears
    stale temporaries when this run is alone there (`folder.shared` says whether it is not)."""

    def __init__(self, path: str | Path, what: str = "--out") -> None:
        self.path = Path(path)
        self.what = what
        self.lock = FileLock(self.path / RUN_LOCK)
        self.shared = False
        self.stale_temporaries_removed = 0

    def open(self) -> "OutputFolder":
        check_output_folder(self.path, self.what)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            alone = self.lock.acquire(blocking=False)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot be written ({describe_os_error(exc)}) ({self.what})") from None
        if alone:
            self.stale_temporaries_removed = remove_stale_temporaries(self.path)
        self.shared = not alone
        self.lock.acquire(shared=True)  # (a run holding it exclusively is only sweeping: brief)
        return self

    def close(self) -> None:
        self.lock.close()

    def __enter__(self) -> "OutputFolder":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()
