"""What a job tells the person watching it: a progress bar with items/s and ETA, and warnings
and per-item errors on stderr (printed above the bar, so it stays intact)."""

from __future__ import annotations

import sys
from typing import Callable


class Progress:
    """`say(line)`: where lines go instead of stderr (a caller collecting them)."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        initial: int = 0,
        unit: str = "photo",
        desc: str = "convert",
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.enabled = enabled
        self.total = total
        self.initial = initial
        self.unit = unit
        self.desc = desc
        self.warnings: list[str] = []
        self._say = say
        self._bar = None

    def start(self) -> None:
        """Show the bar (after any opening lines, so they stay above it)."""
        if self.enabled and self.total and self._bar is None and self.initial < self.total:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                initial=self.initial,
                unit=self.unit,
                desc=self.desc,
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def add_total(self, count: int) -> None:
        """More items than first counted (a clip's frames, known once it is opened)."""
        self.total += count
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()
        elif self.enabled and count:
            self.start()

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def say(self, text: str) -> None:
        """One line on stderr, above the bar."""
        if self._say is not None:
            self._say(text)
        elif self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def info(self, text: str) -> None:
        """Shown unless the run is quiet."""
        if self.enabled:
            self.say(f"tr2m: {text}")

    def warn(self, text: str) -> None:
        """Always shown: warnings are about the results (e.g. captions matching nothing); kept
        for the summary."""
        self.warnings.append(text)
        self.say(f"tr2m: warning: {text}")

    def error(self, text: str) -> None:
        """A failed item: always shown, even when quiet."""
        self.say(f"tr2m: failed: {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
