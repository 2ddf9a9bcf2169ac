"""The layout of a training run's folder, and finding its checkpoints.

    runs/exp1/
      run.json                       config, encoders, checkpoints written, validation history, best
      metrics.jsonl                  training and validation records (see logbook.py)
      checkpoints/epoch-003.safetensors            end of the third epoch
      checkpoints/epoch-004-step-00012345.safetensors   part-way through the fourth (optional)
      best.safetensors               the checkpoint with the best validation score (a hard link)
      tensorboard/                   when the tensorboard package is installed
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import OutputError, WeightsError
from ..io.atomic import temp_path_for, write_json
from .state import read_progress

RUN_RECORD = "run.json"
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.safetensors"
RUN_FORMAT = "tr2m-training-run"


class RunFolder:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def best(self) -> Path:
        return self.root / BEST_NAME

    def holds_a_run(self) -> bool:
        return (self.root / RUN_RECORD).is_file() or self.has_checkpoints()

    def has_checkpoints(self) -> bool:
        return any(self.checkpoints.glob("*.safetensors"))

    def checkpoint_path(self, epochs_done: int, global_step: int, end_of_epoch: bool) -> Path:
        if end_of_epoch:
            return self.checkpoints / f"epoch-{epochs_done:03d}.safetensors"
        return self.checkpoints / f"epoch-{epochs_done + 1:03d}-step-{global_step:08d}.safetensors"

    def all_checkpoints(self) -> list[tuple[int, Path]]:
        """(global step, path) of every readable checkpoint, oldest first."""
        found = []
        for path in self.checkpoints.glob("*.safetensors"):
            with contextlib.suppress(WeightsError):
                found.append((int(read_progress(path)["global_step"]), path))
        return sorted(found)

    def latest(self) -> Path | None:
        found = self.all_checkpoints()
        return found[-1][1] if found else None

    def newest_readable(self) -> tuple[Path, dict[str, Any], list[str]]:
        """The newest checkpoint that reads whole: (path, state, problems with the files skipped on
        the way, each "FILE: why"). WeightsError when none reads."""
        from .state import read_checkpoint

        problems = []
        for path in sorted(self.checkpoints.glob("*.safetensors")):
            try:
                read_progress(path)
            except WeightsError as exc:
                problems.append(str(exc))
        for _, path in reversed(self.all_checkpoints()):
            try:
                return path, read_checkpoint(path), problems
            except WeightsError as exc:
                problems.append(str(exc))
        detail = f" ({problems[0]})" if problems else ""
        raise WeightsError(f"{self.root}: no readable checkpoint in {self.checkpoints}{detail}")

    def prune(self, keep: int) -> None:
        """Delete all but the newest `keep` checkpoints (best.safetensors is a separate link, so
        the best survives)."""
        for _, path in self.all_checkpoints()[:-keep]:
            with contextlib.suppress(OSError):
                path.unlink()

    def mark_best(self, checkpoint: Path) -> Path:
        """Point best.safetensors at `checkpoint`, atomically (a hard link; a copy where the
        file system has none)."""
        temp = temp_path_for(self.best)
        try:
            os.link(checkpoint, temp)
        except OSError:
            shutil.copyfile(checkpoint, temp)
        os.replace(temp, self.best)
        return self.best

    def read_record(self) -> dict[str, Any]:
        path = self.root / RUN_RECORD
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def write_record(self, record: dict[str, Any]) -> None:
        try:
            write_json(self.root / RUN_RECORD, {"format": RUN_FORMAT, **record})
        except OSError as exc:
            raise OutputError(f"{self.root / RUN_RECORD}: cannot write ({exc})") from None


def find_checkpoint(source: str | Path, which: str = "last") -> Path:
    """A checkpoint file as given, or the `last` / `best` checkpoint of a run folder."""
    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise WeightsError(f"{source}: no such run folder or checkpoint")
    run = RunFolder(source)
    if not run.holds_a_run():
        raise WeightsError(f"{source}: not a training run folder (no {RUN_RECORD}, no {CHECKPOINT_DIR}/)")
    if which == "best":
        if not run.best.is_file():
            raise WeightsError(
                f"{source}: no best checkpoint (the run has not been validated; train with --val-datasets, "
                f"or export the last one)"
            )
        return run.best
    if which != "last":
        raise WeightsError(f"'{which}': choose best or last")
    latest = run.latest()
    if latest is None:
        raise WeightsError(f"{source}: no checkpoints in {run.checkpoints}")
    return latest
