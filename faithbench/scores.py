"""The score of the explained class, one function for explainers and metrics alike.

``target_score(logits, target, score)`` reads row i's logit vector at class ``target[i]``:

- ``prob`` (alias ``softmax``): the softmax probability (single-label models);
- ``sigmoid``: the sigmoid of the target logit (multi-label models: one sigmoid per class);
- ``logit``: the raw target logit;
- ``correct``: 1 when the arg-max is the target, else 0;
- ``present``: 1 when the target logit is > 0 (sigmoid > 0.5), else 0 (multi-label).

:data:`MULTILABEL` maps a single-label score to its multi-label counterpart. The ground floor:
it imports nothing of faithbench.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

Score = Literal["prob", "softmax", "logit", "correct", "sigmoid", "present"]
SCORES: tuple[str, ...] = ("prob", "softmax", "logit", "correct", "sigmoid", "present")
MULTILABEL: dict[str, str] = {"prob": "sigmoid", "softmax": "sigmoid", "correct": "present", "logit": "logit",
                              "sigmoid": "sigmoid", "present": "present"}


def target_score(logits: Tensor, target: Tensor, score: str) -> Tensor:
    """``(B,)`` scores of ``logits (B, K)`` at ``target (B,)``; see the module docstring. A target
    past the K outputs is a ``ValueError`` on the CPU (a review: a raw torch ``RuntimeError`` where the
    caller gave no class names to check it against; on a GPU the check would wait for every chunk)."""
    if logits.device.type == "cpu" and target.numel() and int(target.max()) >= logits.shape[-1]:
        raise ValueError(f"target class {int(target.max())} is past the model's {logits.shape[-1]} outputs; "
                         f"expected class indices 0 to {logits.shape[-1] - 1}")
    picked = logits.gather(1, target[:, None])[:, 0]
    if score == "logit":
        return picked
    if score == "sigmoid":
        return picked.sigmoid()
    if score == "present":
        return (picked > 0).to(logits.dtype)
    if score in ("prob", "softmax"):
        return logits.softmax(-1).gather(1, target[:, None])[:, 0]
    if score == "correct":
        return (logits.argmax(-1) == target).to(logits.dtype)
    raise ValueError(f"unknown score {score!r}; expected one of {', '.join(SCORES)}")
