"""One switch for progress bars outside the runner's own (training epochs): ``faithbench run
--quiet`` and ``run_suite(..., progress=False)`` set ``FAITHBENCH_QUIET=1`` for the run
(:func:`quiet`); an environment variable, so it also reaches subprocesses."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

QUIET_ENV = "FAITHBENCH_QUIET"


def bars_disabled() -> bool:
    """True when ``FAITHBENCH_QUIET`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """``FAITHBENCH_QUIET=1`` inside the block when ``enabled`` (else nothing changes); the
    previous value (or its absence) is restored after it."""
    before = os.environ.get(QUIET_ENV)
    if enabled:
        os.environ[QUIET_ENV] = "1"
    try:
        yield
    finally:
        if enabled:
            if before is None:
                os.environ.pop(QUIET_ENV, None)
            else:
                os.environ[QUIET_ENV] = before
