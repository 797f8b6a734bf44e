"""Errors the runner raises, and how it classifies the exceptions of a cell.

Two kinds of trouble, two outcomes:

- *Bad input* (:class:`InputDataError`, :class:`OutputInUseError`, and the suite/checkpoint
  errors of other modules): the run stops with exit code 2 and a one-line message naming the
  dataset, split and sample (or the folder); everything computed before is in the cache.
- *A failing cell* (an explainer or metric that raises, returns NaN/Inf, or runs out of
  memory): recorded as a row of ``failures.csv`` and the sweep goes on (exit code 3, partial).
"""

from __future__ import annotations

from typing import Any

from faithbench.datasets.paths import InputDataError  # defined below validation, which raises it too
from faithbench.device import is_out_of_memory
from faithbench.store import cache_origin

__all__ = ["FolderError", "InputDataError", "OutputInUseError", "UsageError", "error_summary"]


class OutputInUseError(RuntimeError):
    """Another run holds the lock of the output folder ``path``: the process ``holder`` (its pid, or
    ``unknown``). The message names the CLI's ``--out``; :func:`faithbench.run` names its ``out_dir``."""

    def __init__(self, message: str, path: Any = None, holder: str = "unknown") -> None:
        super().__init__(message)
        self.path, self.holder = path, holder


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


class FolderError(UsageError):
    """An output or cache folder that cannot be used. ``argument`` ("out" or "cache") lets each caller name it
    as its user gave it: the message names the CLI's flags (:data:`CLI_NAMES`), ``faithbench.run`` re-raises it
    naming its own arguments (a review: Python callers read "--out", which they never passed)."""

    CLI_NAMES = {"out": "--out", "cache": "cache folder (--cache or $FAITHBENCH_CACHE)"}

    def __init__(self, argument: str, path: object, problem: str) -> None:
        self.argument, self.path, self.problem = argument, path, problem
        self.origin = cache_origin(path) if argument == "cache" else None  # where neither --cache nor the variable
        hint = "; choose another with --cache or $FAITHBENCH_CACHE" if self.origin else ""  # a reread: it did not say
        super().__init__(f"{f'cache folder ({self.origin})' if self.origin else self.CLI_NAMES[argument]} {path}: "
                         f"{problem}{hint}")

    def __reduce__(self) -> tuple[type, tuple[str, object, str]]:  # pickled as its arguments, not its message
        return type(self), (self.argument, self.path, self.problem)
