"""Errors the runner raises, and how it classifies the exceptions of a cell.

Two kinds of trouble, two outcomes:

- *Bad input* (:class:`InputDataError`, :class:`OutputInUseError`, and the suite/checkpoint
  errors of other modules): the run stops with exit code 2 and a one-line message naming the
  dataset, split and sample (or the folder); everything computed before is in the cache.
- *A failing cell* (an explainer or metric that raises, returns NaN/Inf, or runs out of
  memory): recorded as a row of ``failures.csv`` and the sweep goes on (exit code 3, partial).
"""

from __future__ import annotations

from faithbench.device import is_out_of_memory

__all__ = ["InputDataError", "OutputInUseError", "UsageError", "error_summary"]


class InputDataError(ValueError):
    """Data the runner cannot use: an empty split, an unreadable sample, a mask whose shape
    does not match its image. The message names the dataset, the split and the sample."""


class OutputInUseError(RuntimeError):
    """Another run holds the lock of the output folder."""


def error_summary(exc: BaseException, limit: int = 500) -> tuple[str, str]:
    """``(error_type, message)`` for ``failures.csv``: the exception's class name (``OutOfMemory``
    for any allocator failure, so they group together) and its message, its lines joined by ``" | "`` (one
    line of the table; a review: the lines after the first were in no output), at most ``limit`` characters."""
    message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    kind = "OutOfMemory" if is_out_of_memory(exc) else type(exc).__name__
    if kind == "OutOfMemory" and type(exc).__name__ not in message:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return kind, message


class UsageError(ValueError):
    """A run option that cannot be honoured (an executor that is not installed): exit code 2."""
