"""Ctrl-C and SIGTERM during training: the first asks the loop to stop after the step under way
(it then writes a checkpoint), a second stops at once. Handlers live only as long as one fit()."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

#: the signals that ask a run to stop; SIGTERM is what schedulers and `kill` send
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint of its last completed step
    (or saying that none exists). ``step``, ``checkpoint`` (a Path or None) and ``signal_name``
    say what is kept; a KeyboardInterrupt, so code that catches Ctrl-C still does."""

    def __init__(self, message: str, step: int, checkpoint: Path | None, signal_name: str = "SIGINT"):
        super().__init__(message)
        self.step, self.checkpoint, self.signal_name = step, checkpoint, signal_name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, the shell's convention (130 for Ctrl-C)."""
        return 128 + int(getattr(signal, self.signal_name, signal.SIGINT))

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StopRequests:
    """``with StopRequests(enabled) as stop:`` the loop checks ``stop.requested`` (the signal's
    name, or None) after each step. Installs handlers only in the main thread (Python allows no
    other) and restores the previous handlers on exit; a second signal raises KeyboardInterrupt."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:  # the second one: stop now, nothing more is written
            self.restore()
            raise KeyboardInterrupt(f"stopped at once by a second {signal.Signals(signum).name}")
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self.restore()
