"""Argument parsing that keeps the CLI's promise: a mistake is one line naming the problem and the
fix, exit status 2 (argparse's own errors print the whole usage block first)."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line that points at ``--help`` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split()).rstrip(".")
        self.exit(2, f"{self.prog}: error: {text}. See `{self.prog} --help`.\n")


def count(text: str) -> int:
    """An integer >= 1 (steps, images, batch size)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def non_negative(text: str) -> int:
    """An integer >= 0 (intervals where 0 means "off")."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive(text: str) -> float:
    """A number > 0 (epochs, which may be fractional)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def device(text: str) -> str:
    """A device this machine has, checked before any data is read."""
    # imported here: checking a device needs torch, which `gan-augment --help` must not load
    from gan_augment.core.devices import check_device
    from gan_augment.core.errors import ConfigError

    try:
        check_device(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def minutes(text: str) -> float:
    """A number of minutes >= 0 (0 means "off"), e.g. 10 or 2.5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more minutes, got {text}")
    return value
