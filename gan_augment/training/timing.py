"""The time estimate printed near the start of a long run, from its first timed steps, so a
user knows whether to wait or to come back tomorrow."""

from __future__ import annotations

import time

import torch

#: steps timed for the estimate, after one untimed warm-up step (kernel selection, allocation)
TIMED_STEPS = 5
#: print the estimate only for runs expected to take at least this long
LONG_RUN_SECONDS = 60.0


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
    """Times steps ``first + 1 .. first + 1 + TIMED_STEPS`` of a session that runs from step
    ``first`` to ``end`` and returns the estimate line once, when it is ready and the run is long."""

    def __init__(self, first: int, end: int, device: torch.device, note: str = ""):
        self.first, self.end, self.device, self.note = first, end, device, note
        self.start: float | None = None
        self.seconds_per_step: float | None = None

    def after_step(self, step: int) -> str | None:
        """Call after every step with the new step count; returns the line to print, or None."""
        if self.seconds_per_step is not None:
            return None
        if step == self.first + 1:
            synchronize(self.device)
            self.start = time.perf_counter()
        elif self.start is not None and step == self.first + 1 + TIMED_STEPS:
            synchronize(self.device)
            self.seconds_per_step = (time.perf_counter() - self.start) / TIMED_STEPS
            total = self.end - self.first
            seconds = total * self.seconds_per_step
            if seconds >= LONG_RUN_SECONDS:
                note = f" ({self.note})" if self.note else ""
                return (f"about {format_duration(seconds)} for {total:,} steps at "
                        f"{self.seconds_per_step:.2f} s/step{note}; checkpoints and sample grids add a little")
        return None
