"""What a job did, for the person (one line) and for the record (`summary.json`).

`convert` and `caption` both end with a JobSummary: counts (done, already done, redone because
their settings changed, failed), the inputs left out and why, warnings, times, the model, the
exact command line and every option, and the exit status:

    0    everything done (or already done and current)
    1    some items failed, or the record of the run (manifest, summary) could not be written
    130  stopped by Ctrl-C (SIGINT), 143 by SIGTERM, after saving the finished work
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ..errors import OutputError
from ..io.atomic import write_json
from ..io.manifest import describe_os_error
from .signals import SIGNAL_NAMES


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    """Options as JSON: dataclasses become objects (every field), paths text, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def command_line() -> list[str]:
    """How this process was started, as typed (`tr2m convert …`, or the Python script)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("__main__.py", "tr2m"):
        argv[0] = "tr2m"
    return argv


@dataclass
class JobSummary:
    """Counts and facts of one run. `done`: items processed now; `skipped`: already done and
    current; `redone`: of `done`, items whose earlier outputs were stale (settings changed)."""

    command: str = "job"
    destination: str = ""
    photos: int = 0
    done: int = 0
    skipped: int = 0
    redone: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item, error)
    inputs_skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[str] = field(default_factory=list)
    write_errors: list[str] = field(default_factory=list)  # the run's own record could not be saved
    elapsed_s: float = 0.0
    setup_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    signal: str | None = None  # "SIGINT" / "SIGTERM" when stopped
    model: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    command_line: list[str] = field(default_factory=command_line)
    summary_file: Path | None = None
    verb: str = "done"  # "converted", "captioned"
    skipped_words: str = "already done"
    unit: str = "photos"
    rate_unit: str = "photos"  # what the rate counts: photos/s, captions/s

    @property
    def interrupted(self) -> bool:
        return self.signal is not None

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        self.signal = (self.signal or "SIGINT") if value else None

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + {name: number for number, name in SIGNAL_NAMES.items()}.get(self.signal, 2)
        return 1 if self.failed or self.write_errors else 0

    @property
    def per_second(self) -> float:
        """Throughput once set up (the model loaded)."""
        working = self.elapsed_s - self.setup_s
        return self.done / working if working > 0 else 0.0

    def fail(self, item: str, error: str) -> None:
        self.failed += 1
        self.failures.append((item, error))

    def line(self) -> str:
        """'3 of 5 photos converted (2 redone: settings changed), 1 already done, 1 failed in
        4.2 s, 1.10 photos/s → out/manifest.jsonl'."""
        rate = f", {self.per_second:.2f} {self.rate_unit}/s" if self.done else ""
        state = "interrupted: " if self.interrupted else ""
        return f"{state}{self.count_words()} in {self.elapsed_s:.1f} s{rate} → {self.summary_target()}"

    def count_words(self, failed: int | None = None) -> str:
        """'3 of 5 photos converted (2 redone: settings changed), 1 already done, 1 failed': the
        items done out of all, with those redone among them, then the others. `failed`: the
        failures to name (default: all)."""
        failed = self.failed if failed is None else failed
        unit = self.unit[:-1] if self.photos == 1 and self.unit.endswith("s") else self.unit
        parts = [f"{self.done} of {self.photos} {unit} {self.verb}"]
        if self.redone:
            parts[0] += f" ({self.redone} redone: settings changed)"
        if self.skipped:
            parts.append(f"{self.skipped} {self.skipped_words}")
        if failed:
            parts.append(f"{failed} failed")
        parts += self.extra_counts()
        return ", ".join(parts)

    def extra_counts(self) -> list[str]:
        return []

    def summary_target(self) -> str:
        return self.destination

    def to_json(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "tr2m_version": __version__,
            "command": self.command,
            "command_line": self.command_line,
            "finished": now_iso(),
            "inputs": self.inputs,
            "destination": self.destination,
            "photos": self.photos,
            self.verb: self.done,
            "skipped": self.skipped,
            "redone": self.redone,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "signal": self.signal,
            "failures": [{"input": key, "error": error} for key, error in self.failures],
            "inputs_skipped": [{"path": path, "reason": reason} for path, reason in self.inputs_skipped],
            "warnings": self.warnings,
            "write_errors": self.write_errors,
            "elapsed_s": self.elapsed_s,
            "setup_s": self.setup_s,
            f"{self.rate_unit}_per_s": round(self.per_second, 4),
            "stage_seconds": self.stage_seconds,
            "model": self.model,
            "options": self.options,
            "exit_code": self.exit_code,
        }

    def write(self, path: str | Path | None = None) -> None:
        """Write summary.json; a failure (disk full, read-only) becomes a plain-words entry in
        `write_errors` (exit status 1), never a traceback."""
        from ..io import storage

        path = path if path is not None else self.summary_file
        if path is None:
            return
        path = storage.location(path) if storage.is_url(path) else Path(path)  # a URL: one upload
        self.summary_file = path
        try:
            write_json(path, self.to_json())
        except OSError as exc:
            self.write_errors.append(f"cannot write {path}: {describe_os_error(exc)}")
        except OutputError as exc:
            self.write_errors.append(str(exc))
