"""The one "did you mean" helper: every error about an unknown name (backend, class, config key,
strategy word, device) suggests the closest known name the same way."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``word``, or ``""`` if none is close.

    Meant to be appended to a sentence: ``f"unknown class {name!r}.{did_you_mean(name, names)}"``.
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def reject_unknown_keys(given: Iterable[str], known: Iterable[str], what: str, error: type[Exception],
                        fix: str = "") -> None:
    """Raise ``error`` naming the first key of ``given`` not in ``known``, the closest known key and
    the known keys (``what`` says where the key was found; ``fix`` is appended)."""
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        key = unknown[0]
        raise error(f"{what} has an unknown key {key!r}.{did_you_mean(key, known)} "
                    f"Known keys: {', '.join(known)}.{(' ' + fix) if fix else ''}")
