"""One run per output folder: an advisory ``flock`` on ``<out>/.lock``.

A second run on the same folder refuses at once (:class:`OutputInUseError`, exit code 2) and
names the process that holds it, rather than interleaving table writes. The lock belongs to an
open file, so the kernel releases it when its process ends in any way (``kill -9`` included):
there is never a stale lock to delete. The file itself stays; removing it would let two runs
lock two different inodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faithbench.runner.errors import OutputInUseError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


@contextmanager
def lock_output(out_dir: Path, named: str = "--out: ") -> Iterator[Path]:
    """Hold the lock of ``out_dir`` (created if needed) for the duration of the block. ``named`` starts the
    refusal's message: the CLI's ``--out`` of ``faithbench run`` by default (a review: the line did not name
    it, as the other folder errors do), "" for the folder ``faithbench report`` is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    handle = open(path, "a+")
    if fcntl is None:  # pragma: no cover
        try:
            yield path
        finally:
            handle.close()
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise OutputInUseError(
            f"{named}{out_dir}: another faithbench run (pid {holder}) is writing to this output folder; "
            f"wait for it to finish (or give a run another --out)", out_dir, holder
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
