"""Stopping a job cleanly on Ctrl-C and on `kill` (SIGTERM, what batch schedulers send first).

The first SIGINT or SIGTERM stops the job at once (as KeyboardInterrupt, so a notebook stops
too); the job then finishes what must not be cut: writes already under way, the manifest, the
summary. Signals that come while it does so (an impatient second Ctrl-C) do not cut that short:
they are answered with a line saying what is being saved. Sections that must not be cut at all
(a finished photo being recorded) are marked with `deferred()`: a first signal inside one is
acted on when it ends.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class JobInterrupted(KeyboardInterrupt):
    """The job was stopped by a signal after saving its finished work. `summary`: what it did
    (the job sets it); `exit_code`: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signal_number: int = signal.SIGINT, summary=None) -> None:
        super().__init__(SIGNAL_NAMES.get(signal_number, str(signal_number)))
        self.signal_number = int(signal_number)
        self.summary = summary

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


class StopSignals:
    """`with StopSignals(say):` for the length of a job (handlers are installed only on the main
    thread, where Python delivers signals; elsewhere this does nothing)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.received: int | None = None
        self._depth = 0
        self._stopping = False  # the job has caught the stop and is saving its work
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.received is not None:
            self.say("tr2m: still saving finished work (writes under way, the manifest, the summary); one moment")
            return
        self.received = number
        if self._depth:
            return  # acted on when the deferred section ends
        raise JobInterrupted(number)

    def interrupt(self, number: int = signal.SIGINT) -> None:
        """The job caught the stop (ours, or a KeyboardInterrupt raised elsewhere) and is saving
        its work: later signals are treated as repeats, and deferred sections no longer raise."""
        if self.received is None:
            self.received = number
        self._stopping = True

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A section that a first signal must not cut; it takes effect when the section ends.

        The end of every such section (a finished photo recorded) is also where a stop that has
        not reached the job yet is raised again: the interrupt a handler raises can land anywhere,
        and code it lands in may turn it into another error (a `finally` that fails, a library
        that catches too much). The job then still stops, one photo later."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.received is not None and not self._stopping:
            # Unless the stop is on its way up already (this section runs in the cleanup it
            # passes through: writes under way being recorded), or the job caught it (interrupt()).
            if not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise JobInterrupted(self.received)
