"""Device facts every floor may need: the device names a suite may give, out-of-memory errors,
freeing memory after one, running a model in eval mode without changing its modes, and keeping the
caller's random number generators and TF32 switches.

The ground floor: it imports nothing of faithbench.
"""

from __future__ import annotations

import gc
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
MAX_CUDA_INDEX = 127  # torch's DeviceIndex is an int8


def check_device_name(device: str) -> str:
    """``device`` without surrounding spaces when it is one of :data:`DEVICES` (``cuda:N``: N = 0,
    1, ..., 127; torch's ``cpu:0`` and ``mps:0`` too); else ``ValueError`` saying what was expected.

    The name only: whether the device is present is decided by the run, so a suite meant for a
    GPU machine (``device: cuda``) validates on a laptop."""
    name = device.strip()
    if name == "auto":
        return name
    try:
        kind = torch.device(name).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"expected one of {', '.join(DEVICES)}, got {device!r}")
    index = int(name.partition(":")[2] or 0)  # torch has parsed it: digits only
    # torch keeps a device index in 8 signed bits: cuda:256 is cuda:0, cuda:1000 cuda:-24 (a fuzzing review)
    if kind == "cuda" and index > MAX_CUDA_INDEX:
        raise ValueError(f"expected cuda:N with N in [0, {MAX_CUDA_INDEX}] (torch keeps a device index in 8 bits: "
                         f"a larger N names another device), got {device!r}")
    if kind != "cuda" and index != 0:
        raise ValueError(f"expected {kind} or {kind}:0 (torch has one {kind} device), got {device!r}")
    return name


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


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` inside the block; every module's own ``training`` flag restored after it."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield
    finally:
        for m, training in modes.items():
            m.training = training


@contextmanager
def caller_rng(device: str | None = None) -> Iterator[None]:
    """The global generators of torch (the CPU's, and each CUDA device's where CUDA is initialised or
    ``device``, the run's, is a CUDA one), NumPy and ``random`` restored after the block: a run reseeds
    them (training, explainers), and a notebook's seeded stream goes on after a run as if there had been
    none (a review: torch's was left at a state the run set). A run on CUDA forks the CUDA generators
    even where CUDA is not initialised yet (a review: a fresh notebook's ``torch.manual_seed(0)`` only
    queues CUDA's seeding, the run initialised CUDA and reseeded it, and nothing was restored); reading
    their state initialises CUDA, which the run does anyway."""
    on_cuda = device is not None and str(device).startswith("cuda") and torch.cuda.is_available()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() or on_cuda else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextmanager
def full_float32(device: str) -> Iterator[None]:
    """On a CUDA ``device``, TF32 off inside the block (``torch.backends.cuda.matmul.allow_tf32`` and
    ``torch.backends.cudnn.allow_tf32``: full float32, so CPU and GPU results agree to float rounding),
    and the caller's two switches restored after it (a review: a GPU run left cuDNN's TF32 off for the
    rest of a notebook, whose own training then ran in full float32). Elsewhere: nothing changes."""
    if not str(device).startswith("cuda"):
        yield
        return
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


DTYPE_ERRORS = ("should be the same", "same dtype", "same datatype", "mixed dtype", "scalar type")  # torch's words


def dtype_mismatch(name: str, model: nn.Module, x: torch.Tensor, exc: BaseException | None = None) -> str | None:
    """A one-line message where the images ``x`` are not in the floating dtype of ``model``'s first
    floating parameter, else None (a review: a float64 or half image on a float32 network was torch's
    "Input type (double) and bias type (float) should be the same" from deep inside an explainer).
    Asked only once the model has raised, with the error ``exc``: only torch's dtype errors
    (:data:`DTYPE_ERRORS`) are explained so, as a network that casts its input (run in bfloat16 on float32
    images) sees a "mismatch" whatever failed (a diff review: its out-of-memory and target errors became
    this TypeError). A model without floating parameters is not checked."""
    message = str(exc) if exc is not None else ""  # "... (torch.cuda.FloatTensor) ... should be the same": a device
    if not isinstance(model, nn.Module) or (exc is not None and (not any(w in message for w in DTYPE_ERRORS)
                                                                 or "cuda" in message.lower())):
        return None
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is None or x.dtype == dtype:
        return None
    return (f"{name}: expected x in the model's dtype {dtype}, got {x.dtype}: convert it first "
            f"(x.to({dtype}))")
