"""The time estimate printed near the start of a long run, so a user knows whether to wait or to
come back tomorrow. The first steps are slow (kernel selection, allocation, caches warming), so
they are left out, and the estimate is revised once the rate has settled if it was far off."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

#: untimed steps at the start of a session (their cost is not the run's rate)
WARMUP_STEPS = 5
#: steps in the first timed window; each later window is twice as long as the one before
TIMED_STEPS = 10
#: print the estimate only for runs expected to take at least this long
LONG_RUN_SECONDS = 60.0
#: two windows whose rates differ by at most this share mean the rate has settled
SETTLED = 0.10
#: a settled rate this far (as a share) from the printed one revises the estimate
REVISE_BEYOND = 0.25
#: at most this many revised lines per session
MAX_REVISIONS = 2


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so wall time covers it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def format_duration(seconds: float) -> str:
    """"45 s", "12 min", "3.4 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StepTimer:
    """Times windows of steps of a session that runs from step ``first`` to ``end``, after
    WARMUP_STEPS untimed ones: the first window (TIMED_STEPS) gives the estimate line, later
    windows (each twice as long) revise it when the rate has settled far from the printed one.
    ``clock`` returns seconds (time.perf_counter by default; tests pass a fake one)."""

    def __init__(self, first: int, end: int, device: torch.device, note: str = "",
                 clock: Callable[[], float] | None = None):
        self.first, self.end, self.device, self.note = first, end, device, note
        self.clock = clock
        self.window_start: int | None = None  # step at which the current window began
        self.started_at = 0.0
        self.window = TIMED_STEPS
        self.seconds_per_step: float | None = None  # the rate the printed line used
        self.last_rate: float | None = None  # the previous window's rate
        self.revisions = 0
        self.printed = False

    def _now(self) -> float:
        synchronize(self.device)
        return (self.clock or time.perf_counter)()

    def after_step(self, step: int) -> str | None:
        """Call after every step with the new step count; returns a line to print, or None."""
        if self.revisions >= MAX_REVISIONS or step >= self.end:
            return None
        if step == self.first + WARMUP_STEPS and self.window_start is None:
            self.window_start, self.started_at = step, self._now()
            return None
        if self.window_start is None or step != self.window_start + self.window:
            return None
        now = self._now()
        rate = (now - self.started_at) / self.window
        previous, self.last_rate = self.last_rate, rate
        self.window_start, self.started_at, self.window = step, now, self.window * 2
        if self.seconds_per_step is None:
            self.seconds_per_step = rate
            total = self.end - self.first
            if total * rate >= LONG_RUN_SECONDS:
                self.printed = True
                note = f" ({self.note})" if self.note else ""
                return (f"about {format_duration(total * rate)} for {total:,} steps at {rate:.2f} s/step"
                        f"{note}; checkpoints and sample grids add a little")
            return None
        settled = previous is not None and abs(rate - previous) <= SETTLED * previous
        if self.printed and settled and abs(rate - self.seconds_per_step) > REVISE_BEYOND * self.seconds_per_step:
            self.seconds_per_step, self.revisions = rate, self.revisions + 1
            left = self.end - step
            return (f"revised: about {format_duration(left * rate)} left for the last {left:,} steps at "
                    f"{rate:.2f} s/step (the rate has settled)")
        return None
