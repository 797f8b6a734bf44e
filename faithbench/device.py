"""Device facts every floor may need: out-of-memory errors, and freeing memory after one.

The ground floor: it imports nothing of faithbench.
"""

from __future__ import annotations

import gc

import torch


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/CPU allocator failures: ``torch.OutOfMemoryError``, ``MemoryError``, or a
    ``RuntimeError`` whose message says "out of memory" (older torch, other backends)."""
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_memory() -> None:
    """After an out-of-memory error: free what the failed work held before the next try."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
