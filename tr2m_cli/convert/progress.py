"""What a run tells the person watching it: a progress bar with photos/s and ETA, warnings and
per-photo errors on stderr (printed above the bar, so it stays intact)."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, total: int, *, enabled: bool, initial: int = 0) -> None:
        self.enabled = enabled
        self.total = total
        self.initial = initial
        self._bar = None

    def start(self) -> None:
        """Show the bar (after any opening lines, so they stay above it)."""
        if self.enabled and self.total and self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                initial=self.initial,
                unit="photo",
                desc="convert",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def info(self, text: str) -> None:
        """Shown unless the run is quiet."""
        if self.enabled:
            self._write(f"tr2m: {text}")

    def warn(self, text: str) -> None:
        """Always shown: warnings are about the results (e.g. captions matching nothing)."""
        self._write(f"tr2m: warning: {text}")

    def error(self, text: str) -> None:
        """Always shown, even when quiet."""
        self._write(f"tr2m: failed: {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
