"""The checks :meth:`Metric.__call__ <faithbench.metrics.base.Metric.__call__>` applies to an
:class:`~faithbench.metrics.base.EvalContext` built by hand (a run's contexts pass them): one-line errors that
say what was expected, instead of a raw torch error or a silent NaN.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def check_batch(name: str, x: Tensor) -> None:
    """``x`` holds at least one image (a held-out review: an empty batch was torch's "max(): Expected reduction
    dim to be specified for input.numel() == 0")."""
    if x.ndim < 3 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected x of shape (B, C, *spatial) with B >= 1, got {tuple(x.shape)}")


def check_masks(name: str, masks: dict[str, Any]) -> None:
    """Masks are bool torch tensors (or 0/1 of another dtype, read as bool): a probability map was read as
    inside wherever it was not 0, its whole image (a review: 0.95 on a lesion, 0.01 elsewhere scored
    pointing_game, relevance_mass, relevance_rank and auprc 1.0); a run's masks are bool already. A NumPy
    array was "order must be str, not int" (a held-out review)."""
    for key, mask in masks.items():
        if not isinstance(mask, Tensor):
            raise TypeError(f"{name}: expected masks[{key!r}] as a bool torch.Tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"{name}: expected masks[{key!r}] bool (or 0/1), got {mask.dtype} values other than "
                             f"0 and 1 (e.g. {float(mask[(mask != 0) & (mask != 1)][0]):g}): threshold a "
                             f"probability map first (mask > 0.5)")


def check_target(name: str, target: Any, batch: int, n_classes: int, which: str = "target") -> None:
    """``target`` (or the context's field ``which``, ``label``): (B,) whole class indices in ``[0, n_classes)``
    (``n_classes`` 0: unknown, any index >= 0). Else ``ValueError`` (an index past the classes was a raw
    IndexError, or scored; a held-out review: a label of shape (1,) gave focus NaN for every sample, one of
    shape (3,) for 6 samples torch's size mismatch)."""
    if not isinstance(target, Tensor):  # a review: an int or a list was an AttributeError
        raise TypeError(f"{name}: expected {which} as a torch.Tensor of {batch} class indices, shape ({batch},), "
                        f"got {type(target).__name__}")
    if tuple(target.shape) != (batch,) or target.dtype == torch.bool or target.is_complex():
        raise ValueError(f"{name}: expected {which} of {batch} class indices, shape ({batch},), got "
                         f"{target.dtype} of shape {tuple(target.shape)}")
    if target.is_floating_point() and not (bool(torch.isfinite(target).all()) and torch.equal(target, target.round())):
        raise ValueError(f"{name}: expected {which} of whole class indices, got {target.tolist()}")
    if target.numel() and (int(target.min()) < 0 or (n_classes and int(target.max()) >= n_classes)):
        bound = f"0 to {n_classes - 1}" if n_classes else ">= 0"
        raise ValueError(f"{name}: expected {which} class indices {bound}, got {target.tolist()}")


__all__ = ["check_batch", "check_masks", "check_target"]
