"""The run's metrics: `metrics.jsonl` (one JSON object per line: training records every few
steps, validation records) and, when the `tensorboard` package is installed, TensorBoard scalars
under `tensorboard/`. Only rank 0 writes.

Each record carries `global_step`. A resumed run first drops the records past its checkpoint,
so the log reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.atomic import write_text

LOG_NAME = "metrics.jsonl"


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class Logbook:
    def __init__(
        self, run_dir: str | Path, *, enabled: bool = True, tensorboard: bool | None = None, purge_step: int | None = None
    ) -> None:
        """`purge_step`: a resumed run's first step; TensorBoard hides what an earlier session wrote
        from that step on (its event files are append-only), so no step appears twice."""
        self.path = Path(run_dir) / LOG_NAME
        self.enabled = enabled
        self._writer = None
        self._started = time.monotonic()
        if tensorboard and not tensorboard_available():
            raise InputError("--tensorboard needs the tensorboard package (pip install tensorboard)")
        if enabled and (tensorboard or (tensorboard is None and tensorboard_available())):
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step)

    def truncate_after(self, global_step: int) -> None:
        """Forget records beyond `global_step` (written after the checkpoint we resume from)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("global_step", 0) <= global_step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        write_text(self.path, "".join(f"{line}\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {**record, "elapsed_s": round(time.monotonic() - self._started, 3)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=True) + "\n")
        if self._writer is not None:
            step = int(record.get("global_step", 0))
            prefix = record.get("event", "train")
            for name, value in _scalars(record):
                self._writer.add_scalar(f"{prefix}/{name}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _scalars(record: dict[str, Any], prefix: str = ""):
    for name, value in record.items():
        if name in ("global_step", "epoch", "event", "elapsed_s"):
            continue
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{name}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield f"{prefix}{name}", float(value)
