"""One switch for progress bars outside the runner's own (training epochs): ``faithbench run
--quiet`` sets ``FAITHBENCH_QUIET=1``; an environment variable, so it also reaches subprocesses."""

from __future__ import annotations

import os

QUIET_ENV = "FAITHBENCH_QUIET"


def bars_disabled() -> bool:
    """True when ``FAITHBENCH_QUIET`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")
